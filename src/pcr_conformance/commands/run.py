"""`pcr-conformance run`: each kit's suites in a pytest subprocess against one target, into
OUTPUT/<kit>/<target>/, then the verdict table.

The target and the kits are checked before anything runs (a bad file is one line on stderr, exit 2); a remote
target's host gets a TCP preflight. Each kit's results go to a temporary folder that replaces the kit's report
folder only when its run is over, so results of two runs never mix.
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

from pcr_conformance import report, resources
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


def run_kit(config: RunConfig, kit: str, kit_arg: str, *,
            html_notice: Callable[[str], None]) -> report.KitOutcome:
    """Run one kit into output/<kit>/<target>/, replacing that folder only when the run is over."""
    final = config.output / kit / config.target_name
    tmp = final.with_name(f".{config.target_name}.tmp-{os.getpid()}")
    _remove_stale_temp_folders(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.monotonic()
    # Wide enough for "FAILED <test id> - <requirement ID> <message>" (pytest cuts the line at COLUMNS).
    columns = max(shutil.get_terminal_size((240, 24)).columns, 240)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": str(columns)}
    print(f"== {kit} against {config.target_name} ({config.profile})", flush=True)
    stopped = ""
    try:
        code, output = stream_process(pytest_command(config, kit_arg, tmp), cwd=Path.cwd(),
                                      prefix=f"[{kit}] ", timeout_s=config.timeout_s, env=env)
    except ProcessStopped as e:
        code, output = None, e.output
        stopped = f"stopped by {_cause(e.cause)} after {time.monotonic() - started:.0f} s"
    if code is None and not stopped:
        stopped = (f"stopped by the kit's time limit (--timeout {config.timeout_s:g} s) after "
                   f"{time.monotonic() - started:.0f} s")
    (tmp / "pytest.log").write_text(output, encoding="utf-8")
    duration = time.monotonic() - started
    if stopped:
        # What pytest wrote stays (junit.xml, allure-results, its summary.json), with the reason in summary.json.
        keep_stop_reason(tmp / "summary.json", stopped, kit=kit, target=config.target_name)
        outcome = report.KitOutcome(kit, config.target_name, EXIT_ERROR, fatal=True, reason=stopped)
    else:
        outcome = _outcome(kit, config, code, output, tmp)
    report.carry_history(final, tmp)  # the kit's history against this target outlives the folder it replaces
    if config.html and not outcome.fatal and (tmp / "allure-results").is_dir():
        html = report.generate_html(tmp, report_name=f"PCR conformance: {kit} on {config.target_name}")
        if html.ok:
            html = dataclasses.replace(html, message=f"HTML report: {final / 'html' / 'index.html'}")
        html_notice(html.message)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return dataclasses.replace(outcome, folder=str(final), duration_s=duration)


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
    names = list(dict.fromkeys(args.kit)) if args.kit else kits_mod.available_kits()
    if not names:
        raise CliError(f"no kits found in {', '.join(map(str, kits_mod.kit_dirs()))}; add kits/<kit>.toml "
                       f"or pass --kit")
    kit_names: list[str] = []
    kit_args: list[str] = []
    for name in names:
        try:
            kit = kits_mod.load_kit(name)
        except (HarnessError, OSError) as e:
            raise CliError(str(e)) from None
        kit_names.append(kit.name)
        kit_args.append(_as_argument(name, Path(kit.source), resources.kits_dir()))
    if not target.embedded:
        preflight(dict(target.base_urls), min(target.timeout_s, PREFLIGHT_TIMEOUT_S))
    return RunConfig(target=_as_argument(args.target, target_file, resources.targets_dir()),
                     target_name=target.name, kits=tuple(kit_names), kit_args=tuple(kit_args),
                     profile=args.profile,
                     output=Path(args.output).resolve(), html=not args.no_html, mask_pii=args.mask_pii,
                     timeout_s=args.timeout, suites=suites, contract=getattr(args, "contract", None),
                     implementation_profile=getattr(args, "implementation_profile", None))


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

    outcomes: list[report.KitOutcome] = []
    for index, (kit, kit_arg) in enumerate(zip(config.kits, config.kit_args, strict=True)):
        try:
            outcome = run_kit(config, kit, kit_arg, html_notice=notice)
        except (Signalled, KeyboardInterrupt) as e:  # between two kits, or while a folder was moved
            err(f"{kit}: stopped by {_cause(e)}")
            return EXIT_ERROR
        outcomes.append(outcome)
        if outcome.exit_code == EXIT_ERROR:
            err(f"{kit}: {'could not run' if outcome.fatal else 'error'}: {outcome.reason}")
            rest = config.kits[index + 1:]
            if outcome.fatal and rest:
                err(f"not run: {', '.join(rest)} (fix the problem above first)")
                break
    print()
    print(report.render_table(outcomes))
    print(f"reports: {config.output}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.outcomes_to_json(outcomes), indent=1), encoding="utf-8")
    return worst_exit_code([o.exit_code for o in outcomes])
