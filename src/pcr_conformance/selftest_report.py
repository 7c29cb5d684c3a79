"""The self-test's results and report (pcr_conformance.selftest): a fault, a run's outcome, a fault's result, the detection matrix, its closing lines, the verdict and
the JSON of `selftest --json` (docs/concepts.md#self-test, #proven-coverage)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pcr_conformance import proof, readings

# A fault's run stops at this many failing tests (pytest --maxfail): more prove nothing more, and a fault that
# breaks every answer (ENV-005 over 700 fuzz tests) would otherwise run them all. The control run never stops.
FAIL_CAP = 10


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
    broken_tests: tuple[str, ...] = ()  # "classname::name: first line of the error" of each broken one


@dataclass
class FaultResult:
    fault: Fault
    tests_selected: int
    detected: bool = False
    named: bool = False
    tests_failed: int = 0  # distinct failing tests over all passes (len(failing_tests))
    passes: list[str] = field(default_factory=list)  # "targeted", "fuzz", "kit" (selftest.stages)
    duration_s: float = 0.0
    note: str = ""
    also_failed: list[str] = field(default_factory=list)  # requirements failed besides the broken one
    tests_run: int = 0  # tests that passed, failed or broke, over all passes (benchmarks/run.py counts them)
    failing_tests: list[str] = field(default_factory=list)  # distinct, sorted (proof.py: one only is a warning)


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
    if not control_clean(control):  # a false alarm: which tests, and why
        lines.extend(f"  control run failed: {m.splitlines()[0][:300] if m.strip() else '(no message)'}"
                     for m in control.failure_messages)
        lines.extend(f"  control run broken: {b[:300]}" for b in control.broken_tests)
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
                    "duration_s": round(control.duration_s, 1), "failing_tests": list(control.failing_tests),
                    "broken_tests": list(control.broken_tests)},
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
