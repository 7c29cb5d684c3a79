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

from pcr_conformance import readings, resources
from pcr_conformance.collect import collect_verifies

SELFTEST_JOBS = 2
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


@dataclass
class FaultResult:
    fault: Fault
    tests_selected: int
    detected: bool = False
    named: bool = False
    tests_failed: int = 0
    passes: list[str] = field(default_factory=list)  # "targeted", "kit"
    duration_s: float = 0.0
    note: str = ""
    also_failed: list[str] = field(default_factory=list)  # requirements failed besides the broken one


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


def run_pytest(
    node_ids: list[str], *, faults: str, target: str, kit: str, workdir: Path, timeout_s: float = RUN_TIMEOUT_S,
    contract: str | None = None,
) -> RunOutcome:
    """Run the given tests (all of the kit when node_ids is empty) against a register with the given faults.

    Node ids are relative to the folder above suites/ (as collected); pytest runs in `workdir`."""
    junit = workdir / "junit.xml"
    suites = resources.suites_dir().resolve()
    tests = [str(suites.parent / node) for node in node_ids] or [str(suites)]
    cmd = [
        sys.executable, "-P", "-m", "pytest", *tests, *resources.suites_pytest_args(),
        "--pcr-target", target, "--pcr-kit", kit, "--pcr-profile", "certification",
        "--junitxml", str(junit), "--pcr-output", str(workdir), "-q", "-p", "no:cacheprovider",
        "-o", "console_output_style=classic",
    ]
    if contract == "public":
        # As any register that is not ours is judged: the public reading and no implementation profile.
        cmd += ["--pcr-contract", "public", "--pcr-implementation-profile", ""]
    elif contract:
        cmd += ["--pcr-contract", contract]
    env = dict(os.environ)
    env["PCR_REGISTER_FAULTS"] = faults
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s)
        exit_code = proc.returncode
        (workdir / "pytest.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    except subprocess.TimeoutExpired:
        exit_code = -1
    failed, broken, passed, messages = parse_junit(junit)
    verdict, failed_reqs = read_summary(workdir / "summary.json")
    return RunOutcome(exit_code, failed, broken, passed, tuple(messages), time.monotonic() - started,
                      verdict=verdict, failed_requirements=failed_reqs)


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
    """Run every fault, then the no-fault control run. Returns the per-fault results and the control run.

    Faults run `jobs` at a time: each run is a pytest process plus its own register process, so two at a
    time keep both cores of a CI machine busy without starving either."""
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
                outcome = run_pytest(selected, faults=fault.name, target=target, kit=kit,
                                     workdir=_fresh(tmp_path / f"{fault.name}-targeted"), contract=contract)
                _record(result, outcome)
            informative = contract == "public" and not readings.is_public_requirement(fault.requirement)
            if informative:
                result.note = "modelled requirement: informative under the public reading"
            elif full or not result.detected:
                # Second pass: the whole kit, for a fault the targeted tests missed (or always with --full).
                result.passes.append("kit")
                outcome = run_pytest([], faults=fault.name, target=target, kit=kit,
                                     workdir=_fresh(tmp_path / f"{fault.name}-kit"), contract=contract)
                _record(result, outcome)
            if not selected:
                result.note = "no test verifies this requirement"
            progress(f"[{index}/{len(faults)}] {fault.name} ({fault.requirement}): "
                     f"{'detected' if result.detected else 'NOT detected'} by {result.tests_failed} failing "
                     f"test(s) of {len(selected)} targeted, {result.duration_s:.1f} s")
            return result

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            results = list(pool.map(one, enumerate(faults, 1)))
        progress("control run: the whole kit against the register without faults")
        control = run_pytest([], faults="", target=target, kit=kit, workdir=_fresh(tmp_path / "control"),
                             contract=contract)
    return results, control


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record(result: FaultResult, outcome: RunOutcome) -> None:
    result.duration_s += outcome.duration_s
    result.tests_failed += outcome.failed
    if outcome.failed:
        result.detected = True
        # Named: summary.json failed the broken requirement (attribution by the requirement a failure names).
        result.named = result.named or result.fault.requirement in outcome.failed_requirements
        result.also_failed = sorted(set(result.also_failed)
                                    | (set(outcome.failed_requirements) - {result.fault.requirement}))
    if outcome.exit_code == -1:
        result.note = "timed out"


def render_matrix(results: list[FaultResult], control: RunOutcome, contract: str | None = None) -> str:
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
    # The plain closing line CI reads: each fault detected is a pass, each missed fault or false alarm a failure.
    false_alarms = 0 if control_clean(control) else 1
    # Public reading: a missed fault of a modelled requirement is informative (it never decides), not a failure.
    informative = sum(not r.detected and not readings.is_public_requirement(r.fault.requirement)
                      for r in results) if contract == "public" else 0
    lines.append(f"selftest: {detected + (1 - false_alarms)} passed, {total - detected - informative + false_alarms} "
                 f"failed" + (f", {informative} informative" if contract == "public" else ""))
    return "\n".join(lines)


def control_clean(control: RunOutcome) -> bool:
    """The control run against the faultless register: nothing failed or broke, and the verdict is conformant."""
    return control.failed == 0 and control.broken == 0 and control.exit_code in (0, 5) \
        and control.verdict == "conformant"


def selftest_passed(results: list[FaultResult], control: RunOutcome, contract: str | None = None) -> bool:
    """Every fault detected (under the public reading: every fault of a public requirement; a modelled one is
    informative there), and no false alarm in the control run."""
    must = [r for r in results if contract != "public" or readings.is_public_requirement(r.fault.requirement)]
    return all(r.detected for r in must) and control_clean(control)


def to_json(results: list[FaultResult], control: RunOutcome, contract: str | None = None) -> dict:
    return {
        "faults": [
            {**asdict(r.fault), "public": readings.is_public_requirement(r.fault.requirement), "detected": r.detected, "named": r.named, "tests_selected": r.tests_selected,
             "also_failed": r.also_failed, "tests_failed": r.tests_failed, "passes": r.passes,
             "duration_s": round(r.duration_s, 1), "note": r.note}
            for r in results
        ],
        "control": {"passed": control.passed, "failed": control.failed, "broken": control.broken,
                    "exit_code": control.exit_code, "verdict": control.verdict,
                    "duration_s": round(control.duration_s, 1)},
        "score": {"detected": sum(r.detected for r in results), "named": sum(r.named for r in results),
                  "exact": sum(r.named and not r.also_failed for r in results), "total": len(results),
                  "public_total": sum(readings.is_public_requirement(r.fault.requirement) for r in results),
                  "public_detected": sum(r.detected and readings.is_public_requirement(r.fault.requirement)
                                         for r in results)},
        "contract": contract or "the target's",
        "passed": selftest_passed(results, control, contract),
    }
