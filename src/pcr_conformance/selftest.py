"""The seeded-fault self-test (docs/concepts.md#self-test, issue 6).

For each fault switch of the reference register: start the register with that fault (through the embedded
target, which passes PCR_REGISTER_FAULTS on to the register process), run the tests that verify the broken
requirement, and record whether at least one test failed and whether summary.json failed the requirement (it
fails exactly the requirements the failures name; any other failed requirement is listed as `also_failed`). A
fault the targeted tests miss gets a second pass with the whole kit. One run without any fault must have
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pcr_conformance import proof, readings, resources
from pcr_conformance.collect import collect_verifies

SELFTEST_JOBS = 3  # runs at a time: each is a pytest process and a register process, partly waiting on each other
# A fault's run stops at this many failing tests (pytest --maxfail): more prove nothing more, and a fault that
# breaks every answer (ENV-005 over 700 fuzz tests) would otherwise run them all. The control run never stops.
FAIL_CAP = 10
RUN_TIMEOUT_S = 900  # one pytest run against one faulty register; a hang is reported, never waited out


class SelftestError(Exception):
    """The self-test could not be run (no fault list, no suites): exit code 2."""


@dataclass(frozen=True)
class Fault:
    name: str
    requirement: str
    description: str


@dataclass(frozen=True)
class RunOutcome:
    """What one pytest run against one register reported."""

    exit_code: int
    failed: int
    broken: int
    passed: int
    failure_messages: tuple[str, ...]
    duration_s: float
    verdict: str = ""  # summary.json's verdict ("" when pytest wrote none)
    failed_requirements: tuple[str, ...] = ()  # summary.json's requirements with status failed
    failing_tests: tuple[str, ...] = ()  # "classname::name" of each failed JUnit test case


@dataclass
class FaultResult:
    fault: Fault
    tests_selected: int
    detected: bool = False
    named: bool = False
    tests_failed: int = 0  # distinct failing tests over all passes (len(failing_tests))
    passes: list[str] = field(default_factory=list)  # "targeted", "kit"
    duration_s: float = 0.0
    note: str = ""
    also_failed: list[str] = field(default_factory=list)  # requirements failed besides the broken one
    tests_run: int = 0  # tests that passed, failed or broke, over all passes (benchmarks/run.py counts them)
    failing_tests: list[str] = field(default_factory=list)  # distinct, sorted (proof.py: one only is a warning)


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


def outcome_of(workdir: Path, exit_code: int, duration_s: float) -> RunOutcome:
    """What a finished run left in workdir: JUnit counts and messages, summary.json's verdict and failures."""
    failed, broken, passed, messages = parse_junit(workdir / "junit.xml")
    verdict, failed_reqs = read_summary(workdir / "summary.json")
    return RunOutcome(exit_code, failed, broken, passed, tuple(messages), duration_s,
                      verdict=verdict, failed_requirements=failed_reqs,
                      failing_tests=failing_test_ids(workdir / "junit.xml"))


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
            selected = tests_verifying(verifies, fault.requirement)
            result = FaultResult(fault, tests_selected=len(selected))
            if selected:
                result.passes.append("targeted")
                outcome = run_pytest(selected, faults=fault.name, target=target, kit=kit, maxfail=FAIL_CAP,
                                     workdir=_fresh(tmp_path / f"{fault.name}-targeted"), contract=contract)
                _record(result, outcome)
            informative = contract == "public" and not readings.is_public_requirement(fault.requirement)
            if informative:
                result.note = "modelled requirement: informative under the public reading"
            elif full or not result.detected:
                # Second pass: the whole kit, for a fault the targeted tests missed (or always with --full).
                result.passes.append("kit")
                outcome = run_pytest([], faults=fault.name, target=target, kit=kit, maxfail=FAIL_CAP,
                                     workdir=_fresh(tmp_path / f"{fault.name}-kit"), contract=contract)
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
        _prepare_register(target)
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
            if contract == "public" and not readings.is_public_requirement(result.fault.requirement):
                result.note = "modelled requirement: informative under the public reading"
            elif label == "targeted" and (full or not result.detected):
                # Second pass: the whole kit, for a fault the targeted tests missed (or always with --full).
                return [job(fault, [], "kit")]
            _finish(result, order[fault], len(faults), progress)
            return []

        first = [job("", [], "control")]
        for f in faults:
            nodes = tests_verifying(collector.verifies, f.requirement)
            first.append(job(f.name, nodes, "targeted") if nodes else job(f.name, [], "kit"))
        forked.run_all(first, parallel=max(1, jobs), on_done=on_done)
    progress("control run: the whole kit against the register without faults")
    return [results[f.name] for f in faults], control[0]


def _prepare_register(target: str) -> None:
    """The embedded register's data dir made once, before the forks, so every run's register shares it."""
    from pcr_conformance import embedded
    from pcr_conformance.errors import HarnessError
    from pcr_conformance.target import load_target

    try:
        if load_target(target).embedded:
            embedded.prepared(embedded.register_command())
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


