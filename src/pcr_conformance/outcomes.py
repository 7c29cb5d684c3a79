"""Outcome of a suite test (docs/concepts.md#outcomes): passed, failed (the implementation broke the contract), broken
(the test could not run: harness, network, TLS), skipped (not claimed), xfailed (a known deviation) or
informative (under the public reading, its failure named only modelled requirements: shown, never deciding; the
pytest report then counts as passed, with the failure kept as the `informative` JUnit property).

`classify` judges one report; `named_requirements` reads which requirement a failure names (the
RequirementFailure's `.requirement`, else the `XXX-NNN ` prefix of each line of an AssertionError's message, for
checks that raise plain AssertionErrors). The outcome, the named requirements and a one-line reason travel on the
report (so an xdist controller sees them too) and `Recorder` keeps them per test for summary.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pcr_conformance import evidence, judging, readings
from pcr_conformance.errors import REQUIREMENT_PREFIX, RequirementFailure

if TYPE_CHECKING:
    from pcr_conformance.plugin_state import PcrState

OUTCOME_ATTR = "pcr_outcome"
VERIFIES_ATTR = "pcr_verifies"
NAMED_ATTR = "pcr_failed_requirements"  # the requirement IDs a failure (or known deviation) names
REASON_ATTR = "pcr_reason"  # one line: the skip reason, the error, the failure message's first line
OBSERVED_ATTR = "pcr_observed"  # implementation-defined values the test saw (judging.observe)
FINDINGS_ATTR = "pcr_findings"  # informative findings (judging.informative)
SLOTS_ATTR = "pcr_slots"  # on a teardown report: the identity slots the test called as
CERTIFICATES_ATTR = "pcr_certificates"  # on one teardown report per process: evidence.describe_certificates
INFORMATIVE_PROPERTY = "informative"  # junit.xml property of an informative finding or outcome
OBSERVED_PROPERTY = "observed"  # junit.xml property "key=value" of an observed value
_REASON_MAX = 300


def classify(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.skipped:
        return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if report.passed:
        return "passed"
    # failed: a conformance failure only for an assertion in the test body; anything else could not run.
    if report.when != "call":
        return "broken"
    if call.excinfo is None:
        return "failed"  # strict XPASS: a known deviation that no longer happens
    return "failed" if is_failure(call.excinfo.value) else "broken"


def is_failure(exc: BaseException) -> bool:
    """AssertionError (incl. groups of them) and schemathesis check failures are failures; the rest broken."""
    if isinstance(exc, AssertionError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_failure(e) for e in exc.exceptions)
    cls = type(exc)
    return cls.__module__.startswith("schemathesis") and "Failure" in cls.__name__


def named_requirements(exc: BaseException) -> list[str]:
    """The requirement IDs a failure names, in order: `.requirement` of a RequirementFailure, the members of
    an exception group, else each line of the message that starts with "XXX-NNN " (a plain AssertionError of a
    check, or several joined). Whether an ID is a known requirement is decided by summary.json."""
    if isinstance(exc, RequirementFailure):
        return [exc.requirement]
    if isinstance(exc, BaseExceptionGroup):
        ids: list[str] = []
        for member in exc.exceptions:
            ids.extend(named_requirements(member))
        return list(dict.fromkeys(ids))
    found = []
    for line in str(exc).splitlines():
        m = REQUIREMENT_PREFIX.match(line.lstrip(" \t-*"))
        if m:
            found.append(m.group(1))
    return list(dict.fromkeys(found))


def reason_of(report: pytest.TestReport, call: pytest.CallInfo[None], outcome: str) -> str:
    """One line saying why: the skip or xfail reason, the error of a broken test, a failure's first line."""
    text = ""
    if outcome == "skipped":
        longrepr = report.longrepr
        text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
        text = text.removeprefix("Skipped: ")
    elif outcome == "xfailed":
        text = str(getattr(report, "wasxfail", ""))
    elif outcome in ("failed", "broken"):
        if call.excinfo is not None:
            exc = call.excinfo.value
            text = str(exc) if isinstance(exc, AssertionError) and str(exc) else f"{type(exc).__name__}: {exc}"
        else:
            text = str(report.longrepr or "")  # "[XPASS(strict)] known deviation ..."
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return first if len(first) <= _REASON_MAX else first[:_REASON_MAX] + "..."


def mark_report(report: pytest.TestReport, call: pytest.CallInfo[None], ids: list[str]) -> None:
    """Carry the outcome, the requirement IDs, the requirements a failure names and the reason on the report."""
    outcome = classify(report, call)
    setattr(report, OUTCOME_ATTR, outcome)
    setattr(report, VERIFIES_ATTR, ids)
    named: list[str] = []
    if outcome in ("failed", "xfailed") and call.excinfo is not None:
        named = named_requirements(call.excinfo.value)
    setattr(report, NAMED_ATTR, named)
    setattr(report, REASON_ATTR, reason_of(report, call, outcome))
    if outcome == "failed" and named and judging.public() and \
            not any(readings.is_public_requirement(r) for r in named):
        # Public reading: a failure naming only modelled requirements informs, it does not fail the test.
        setattr(report, OUTCOME_ATTR, "informative")
        report.outcome = "passed"
        report.longrepr = None
    observed, findings = judging.drain()
    setattr(report, OBSERVED_ATTR, observed)
    setattr(report, FINDINGS_ATTR, findings)


def junit_properties(report: pytest.TestReport) -> list[tuple[str, str]]:
    """The junit.xml properties of one phase's report: an informative outcome or finding, each observed value."""
    props = []
    if getattr(report, OUTCOME_ATTR, None) == "informative":
        props.append((INFORMATIVE_PROPERTY, str(getattr(report, REASON_ATTR, ""))))
    props.extend((INFORMATIVE_PROPERTY, f["message"][:_REASON_MAX]) for f in getattr(report, FINDINGS_ATTR, []))
    props.extend((OBSERVED_PROPERTY, f"{o['key']}={o['value']}") for o in getattr(report, OBSERVED_ATTR, []))
    return props


class Recorder:
    """Records one outcome per suite test from the reports (setup decides unless the call runs; a teardown
    error turns a pass broken), with the requirements its failure names and its reason."""

    def __init__(self, state: PcrState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = getattr(report, OUTCOME_ATTR, None)
        if outcome is None:
            return
        state = self.state
        node = report.nodeid
        state.verifies.setdefault(node, list(getattr(report, VERIFIES_ATTR, [])))
        previous = state.outcomes.get(node)
        if report.when in ("setup", "call") or previous is None or (
                report.when == "teardown" and outcome == "broken" and previous == "passed"):
            state.outcomes[node] = outcome
            state.named[node] = list(getattr(report, NAMED_ATTR, []))
            state.reasons[node] = str(getattr(report, REASON_ATTR, ""))
        state.observed.setdefault(node, []).extend(getattr(report, OBSERVED_ATTR, []) or [])
        state.findings.setdefault(node, []).extend(getattr(report, FINDINGS_ATTR, []) or [])
        slots = getattr(report, SLOTS_ATTR, None)
        if slots:  # an xdist controller: its workers called the register
            state.slots_used.update(slots)
            state.test_slots.setdefault(node, set()).update(slots)
        if state.certificates is None and getattr(report, CERTIFICATES_ATTR, None):
            state.certificates = getattr(report, CERTIFICATES_ATTR)
        if state.certificates is None and state.resolved is not None:
            # While the register runs: an embedded target's certificate files are gone at session end.
            state.certificates = evidence.describe_certificates(state.resolved)
