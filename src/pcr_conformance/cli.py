"""`pcr-conformance`: run kits against a target, validate message files, list requirements, rebuild reports.

Exit codes (design.md §1): 0 every kit conformant / every file valid; 1 a requirement failed / a file has
errors; 2 the run could not be made (bad target or kit file, unreachable target, pytest usage or collection
error, missing summary.json, timeout) or a file could not be validated.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from pcr_conformance import report

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
KIT_TIMEOUT_S = 40 * 60  # one kit's pytest session; a hang is killed and reported, never waited out
PROFILES = ("certification", "regression")


class CliError(Exception):
    """A problem the user must fix before anything can run: one line on stderr, exit code 2."""


def _repo_dir(name: str) -> Path:
    """`name` (suites/, kits/) in the current folder when present, else in the pcr-conformance repository."""
    here = Path.cwd() / name
    return here if here.is_dir() else report.REPO_ROOT / name


def _err(message: str) -> None:
    print(f"pcr-conformance: {message}", file=sys.stderr)


# ---- run ------------------------------------------------------------------------------------------------


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


def pytest_command(config: RunConfig, kit: str, folder: Path) -> list[str]:
    """The pytest invocation of one kit (name or file, as in config.kit_args); results go to `folder`."""
    cmd = [
        sys.executable, "-m", "pytest", str(config.suites),
        "--target", config.target, "--kit", kit, "--profile", config.profile,
        "--alluredir", str(folder / "allure-results"), "--junitxml", str(folder / "junit.xml"),
        "--pcr-output", str(folder),
        "-q", "--tb=short", "-rfE", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
    ]
    if config.mask_pii:
        cmd.append("--mask-pii")
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


_SECTION_RE = re.compile(r"^=+ (.+?) =+$")
_PROGRESS_CHARS = set(".sFExX ")


class ConsoleFilter:
    """Pytest's output for the console: progress and the short summary, not the tracebacks.

    The whole output goes to pytest.log; on the console the FAILURES / ERRORS sections (tracebacks) are
    replaced by one hint line, because each failure is listed again in the short test summary. Progress dots
    are shown as they come, before their line is complete.
    """

    def __init__(self, prefix: str, log_name: str = "pytest.log") -> None:
        self.prefix = prefix
        self.log_name = log_name
        self.pending = ""  # the incomplete last line
        self.shown = 0  # how much of `pending` is already on the console
        self.hidden = False

    def feed(self, text: str) -> str:
        out: list[str] = []
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            shown, self.shown = self.shown, 0
            if shown:  # the line's start is already on the console: finish it
                out.append(line[shown:] + "\n")
                continue
            out.append(self._line(line))
        if self.pending and not self.hidden and set(self.pending) <= _PROGRESS_CHARS:
            if not self.shown:
                out.append(self.prefix)
            out.append(self.pending[self.shown:])
            self.shown = len(self.pending)
        return "".join(out)

    def _line(self, line: str) -> str:
        m = _SECTION_RE.match(line.strip())
        if m:
            title = m.group(1)
            if title in ("FAILURES", "ERRORS") or title.startswith("warnings summary"):
                if not self.hidden:
                    self.hidden = True
                    return f"{self.prefix}({title.lower()}: details in {self.log_name}, junit.xml and the report)\n"
                return ""
            self.hidden = False
        if self.hidden:
            return ""
        return f"{self.prefix}{line}\n"

    def flush(self) -> str:
        rest = self.feed("\n") if self.pending else ""
        return rest


def stream_process(cmd: Sequence[str], *, cwd: Path, prefix: str, timeout_s: float,
                   out: IO[str] | None = None, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run cmd, showing its output through ConsoleFilter on `out`; kill its process group after timeout_s.

    Returns (exit code or None on timeout, the whole output).
    """
    out = out or sys.stdout
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    chunks: list[str] = []
    console = ConsoleFilter(prefix)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def copy() -> None:
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            text = decoder.decode(data)
            chunks.append(text)
            out.write(console.feed(text))
            out.flush()

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        code = None
    except BaseException:  # Ctrl-C or SIGTERM: never leave pytest or the register behind
        _kill_group(proc)
        raise
    reader.join(timeout=10)
    out.write(console.flush())
    out.flush()
    return code, "".join(chunks)