def render_matrix(results: list[FaultResult], control: RunOutcome, contract: str | None = None,
                  unproven: list[str] | None = None) -> str:
    """The detection matrix and the closing lines; `unproven` (None: not checked, only some faults ran) are
    the testable requirements without a fault, each a failure of the self-test."""
    rows = [("fault", "requirement", "detected", "named", "also failed", "tests failed", "passes", "time s")]
    for r in results:
        rows.append((r.fault.name, r.fault.requirement, "yes" if r.detected else "NO",
                     "yes" if r.named else "no", ",".join(r.also_failed) or "-", str(r.tests_failed),
                     "+".join(r.passes), f"{r.duration_s:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    detected = sum(r.detected for r in results)
    named = sum(r.named for r in results)
    total = len(results)
    lines.append("")
    exact = sum(r.named and not r.also_failed for r in results)
    lines.append(f"detected {detected}/{total} faults; the broken requirement named for {named}/{total}, "
                 f"and only it failed for {exact}/{total}")
    public = [r for r in results if readings.is_public_requirement(r.fault.requirement)]
    lines.append(f"faults of a public requirement (official or third-party) detected: "
                 f"{sum(r.detected for r in public)}/{len(public)}")
    lines.append(f"control run without faults: {control.passed} passed, {control.failed} failed, "
                 f"{control.broken} broken, verdict {control.verdict or 'none'} (exit {control.exit_code})")
    lines.append(f"(a fault's run stops at {FAIL_CAP} failing tests: 'tests failed' counts up to that per pass)")
    single = proof.single_test_faults({r.fault.name: r.tests_failed for r in results if r.detected})
    if single:
        lines.append(f"WARNING: {len(single)} fault(s) caught by one test only (one edit of that test silences "
                     f"the requirement): {', '.join(single)}")
    if unproven is None:
        lines.append("requirements without a fault: not checked (only some faults ran)")
    else:
        lines.append(f"testable requirements without a fault: {len(unproven)}"
                     + (f" (each a failure; add a fault to src/pcr_register/faults.py): {', '.join(unproven)}"
                        if unproven else ""))
    # The plain closing line CI reads: each fault detected is a pass, each missed fault, false alarm or testable
    # requirement without a fault a failure.
    false_alarms = 0 if control_clean(control) else 1
    # Public reading: a missed fault of a modelled requirement is informative (it never decides), not a failure.
    informative = sum(not r.detected and not readings.is_public_requirement(r.fault.requirement)
                      for r in results) if contract == "public" else 0
    lines.append(f"selftest: {detected + (1 - false_alarms)} passed, "
                 f"{total - detected - informative + false_alarms + len(unproven or ())} failed" + (f", {informative} informative" if contract == "public" else ""))
    return "\n".join(lines)


def control_clean(control: RunOutcome) -> bool:
    """The control run against the faultless register: nothing failed or broke, and the verdict is conformant."""
    return control.failed == 0 and control.broken == 0 and control.exit_code in (0, 5) \
        and control.verdict == "conformant"


def selftest_passed(results: list[FaultResult], control: RunOutcome, contract: str | None = None,
                    unproven: list[str] | None = None) -> bool:
    """Every fault detected (under the public reading: every fault of a public requirement; a modelled one is
    informative there), no false alarm in the control run, and no testable requirement without a fault."""
    must = [r for r in results if contract != "public" or readings.is_public_requirement(r.fault.requirement)]
    return all(r.detected for r in must) and control_clean(control) and not unproven


def to_json(results: list[FaultResult], control: RunOutcome, contract: str | None = None,
            unproven: list[str] | None = None) -> dict:
    return {
        "faults": [
            {**asdict(r.fault), "public": readings.is_public_requirement(r.fault.requirement), "detected": r.detected, "named": r.named, "tests_selected": r.tests_selected,
             "also_failed": r.also_failed, "tests_failed": r.tests_failed, "passes": r.passes,
             "duration_s": round(r.duration_s, 1), "note": r.note, "tests_run": r.tests_run,
             "failing_tests": r.failing_tests}
            for r in results
        ],
        "control": {"passed": control.passed, "failed": control.failed, "broken": control.broken,
                    "exit_code": control.exit_code, "verdict": control.verdict,
                    "tests_run": control.failed + control.broken + control.passed,
                    "duration_s": round(control.duration_s, 1)},
        "score": {"detected": sum(r.detected for r in results), "named": sum(r.named for r in results),
                  "exact": sum(r.named and not r.also_failed for r in results), "total": len(results),
                  "public_total": sum(readings.is_public_requirement(r.fault.requirement) for r in results),
                  "public_detected": sum(r.detected and readings.is_public_requirement(r.fault.requirement)
                                         for r in results)},
        "contract": contract or "the target's",
        "fail_cap": FAIL_CAP,  # a fault's runs stop at this many failing tests: tests_failed is at most it per pass
        # null: not checked (only some faults ran); else the testable requirements no fault breaks
        "unproven_requirements": unproven,
        "single_test_faults": proof.single_test_faults({r.fault.name: r.tests_failed for r in results if r.detected}),
        "passed": selftest_passed(results, control, contract, unproven),
    }
