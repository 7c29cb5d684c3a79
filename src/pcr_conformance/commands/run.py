"""`pcr-conformance run`: every selected kit in one pytest subprocess against one target (each test once,
issue 12), each kit's report into OUTPUT/<kit>/<target>/, then the verdict table.

The target and the kits are checked before anything runs (a bad file is one line on stderr, exit 2); a remote
target's host gets a TCP preflight. The session writes into a temporary folder (OUTPUT/.run.tmp-<pid>/, one
subfolder per kit) whose kit folders replace the kits' report folders only when the run is over, so results
of two runs never mix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pcr_conformance import report, resources, versions
from pcr_conformance.cli import EXIT_ERROR, VERDICT_EXIT_CODES, CliError, err, worst_exit_code
from pcr_conformance.commands.console import ProcessStopped, stream_process


@dataclasses.dataclass(frozen=True)
class RunConfig:
    target: str  # as pytest gets it: a target name, or the absolute path of a target file
    target_name: str
    kits: tuple[str, ...]  # kit names: report folders OUTPUT/<kit>/<target>
    kit_args: tuple[str, ...]  # as pytest gets them: kit names, or absolute paths of kit files
    profile: str
    output: Path
    html: bool
    mask_pii: bool
    timeout_s: float
    suites: Path
    contract: str | None = None  # --contract: the reading that judges (None: the target's)
    implementation_profile: str | None = None  # --implementation-profile (None: the target's; "" none)
    contract_version: str = ""  # --contract-version, else the target's contract_version ("" = the current one)
    recording: str | None = None  # --recording: a HAR of a stakeholder system, judged by the client kits
    workers: int = 1  # --workers: pytest-xdist processes of the session (1: none)
    load: str = ""  # the load run of the service-level tests (--pcr-load; `pcr-conformance load`)


def pytest_command(config: RunConfig, kit: str, folder: Path) -> list[str]:
    """The pytest invocation of one kit (name or file, as in config.kit_args); results go to `folder`.

    The CLI's --target, --kit, --profile, --mask-pii become the plugin's --pcr-* options. The suites run with
    the kit's own pytest configuration (resources.suites_pytest_args), never one of the folder pytest is
    started in; `-P` keeps that folder off sys.path, so nothing in it shadows a module of the kit."""
    cmd = [
        sys.executable, "-P", "-m", "pytest", str(config.suites), *resources.suites_pytest_args(),
        "--pcr-target", config.target, "--pcr-kit", kit, "--pcr-profile", config.profile,
        "--alluredir", str(folder / "allure-results"), "--junitxml", str(folder / "junit.xml"),
        "--pcr-output", str(folder),
        "-q", "--tb=short", "-rfE", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
    ]
    if config.mask_pii:
        cmd.append("--pcr-mask-pii")
    if config.contract:
        cmd += ["--pcr-contract", config.contract]
    if config.implementation_profile is not None:
        cmd += ["--pcr-implementation-profile", config.implementation_profile]
    if config.contract_version:
        cmd += ["--pcr-contract-version", config.contract_version]
    if config.recording:
        cmd += ["--pcr-recording", config.recording]
    if config.load:
        cmd += ["--pcr-load", config.load]
    return cmd


_EXIT_RE = re.compile(r"_pytest\.outcomes\.Exit: (.*?)\s*!*\s*$")


def failure_reason(output: str, returncode: int) -> str:
    """One line saying why pytest could not run the kit (pytest.exit, usage, internal or collection error)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        m = _EXIT_RE.search(ln)
        if m:
            return m.group(1)
    for ln in lines:
        if ln.startswith("Exit: "):
            return ln[len("Exit: "):]
    usage = [ln for ln in lines if ": error: " in ln]
    if usage:
        return usage[-1]
    internal = [ln for ln in lines if ln.startswith("INTERNALERROR>")]
    if internal:
        return "pytest internal error: " + internal[-1][len("INTERNALERROR>"):].strip()
    errors = [ln for ln in lines if ln.startswith("ERROR ")]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return errors[0][len("ERROR "):] + more
    tail = lines[-1] if lines else "no output"
    return f"pytest exited {returncode}: {tail}"


def session_command(config: RunConfig, root: Path) -> list[str]:
    """The one pytest session of a run: every kit of config.kit_args, each test once (issue 12). The session's
    own JUnit and Allure results go to root/.session/; the plugin derives each kit's folder root/<kit>/."""
    cmd = pytest_command(config, config.kit_args[0], root / SESSION_FOLDER)
    cmd[cmd.index("--pcr-output") + 1] = str(root)
    for kit_arg in config.kit_args[1:]:
        cmd += ["--pcr-kit", kit_arg]
    if config.workers > 1:
        # loadfile: a module goes whole to whichever worker is free, so the robustness matrix is sent by one
        # worker (suites/security/test_robustness.py) and the service levels share one load run. Not loadgroup:
        # with pytest 9.2 its xdist_group marks are silently ignored (pytest-xdist 3.8 sets the node id field
        # pytest no longer reads), and both workers sent the whole matrix and made a load run each.
        cmd += ["-n", str(config.workers), "--dist", "loadfile"]
        # In the order the workers sort their collection (workers.order_longest_first: the longest modules first),
        # not xdist's by number of tests, which sent the fuzz modules (few tests, long on a first run) last.
        cmd += ["--no-loadscope-reorder"]
    return [*cmd, "--pcr-kit-folders"]