STOP_GRACE_S = 10.0


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop pytest's process group: SIGINT first (pytest ends the session as on Ctrl-C, so the plugin stops the
    embedded register, which runs in its own session), then SIGKILL whatever is left after STOP_GRACE_S."""
    for sig, wait_s in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            if sig == signal.SIGKILL:
                proc.kill()
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


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
    try:
        code, output = stream_process(pytest_command(config, kit_arg, tmp), cwd=config.suites.parent,
                                      prefix=f"[{kit}] ", timeout_s=config.timeout_s, env=env)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / "pytest.log").write_text(output, encoding="utf-8")
    duration = time.monotonic() - started
    outcome = _outcome(kit, config, code, output, tmp)
    if config.html and not outcome.fatal and (tmp / "allure-results").is_dir():
        html = report.generate_html(tmp, report_name=f"PCR conformance: {kit} on {config.target_name}")
        if html.ok:
            html = dataclasses.replace(html, message=f"HTML report: {final / 'html' / 'index.html'}")
        html_notice(html.message)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return dataclasses.replace(outcome, folder=str(final), duration_s=duration)


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


def _outcome(kit: str, config: RunConfig, code: int | None, output: str, folder: Path) -> report.KitOutcome:
    target = config.target_name
    if code is None:
        return report.KitOutcome(kit, target, EXIT_ERROR, fatal=True,
                                 reason=f"pytest did not finish within {config.timeout_s:.0f} s and was stopped")
    if code in (2, 3, 4) or code < 0:
        return report.KitOutcome(kit, target, EXIT_ERROR, reason=failure_reason(output, code), fatal=True)
    try:
        summary = report.read_summary(folder / "summary.json")
    except report.ReportError:
        reason = "pytest wrote no summary.json (is the pcr_conformance plugin installed? pip install -e .)"
        if code not in (0, 1, 5):
            reason = failure_reason(output, code)
        return report.KitOutcome(kit, target, EXIT_ERROR, reason=reason, fatal=True)
    verdict_code = {"conformant": EXIT_OK, "not-conformant": EXIT_FAILED}.get(summary.verdict, EXIT_ERROR)
    reason = ""
    if verdict_code == EXIT_ERROR:
        if summary.error:
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

    suites = _repo_dir("suites").resolve()
    if not suites.is_dir():
        raise CliError(f"no suites/ folder in {Path.cwd()} or {report.REPO_ROOT}; run from the repository")
    try:
        target = load_target(args.target)
        target_file = resolve_target_path(args.target)
    except (HarnessError, OSError) as e:
        raise CliError(str(e)) from None
    names = list(dict.fromkeys(args.kit)) if args.kit else kits_mod.available_kits()
    if not names:
        raise CliError(f"no kits found in {kits_mod.kits_dir()}; add kits/<kit>.toml or pass --kit")
    kit_names: list[str] = []
    kit_args: list[str] = []
    for name in names:
        try:
            kit = kits_mod.load_kit(name)
        except (HarnessError, OSError) as e:
            raise CliError(str(e)) from None
        kit_names.append(kit.name)
        kit_args.append(_as_argument(name, Path(kit.source), suites.parent / "kits"))
    if not target.embedded:
        preflight(dict(target.base_urls), min(target.timeout_s, PREFLIGHT_TIMEOUT_S))
    return RunConfig(target=_as_argument(args.target, target_file, suites.parent / "targets"),
                     target_name=target.name, kits=tuple(kit_names), kit_args=tuple(kit_args),
                     profile=args.profile,
                     output=Path(args.output).resolve(), html=not args.no_html, mask_pii=args.mask_pii,
                     timeout_s=args.timeout, suites=suites)


def _as_argument(given: str, file: Path, pytest_folder: Path) -> str:
    """A name stays a name when pytest (run in the repository) finds the same file by it, so the summary
    and environment.properties show the name; otherwise the file's absolute path."""
    if Path(given).name == given and not given.endswith(".toml"):
        if (pytest_folder / f"{given}.toml").resolve() == file.resolve():
            return given
    return str(file.resolve())


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through stream_process, which stops pytest and the register


