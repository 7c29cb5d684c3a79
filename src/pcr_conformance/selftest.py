"""The seeded-fault self-test (docs/concepts.md#self-test, issue 6).

For each fault switch of the reference register: start the register with that fault (through the embedded
target, which passes PCR_REGISTER_FAULTS on to the register process), run the tests that verify the broken
requirement, and record whether at least one test failed and whether summary.json failed the requirement (it
fails exactly the requirements the failures name; any other failed requirement is listed as `also_failed`). The
authored tests of the requirement run first, its fuzz tests only when they miss the fault, and the whole kit
only when those miss it too (`stages`); each pass stops at FAIL_CAP failing tests. One run without any fault must have
zero failures (no false alarms) and the verdict conformant. A suite that stays green against a broken register
is a defect of the suite.

The fault list comes from `pcr-register faults` (JSON), never from importing pcr_register (ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pcr_conformance import proof, readings, resources
from pcr_conformance.collect import collect_verifies
from pcr_conformance.selftest_report import (  # noqa: F401 - the report's API, used as selftest.*
    FAIL_CAP,
    Fault,
    FaultResult,
    RunOutcome,
    control_clean,
    render_matrix,
    selftest_passed,
    to_json,
)

SELFTEST_JOBS = 3  # runs at a time: each is a pytest process and a register process, partly waiting on each other
RUN_TIMEOUT_S = 900  # one pytest run against one faulty register; a hang is reported, never waited out


class SelftestError(Exception):
    """The self-test could not be run (no fault list, no suites): exit code 2."""


def load_faults(names: Iterable[str] = ()) -> list[Fault]:
    """The register's fault switches, optionally only the named ones (unknown names are an error)."""
    exe = shutil.which("pcr-register") or str(Path(sys.executable).parent / "pcr-register")
    try:
        out = subprocess.run([exe, "faults"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SelftestError(f"cannot list the register's faults with 'pcr-register faults': {exc}") from exc
    faults = [Fault(f["name"], f["requirement"], f.get("description", "")) for f in json.loads(out)]
    wanted = list(names)
    if not wanted:
        return faults
    by_name = {f.name: f for f in faults}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SelftestError(f"unknown fault(s): {', '.join(unknown)}; 'pcr-register faults' lists them")
    return [by_name[n] for n in wanted]


def parse_junit(path: Path) -> tuple[int, int, int, list[str]]:
    """(failed, broken, passed, failure messages) from a JUnit XML file written by pytest."""
    if not path.exists():
        return 0, 0, 0, []
    root = ET.parse(path).getroot()
    failed = broken = passed = 0
    messages: list[str] = []
    for case in root.iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            failed += 1
            messages.append(f"{failure.get('message', '')}\n{failure.text or ''}")
        elif error is not None:
            broken += 1
        elif skipped is None:
            passed += 1
    return failed, broken, passed, messages


def failing_test_ids(path: Path) -> tuple[str, ...]:
    """"classname::name" of each failed test case of a JUnit XML file (none when there is no file)."""
    if not path.exists():
        return ()
    return tuple(f"{case.get('classname', '')}::{case.get('name', '')}" for case in ET.parse(path).getroot().iter("testcase")
                 if case.find("failure") is not None)


def pytest_args(node_ids: list[str], *, target: str, kit: str, workdir: Path, contract: str | None = None,
                maxfail: int = 0) -> list[str]:
    """pytest's arguments for the given tests (all of the kit when node_ids is empty), results into workdir;
    `maxfail` > 0 stops the session after that many failures.

    Node ids are relative to the folder above suites/ (as collected)."""
    suites = resources.suites_dir().resolve()
    tests = [str(suites.parent / node) for node in node_ids] or [str(suites)]
    args = [*tests, *resources.suites_pytest_args(), "--pcr-target", target, "--pcr-kit", kit,
            "--pcr-profile", "certification", "--junitxml", str(workdir / "junit.xml"), "--pcr-output", str(workdir),
            "-q", "-p", "no:cacheprovider", "-o", "console_output_style=classic"]
    if maxfail > 0:
        args.append(f"--maxfail={maxfail}")
    if contract == "public":
        # As any register that is not ours is judged: the public reading and no implementation profile.
        args += ["--pcr-contract", "public", "--pcr-implementation-profile", ""]
    elif contract:
        args += ["--pcr-contract", contract]
    return args


def broken_test_ids(path: Path) -> tuple[str, ...]:
    """"classname::name: the error's first line" of each broken (error) test case of a JUnit XML file."""
    if not path.exists():
        return ()
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        error = case.find("error")
        if error is not None and case.find("failure") is None:
            said = (error.get("message") or error.text or "").strip().splitlines()
            out.append(f"{case.get('classname', '')}::{case.get('name', '')}: {said[0] if said else '(no message)'}")
    return tuple(out)


def outcome_of(workdir: Path, exit_code: int, duration_s: float) -> RunOutcome:
    """What a finished run left in workdir: JUnit counts and messages, summary.json's verdict and failures."""
    failed, broken, passed, messages = parse_junit(workdir / "junit.xml")
    verdict, failed_reqs = read_summary(workdir / "summary.json")
    return RunOutcome(exit_code, failed, broken, passed, tuple(messages), duration_s,
                      verdict=verdict, failed_requirements=failed_reqs,
                      failing_tests=failing_test_ids(workdir / "junit.xml"),
                      broken_tests=broken_test_ids(workdir / "junit.xml"))


def run_pytest(
    node_ids: list[str], *, faults: str, target: str, kit: str, workdir: Path, timeout_s: float = RUN_TIMEOUT_S,
    contract: str | None = None, maxfail: int = 0,
) -> RunOutcome:
    """Run the given tests (all of the kit when node_ids is empty) against a register with the given faults,
    in a `python -m pytest` subprocess (where forked.available() is false); pytest runs in `workdir`."""
    cmd = [sys.executable, "-P", "-m", "pytest",
           *pytest_args(node_ids, target=target, kit=kit, workdir=workdir, contract=contract, maxfail=maxfail)]
    env = dict(os.environ)
    env["PCR_REGISTER_FAULTS"] = faults
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s)
        exit_code = proc.returncode
        (workdir / "pytest.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    except subprocess.TimeoutExpired:
        exit_code = -1
    return outcome_of(workdir, exit_code, time.monotonic() - started)


def read_summary(path: Path) -> tuple[str, tuple[str, ...]]:
    """(verdict, the requirements it failed) of a summary.json; ("", ()) when there is none."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ()
    reqs = doc.get("requirements") if isinstance(doc, dict) else None
    if not isinstance(reqs, dict):
        return str(doc.get("verdict", "")) if isinstance(doc, dict) else "", ()
    return str(doc.get("verdict", "")), tuple(sorted(r for r, s in reqs.items() if s == "failed"))


def tests_verifying(verifies: dict[str, list[str]], requirement: str) -> list[str]:
    return sorted(node for node, ids in verifies.items() if requirement in ids)


def stages(verifies: dict[str, list[str]], requirement: str) -> list[tuple[str, list[str]]]:
    """A fault's passes, each run only while the fault is still undetected (all of them with --full): the
    authored tests verifying its requirement ("targeted": corpus, scenarios, security), then its fuzz tests
    ("fuzz", the slowest: a fault the authored tests catch needs no fuzzing to be proven), then the whole kit
    ("kit", for a fault no test of its requirement catches). Passes without tests are left out."""
    nodes = tests_verifying(verifies, requirement)
    fuzz = [n for n in nodes if n.startswith("suites/fuzz/")]
    authored = [n for n in nodes if n not in fuzz]
    return [*((label, tests) for label, tests in (("targeted", authored), ("fuzz", fuzz)) if tests), ("kit", [])]


def run_selftest(
    faults: list[Fault],
    *,
    target: str = "reference",
    kit: str = "register",
    full: bool = False,
    jobs: int = SELFTEST_JOBS,
    progress: Callable[[str], None] = print,
    contract: str | None = None,
) -> tuple[list[FaultResult], RunOutcome]:
    """Run every fault and the no-fault control run. Returns the per-fault results and the control run.

    Each run is a pytest session with its own register process, so the runs are independent and go `jobs` at
    a time, the control run (the whole kit in one session, the longest) first. Where the platform allows,
    each run is a fork of this process after it collected the suites once (forked.py); else a subprocess."""
    from pcr_conformance import forked

    if forked.available():
        return _run_forked(faults, target=target, kit=kit, full=full, jobs=jobs, progress=progress, contract=contract)
    verifies = collect_verifies(target=target, kit=kit)
    if not verifies:
        raise SelftestError("no tests collected under suites/ (is the plugin installed?)")
    with tempfile.TemporaryDirectory(prefix="pcr-selftest-") as tmp:
        tmp_path = Path(tmp)

        def one(indexed: tuple[int, Fault]) -> FaultResult:
            index, fault = indexed
            result = FaultResult(fault, tests_selected=len(tests_verifying(verifies, fault.requirement)))
            for label, nodes in stages(verifies, fault.requirement):
                if result.passes and not (full or not result.detected):
                    break
                if label == "kit" and contract == "public" and not readings.is_public_requirement(fault.requirement):
                    result.note = "modelled requirement: informative under the public reading"
                    break
                result.passes.append(label)
                outcome = run_pytest(nodes, faults=fault.name, target=target, kit=kit, maxfail=FAIL_CAP,
                                     workdir=_fresh(tmp_path / f"{fault.name}-{label}"), contract=contract)
                _record(result, outcome)
            _finish(result, index, len(faults), progress)
            return result

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            control_run = pool.submit(run_pytest, [], faults="", target=target, kit=kit,
                                      workdir=_fresh(tmp_path / "control"), contract=contract)
            results = list(pool.map(one, enumerate(faults, 1)))
            control = control_run.result()
    progress("control run: the whole kit against the register without faults")
    return results, control


def _finish(result: FaultResult, index: int, total: int, progress: Callable[[str], None]) -> None:
    if not result.tests_selected:
        result.note = result.note or "no test verifies this requirement"
    progress(f"[{index}/{total}] {result.fault.name} ({result.fault.requirement}): "
             f"{'detected' if result.detected else 'NOT detected'} by {result.tests_failed} failing "
             f"test(s) of {result.tests_selected} targeted, {result.duration_s:.1f} s")


def _run_forked(faults: list[Fault], *, target: str, kit: str, full: bool, jobs: int,
                progress: Callable[[str], None], contract: str | None = None) -> tuple[list[FaultResult], RunOutcome]:
    """run_selftest with each run a fork of this process, which collects the suites once first."""
    from pcr_conformance import forked
    from pcr_conformance.collect import VerifiesCollector

    collector = VerifiesCollector()
    suites = resources.suites_dir().resolve()
    import pytest

    with tempfile.TemporaryDirectory(prefix="pcr-selftest-") as tmp:
        tmp_path = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()) as said:  # "1207 tests collected" is not for the console
            code = pytest.main([str(suites), *resources.suites_pytest_args(), "--pcr-target", target,
                                "--pcr-kit", kit, "--collect-only", "-q", "-p", "no:cacheprovider"],
                               plugins=[collector])
        if int(code) not in (0, 5):
            lines = [ln for ln in said.getvalue().splitlines() if ln.strip()]
            raise SelftestError(f"collecting the suites failed (pytest exit {int(code)}): "
                                f"{lines[-1] if lines else 'no output'}")
        if not collector.verifies:
            raise SelftestError(f"no tests collected under suites/ (pytest exit {int(code)}; is the plugin installed?)")
        embedded_target = _prepare_register(target)
        _warm_up()
        results = {f.name: FaultResult(f, tests_selected=len(tests_verifying(collector.verifies, f.requirement)))
                   for f in faults}
        order = {f.name: i for i, f in enumerate(faults, 1)}
        control: list[RunOutcome] = []

        def job(fault: str, nodes: list[str], label: str) -> forked.Job:
            workdir = _fresh(tmp_path / (f"{fault}-{label}" if fault else "control"))
            return forked.Job(pytest_args(nodes, target=target, kit=kit, workdir=workdir, contract=contract,
                                          maxfail=FAIL_CAP if fault else 0), workdir,
                              {"PCR_REGISTER_FAULTS": fault}, RUN_TIMEOUT_S, key=(fault, label))

        def on_done(done: forked.Done) -> list[forked.Job]:
            fault, label = done.job.key  # type: ignore[misc]
            outcome = outcome_of(done.job.workdir, done.exit_code, done.duration_s)
            if not fault:
                control.append(outcome)
                return []
            result = results[fault]
            result.passes.append(label)
            _record(result, outcome)
            passes = stages(collector.verifies, result.fault.requirement)
            later = passes[[name for name, _ in passes].index(label) + 1:]
            if later and later[0][0] == "kit" and contract == "public" \
                    and not readings.is_public_requirement(result.fault.requirement):
                result.note = "modelled requirement: informative under the public reading"
            elif later and (full or not result.detected):  # the next pass, for a fault still undetected
                return [job(fault, *later[0][::-1])]
            _finish(result, order[fault], len(faults), progress)
            return []

        first = [job("", [], "control")]
        for f in faults:
            label, nodes = stages(collector.verifies, f.requirement)[0]
            first.append(job(f.name, nodes, label))
        with contextlib.ExitStack() as stack:
            if embedded_target:
                _fork_server(stack)
            forked.run_all(first, parallel=max(1, jobs), on_done=on_done)
    progress("control run: the whole kit against the register without faults")
    return [results[f.name] for f in faults], control[0]


def _prepare_register(target: str) -> bool:
    """The embedded register's data dir made once, before the forks, so every run's register shares it;
    whether the target is embedded."""
    from pcr_conformance import embedded
    from pcr_conformance.errors import HarnessError
    from pcr_conformance.target import load_target

    try:
        if load_target(target).embedded:
            embedded.prepared(embedded.register_command())
            return True
    except HarnessError as e:
        raise SelftestError(f"embedded register: {e}") from e
    return False


def _warm_up() -> None:
    """Before the forks: what every run would otherwise compute the same way for itself. The spec files' versions
    for the report (allure_support keeps them per content), and inspect's index of which file is which imported
    module, built on first use, which pytest asks when it formats a failing test's traceback (every fault run
    has one)."""
    import inspect

    from pcr_conformance import allure_support

    allure_support.spec_files()
    inspect.getmodule(_warm_up.__code__)


def _fork_server(stack: contextlib.ExitStack) -> None:
    """One `pcr-register fork-server` for the runs' embedded registers, until `stack` closes: it forks each
    run's register with the run's command line and environment (its faults among them), so no run waits for
    a register's imports and spec parsing (embedded_forks.py)."""
    from pcr_conformance import embedded, embedded_forks
    from pcr_conformance.errors import HarnessError

    try:
        stack.enter_context(embedded_forks.running_server(embedded.register_command(), embedded.register_env(),
                                                           embedded.die_with_parent))
    except HarnessError as e:
        raise SelftestError(f"embedded register: {e}") from e


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record(result: FaultResult, outcome: RunOutcome) -> None:
    result.duration_s += outcome.duration_s
    # Distinct failing tests: a test failing in the targeted and the kit pass counts once.
    seen = set(result.failing_tests) | set(outcome.failing_tests)
    result.failing_tests = sorted(seen)
    result.tests_failed = len(seen)
    result.tests_run += outcome.failed + outcome.broken + outcome.passed
    if outcome.failed:
        result.detected = True
        # Named: summary.json failed the broken requirement (attribution by the requirement a failure names).
        result.named = result.named or result.fault.requirement in outcome.failed_requirements
        result.also_failed = sorted(set(result.also_failed)
                                    | (set(outcome.failed_requirements) - {result.fault.requirement}))
    if outcome.exit_code == -1:
        result.note = "timed out"


def unproven_requirements(faults: Iterable[Fault], kit: str = "register") -> list[str]:
    """The kit's testable requirements (no not_tested reason) that no fault of `faults` breaks (issue 13)."""
    from pcr_conformance import kits
    from pcr_conformance.errors import HarnessError

    try:
        reqs = kits.load_kit(kit).selected(kits.load_requirements())
    except HarnessError as e:
        raise SelftestError(str(e)) from e
    return proof.unproven([r.id for r in reqs.values() if not r.not_tested], [f.requirement for f in faults])