def workers_for(given: str, *, embedded: bool, cpus: int | None = None) -> int:
    """--workers: "auto" is 2 for the embedded register on a machine with 2 or more cores (each worker starts
    its own register, so no test shares state with another worker's), else 1; a number is taken as it is."""
    if given == "auto":
        return 2 if embedded and (cpus if cpus is not None else (os.cpu_count() or 1)) >= 2 else 1
    if not given.isdigit() or int(given) < 1:
        raise CliError(f"--workers {given}: give a number of processes (1 or more) or 'auto'")
    return int(given)


SESSION_FOLDER = ".session"
CLIENT_SUITES = "client"  # suites/client/: the tests of the client kits (side = "client")


def run_kits(config: RunConfig, *, html_notice: Callable[[str], None]) -> list[report.KitOutcome]:
    """Run every kit in one pytest session into output/<kit>/<target>/, replacing each folder only when the
    run is over. A test several kits select runs once and counts in each kit (plugin: kit_reports.py)."""
    root = config.output / f".run.tmp-{os.getpid()}"
    for kit in config.kits:
        _remove_stale_temp_folders(config.output / kit / config.target_name)
    _remove_stale_run_folders(config.output)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    started = time.monotonic()
    # Wide enough for "FAILED <test id> - <requirement ID> <message>" (pytest cuts the line at COLUMNS).
    columns = max(shutil.get_terminal_size((240, 24)).columns, 240)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": str(columns)}
    names = ", ".join(config.kits)
    print(f"== {names} against {config.target_name} ({config.profile})", flush=True)
    prefix = f"[{config.kits[0]}] " if len(config.kits) == 1 else f"[{len(config.kits)} kits] "
    limit_s = config.timeout_s * len(config.kits)  # --timeout is per kit; the session holds them all
    stopped = ""
    try:
        code, output = stream_process(session_command(config, root), cwd=Path.cwd(), prefix=prefix,
                                      timeout_s=limit_s, env=env)
    except ProcessStopped as e:
        code, output = None, e.output
        stopped = f"stopped by {_cause(e.cause)} after {time.monotonic() - started:.0f} s"
    if code is None and not stopped:
        per_kit = "" if len(config.kits) == 1 else f" per kit, {limit_s:g} s for {len(config.kits)} kits"
        stopped = (f"stopped by the kit's time limit (--timeout {config.timeout_s:g} s{per_kit}) after "
                   f"{time.monotonic() - started:.0f} s")
    duration = time.monotonic() - started
    outcomes: list[report.KitOutcome] = []
    for kit in config.kits:
        tmp = root / kit
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "pytest.log").write_text(output, encoding="utf-8")
        if stopped:
            # What pytest wrote stays (junit.xml, allure-results, its summary.json), with the reason in summary.json.
            keep_stop_reason(tmp / "summary.json", stopped, kit=kit, target=config.target_name)
            outcome = report.KitOutcome(kit, config.target_name, EXIT_ERROR, fatal=True, reason=stopped)
        else:
            outcome = _outcome(kit, config, code, output, tmp)
        report.carry_history(config.output / kit / config.target_name, tmp)  # the history outlives the folder
        outcomes.append(outcome)
    if config.html:
        _generate_html(config, root, outcomes, html_notice)
    finished: list[report.KitOutcome] = []
    for kit, outcome in zip(config.kits, outcomes, strict=True):
        final = config.output / kit / config.target_name
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        (root / kit).rename(final)
        finished.append(dataclasses.replace(outcome, folder=str(final), duration_s=duration))
    shutil.rmtree(root, ignore_errors=True)
    return finished


def _generate_html(config: RunConfig, root: Path, outcomes: list[report.KitOutcome],
                   html_notice: Callable[[str], None]) -> None:
    """Each kit's HTML (verdict page + Allure 3), built together (report.generate_html_of); notices in the order of
    the kits."""
    kits = [o.kit for o in outcomes if not o.fatal and (root / o.kit / "allure-results").is_dir()]
    folders = [(root / kit, f"PCR conformance: {kit} on {config.target_name}") for kit in kits]
    for kit, html in zip(kits, report.generate_html_of(folders), strict=True):
        html_notice(f"HTML report: {config.output / kit / config.target_name / 'html' / 'index.html'}"
                    if html.ok else html.message)