def cmd_run(args: argparse.Namespace) -> int:
    config = run_config(args)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    notices: list[str] = []

    def notice(message: str) -> None:
        if message not in notices:  # "Allure is not installed" once, not per kit
            notices.append(message)
            print(message, flush=True)

    outcomes: list[report.KitOutcome] = []
    for index, (kit, kit_arg) in enumerate(zip(config.kits, config.kit_args, strict=True)):
        outcome = run_kit(config, kit, kit_arg, html_notice=notice)
        outcomes.append(outcome)
        if outcome.exit_code == EXIT_ERROR:
            _err(f"{kit}: {'could not run' if outcome.fatal else 'error'}: {outcome.reason}")
            rest = config.kits[index + 1:]
            if outcome.fatal and rest:
                _err(f"not run: {', '.join(rest)} (fix the problem above first)")
                break
    print()
    print(report.render_table(outcomes))
    print(f"reports: {config.output}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.outcomes_to_json(outcomes), indent=1), encoding="utf-8")
    return max(o.exit_code for o in outcomes)


# ---- validate -------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from pcr_conformance import validate

    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise CliError(f"--today {args.today!r} is not a yyyy-MM-dd date") from None
    try:
        results = validate.validate_files(args.files, operation=args.operation, today=today,
                                          owner_is_kela=args.owner_is_kela)
    except validate.ValidationInputError as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(validate.to_json(results), indent=1))
    else:
        print(validate.render_text(results))
    return EXIT_OK if all(r.valid for r in results) else EXIT_FAILED


# ---- requirements -----------------------------------------------------------------------------------------


def requirement_rows(kit: str | None) -> list[dict[str, Any]]:
    """Each requirement (of the kit, if given) with the tests that verify it."""
    from pcr_conformance import collect
    from pcr_conformance import kits as kits_mod
    from pcr_conformance.errors import HarnessError

    try:
        reqs = kits_mod.load_requirements()
        if kit:
            reqs = kits_mod.load_kit(kit).selected(reqs)
    except HarnessError as e:
        raise CliError(str(e)) from None
    suites = _repo_dir("suites")
    try:
        verifies = collect.collect_verifies(suites, kit=kit or "register") if suites.is_dir() else {}
    except (RuntimeError, subprocess.SubprocessError) as e:
        raise CliError(f"cannot collect the tests under {suites}: {str(e).splitlines()[0]}") from None
    tests: dict[str, list[str]] = {rid: [] for rid in reqs}
    for node, ids in verifies.items():
        for rid in ids:
            if rid in tests:
                tests[rid].append(node)
    return [{"id": r.id, "level": r.level, "title": r.title, "error_code": r.error_code,
             "not_tested": r.not_tested, "tests": sorted(tests[r.id])} for r in reqs.values()]


def cmd_requirements(args: argparse.Namespace) -> int:
    rows = requirement_rows(args.kit)
    uncovered = [r for r in rows if r["level"] == "must" and not r["tests"] and not r["not_tested"]]
    shown = uncovered if args.uncovered else rows
    if args.json:
        print(json.dumps(shown, indent=1))
    else:
        for r in shown:
            if r["tests"]:
                cover = f"{len(r['tests'])} test(s)"
            elif r["not_tested"]:
                cover = f"not tested: {r['not_tested']}"
            else:
                cover = "NO TEST"
            print(f"{r['id']}  {r['level']:<6}  {r['title']}  [{cover}]")
            if not args.uncovered:
                for node in r["tests"]:
                    print(f"    {node}")
        covered = sum(1 for r in rows if r["tests"])
        scope = f"kit {args.kit}" if args.kit else "all kits"
        print(f"\n{len(rows)} requirements ({scope}): {covered} verified by tests, "
              f"{sum(1 for r in rows if r['not_tested'])} not tested with a reason, "
              f"{len(uncovered)} must-requirements without either")
    return EXIT_FAILED if args.uncovered and uncovered else EXIT_OK


# ---- report ---------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise CliError(f"{root} is not a folder; give reports/ or reports/<kit>/<target>/")
    folders = report.report_folders(root)
    if not folders:
        raise CliError(f"no allure-results/ under {root}; run `pcr-conformance run` first")
    code = EXIT_OK
    for folder in folders:
        name = f"PCR conformance: {folder.parent.name} on {folder.name}"
        html = report.generate_html(folder, report_name=name)
        print(f"{folder}: {html.message}")
        if not html.ok:
            code = EXIT_ERROR
    summaries = []
    for folder in folders:
        try:
            s = report.read_summary(folder / "summary.json")
            summaries.append(report.KitOutcome(folder.parent.name, folder.name, 0, summary=s))
        except report.ReportError:
            continue
    if summaries:
        print()
        print(report.render_table(summaries))
    return code


# ---- selftest -------------------------------------------------------------------------------------------