class Signalled(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds through stream_process, which stops pytest and the register."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _cause(exc: BaseException) -> str:
    if isinstance(exc, Signalled):
        return signal.Signals(exc.signum).name
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT"
    return type(exc).__name__


def keep_stop_reason(path: Path, reason: str, *, kit: str, target: str) -> None:
    """summary.json of a stopped run says so: verdict error and the reason (written if pytest could not)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {"kit": kit, "target": target, "counts": {}, "requirements": {}, "tests": {},
                "note": "pytest was stopped before it wrote summary.json; junit.xml and allure-results hold what ran"}
    data["verdict"] = "error"
    data["error"] = reason
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _remove_stale_temp_folders(final: Path) -> None:
    """Temp folders of earlier runs of this kit and target that were killed (their process is gone)."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _remove_stale_run_folders(output: Path) -> None:
    """Session folders (output/.run.tmp-<pid>) of earlier runs that were killed (their process is gone)."""
    for stale in output.glob(".run.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _outcome(kit: str, config: RunConfig, code: int, output: str, folder: Path) -> report.KitOutcome:
    target = config.target_name
    if code in (2, 3, 4) or code < 0:
        return report.KitOutcome(kit, target, EXIT_ERROR, reason=failure_reason(output, code), fatal=True)
    try:
        summary = report.read_summary(folder / "summary.json")
    except report.ReportError:
        reason = "pytest wrote no summary.json (is the pcr_conformance plugin installed? pip install -e .)"
        if code not in (0, 1, 5):
            reason = failure_reason(output, code)
        return report.KitOutcome(kit, target, EXIT_ERROR, reason=reason, fatal=True)
    verdict_code = VERDICT_EXIT_CODES.get(summary.verdict, EXIT_ERROR)
    reason = ""
    if summary.verdict == "incomplete":
        reason = incomplete_reason(folder / "summary.json")
    elif verdict_code == EXIT_ERROR:
        if summary.identity_problems:  # the cause of the broken tests, said once per slot
            reason = "; ".join(summary.identity_problems)
        elif summary.error:
            reason = summary.error
        elif summary.broken_tests:
            n = len(summary.broken_tests)
            more = f" and {n - 1} more" if n > 1 else ""
            reason = (f"{n} broken test(s) could not run (harness, network or TLS; not a conformance failure): "
                      f"{summary.broken_tests[0]}{more}")
        else:
            reason = f"verdict {summary.verdict!r} in summary.json (no test ran?)"
    return report.KitOutcome(kit, target, verdict_code, summary=summary, reason=reason,
                             fatal=bool(summary.error))


def incomplete_reason(path: Path, shown: int = 8) -> str:
    """Why a kit is incomplete: each deciding requirement not shown, with what it needs (summary.json `gaps`)."""
    try:
        gaps = json.loads(path.read_text(encoding="utf-8")).get("gaps") or []
    except (OSError, ValueError, AttributeError):
        gaps = []
    if not gaps:
        return "incomplete: a deciding requirement was not shown (see summary.json)"
    parts = [f"{g.get('requirement')} {g.get('status')} ({g.get('reason') or 'no reason given'})"
             for g in gaps[:shown]]
    more = f"; and {len(gaps) - shown} more in summary.json" if len(gaps) > shown else ""
    return (f"incomplete: {len(gaps)} deciding requirement(s) not shown: " + "; ".join(parts) + more)


PREFLIGHT_TIMEOUT_S = 10.0


def preflight(base_urls: dict[str, str], timeout_s: float) -> None:
    """Fail fast when a remote target's host does not accept TCP connections (CliError names the URL).

    The plugin checks the TLS handshake at session start (with retries, for a register still starting);
    this check only spares a pytest start per kit when the address is plainly wrong or down.
    """
    import socket
    from urllib.parse import urlsplit

    for url in sorted(set(base_urls.values())):
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        last: OSError | None = None
        for attempt in range(2):
            try:
                with socket.create_connection((host, port), timeout=timeout_s):
                    last = None
                    break
            except OSError as e:
                last = e
                if attempt == 0:
                    time.sleep(1.0)
        if last is not None:
            reason = last.strerror or type(last).__name__
            if isinstance(last, TimeoutError | socket.timeout):
                reason = f"no answer within {timeout_s:g} s"
            raise CliError(f"target unreachable: {url}: {reason}; check base_urls in the target file, "
                           f"the network and any proxy")


def run_config(args: argparse.Namespace) -> RunConfig:
    """Check the target and kits before anything runs (CliError names the problem)."""
    from pcr_conformance import kits as kits_mod
    from pcr_conformance.errors import HarnessError
    from pcr_conformance.target import load_target, resolve_target_path

    try:
        suites = resources.suites_dir().resolve()
    except FileNotFoundError as e:
        raise CliError(str(e)) from None
    try:
        target = load_target(args.target)
        target_file = resolve_target_path(args.target)
    except (HarnessError, OSError) as e:
        raise CliError(str(e)) from None
    recording = getattr(args, "recording", None)
    if recording and not Path(recording).is_file():
        raise CliError(f"--recording {recording}: no such file; give the HAR file of the system's traffic")
    # Without --kit: the register kits, or with a recording the client kits (side = "client").
    side = "client" if recording else "register"
    names = (list(dict.fromkeys(args.kit)) if args.kit
             else [k for k in kits_mod.available_kits() if kits_mod.load_kit(k).side == side])
    if not names:
        raise CliError(f"no kits found in {', '.join(map(str, kits_mod.kit_dirs()))}; add kits/<kit>.toml "
                       f"or pass --kit")
    kit_names: list[str] = []
    kit_args: list[str] = []
    sides: set[str] = set()
    for name in names:
        try:
            kit = kits_mod.load_kit(name)
        except (HarnessError, OSError) as e:
            raise CliError(str(e)) from None
        sides.add(kit.side)
        kit_names.append(kit.name)
        kit_args.append(_as_argument(name, Path(kit.source), resources.kits_dir()))
    if sides == {"client"}:
        suites = suites / CLIENT_SUITES  # client kits judge a recording: only their suite is collected
    elif not target.embedded:
        preflight(dict(target.base_urls), min(target.timeout_s, PREFLIGHT_TIMEOUT_S))
    contract_version = getattr(args, "contract_version", None) or target.contract_version
    if contract_version:
        try:  # this process (the verdict table) and the session it starts read that version's files
            versions.select(contract_version)
        except versions.VersionError as e:
            raise CliError(f"--contract-version: {e}") from None
    return RunConfig(contract_version=contract_version or "",
                     target=_as_argument(args.target, target_file, resources.targets_dir()),
                     target_name=target.name, kits=tuple(kit_names), kit_args=tuple(kit_args),
                     profile=args.profile,
                     output=Path(args.output).resolve(), html=not args.no_html, mask_pii=args.mask_pii,
                     timeout_s=args.timeout, suites=suites, contract=getattr(args, "contract", None),
                     implementation_profile=getattr(args, "implementation_profile", None),
                     recording=str(Path(recording).resolve()) if recording else None,
                     workers=1 if sides == {"client"} else workers_for(getattr(args, "workers", "auto"),
                                                                       embedded=target.embedded))


def _as_argument(given: str, file: Path, pytest_folder: Path) -> str:
    """A name stays a name when it names a file shipped with the kit (`pytest_folder`), so the summary and
    environment.properties show the name; otherwise (a user's file, a path) the file's absolute path."""
    if Path(given).name == given and not given.endswith(".toml"):
        if (pytest_folder / f"{given}.toml").resolve() == file.resolve():
            return given
    return str(file.resolve())


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise Signalled(signum)


def main(args: argparse.Namespace) -> int:
    config = run_config(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    notices: list[str] = []

    def notice(message: str) -> None:
        if message not in notices:  # "Allure is not installed" once, not per kit
            notices.append(message)
            print(message, flush=True)

    try:
        outcomes = run_kits(config, html_notice=notice)
    except (Signalled, KeyboardInterrupt) as e:  # while folders were moved
        err(f"{', '.join(config.kits)}: stopped by {_cause(e)}")
        return EXIT_ERROR
    return report_outcomes(config, outcomes, args.json)


def report_outcomes(config: RunConfig, outcomes: list[report.KitOutcome], json_file: str | None) -> int:
    """The errors once each, the verdict table, the JSON table if asked; the worst exit code (also `proxy`)."""
    said: set[str] = set()
    for outcome in outcomes:
        if outcome.exit_code == EXIT_ERROR:
            if outcome.fatal and outcome.reason in said:
                continue  # one session: the same cause stopped every kit, said once
            said.add(outcome.reason)
            err(f"{outcome.kit}: {'could not run' if outcome.fatal else 'error'}: {outcome.reason}")
    same = [o.kit for o in outcomes[1:] if o.fatal and o.reason == outcomes[0].reason] if outcomes else []
    if outcomes and outcomes[0].fatal and same:
        err(f"not run: {', '.join(same)} (fix the problem above first)")
        outcomes = [outcomes[0], *[o for o in outcomes[1:] if o.kit not in same]]
    print()
    print(report.render_table(outcomes))
    print(f"reports: {config.output}")
    if json_file:
        Path(json_file).write_text(json.dumps(report.outcomes_to_json(outcomes), indent=1), encoding="utf-8")
    return worst_exit_code([o.exit_code for o in outcomes])