def cmd_selftest(args: argparse.Namespace) -> int:
    from pcr_conformance import selftest

    try:
        faults = selftest.load_faults(args.fault)
        results, control = selftest.run_selftest(faults, target=args.target, kit=args.kit, full=args.full)
    except (selftest.SelftestError, RuntimeError) as e:
        raise CliError(str(e).splitlines()[0]) from None
    print(selftest.render_matrix(results, control))
    if args.json:
        Path(args.json).write_text(json.dumps(selftest.to_json(results, control), indent=1), encoding="utf-8")
    return EXIT_OK if selftest.selftest_passed(results, control) else EXIT_FAILED


# ---- argument parsing ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcr-conformance",
        description="Conformance kit for the Finnish Positive Credit Register APIs.",
        epilog="Exit codes: 0 conformant / valid, 1 a requirement failed / a message has errors, "
               "2 could not run (configuration, network, TLS, unreadable file).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run kits against a target and write reports",
                         description="Run each kit's conformance tests against a target; reports go to "
                                     "OUTPUT/<kit>/<target>/ (allure-results, junit.xml, summary.json, html).")
    run.add_argument("--target", default="reference",
                     help="target name (targets/<name>.toml) or path to a target file (default: reference, "
                          "the embedded reference register)")
    run.add_argument("--kit", action="append", default=[], metavar="KIT",
                     help="kit to run (kits/<kit>.toml); repeat for several (default: every kit)")
    run.add_argument("--profile", choices=PROFILES, default="certification",
                     help="certification: deterministic fuzzing (default); regression: random, longer")
    run.add_argument("--output", default="reports", metavar="DIR", help="report folder (default: reports)")
    run.add_argument("--no-html", action="store_true", help="do not generate the Allure HTML report")
    run.add_argument("--mask-pii", action="store_true",
                     help="mask personal identity codes in the report's attachments")
    run.add_argument("--timeout", type=float, default=KIT_TIMEOUT_S, metavar="SECONDS",
                     help=f"stop a kit's run after this long (default: {KIT_TIMEOUT_S} s)")
    run.add_argument("--json", metavar="FILE", help="also write the verdict table as JSON to FILE")
    run.set_defaults(func=cmd_run)

    val = sub.add_parser("validate", help="check your own message files offline",
                         description="Check JSON request bodies against the operation's schema and every rule "
                                     "that needs no register. Prints file, JSON pointer, requirement ID, error "
                                     "code, the problem and how to fix it.")
    val.add_argument("files", nargs="+", metavar="FILE",
                     help="JSON request body files; loans in one file give contract dates for the others")
    val.add_argument("--operation", metavar="OP",
                     help="operationId (e.g. AddLoans); default: inferred from the file's members")
    val.add_argument("--json", action="store_true", help="print the results as JSON")
    val.add_argument("--owner-is-kela", action="store_true",
                     help="the sender is Kela, so GuaranteeReceivable loans are allowed (RPT-009)")
    val.add_argument("--today", metavar="YYYY-MM-DD", help="the date to check date rules against (default: today)")
    val.set_defaults(func=cmd_validate)

    req = sub.add_parser("requirements", help="the requirement register and the tests verifying each",
                         description="List the requirements (of a kit) with the tests that verify each one.")
    req.add_argument("--kit", metavar="KIT", help="only the requirements this kit selects")
    req.add_argument("--uncovered", action="store_true",
                     help="only must-requirements with no test and no not_tested reason; exit 1 if any")
    req.add_argument("--json", action="store_true", help="print JSON")
    req.set_defaults(func=cmd_requirements)

    rep = sub.add_parser("report", help="regenerate the HTML report from existing results",
                         description="Regenerate html/ from allure-results/ of DIR (a reports/<kit>/<target> "
                                     "folder, or reports/ for all of them).")
    rep.add_argument("dir", metavar="DIR")
    rep.set_defaults(func=cmd_report)

    st = sub.add_parser("selftest", help="seeded-fault self-test of the suites",
                        description="Run the suites against the reference register with each fault switch; "
                                    "every fault must be detected and the control run must be clean.")
    st.add_argument("--fault", action="append", default=[], metavar="NAME", help="only this fault (repeatable)")
    st.add_argument("--json", metavar="FILE", help="write the detection matrix as JSON to FILE")
    st.add_argument("--full", action="store_true", help="also run the whole kit for every fault")
    st.add_argument("--target", default="reference", help=argparse.SUPPRESS)
    st.add_argument("--kit", default="register", help=argparse.SUPPRESS)
    st.set_defaults(func=cmd_selftest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as e:
        _err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:  # `pcr-conformance requirements | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
