"""Outcome of a suite test (docs/concepts.md#outcomes): passed, failed (the implementation broke the contract), broken
(the test could not run: harness, network, TLS), skipped (not claimed) or xfailed (a known deviation).

`classify` judges one report; the outcome travels on the report (so an xdist controller sees it too) and
`Recorder` keeps one outcome per test for summary.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pcr_conformance.plugin_state import PcrState

OUTCOME_ATTR = "pcr_outcome"
VERIFIES_ATTR = "pcr_verifies"


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


def mark_report(report: pytest.TestReport, call: pytest.CallInfo[None], ids: list[str]) -> None:
    """Carry the outcome and the requirement IDs on the report."""
    setattr(report, OUTCOME_ATTR, classify(report, call))
    setattr(report, VERIFIES_ATTR, ids)


class Recorder:
    """Records one outcome per suite test from the reports (setup decides unless the call runs; a teardown
    error turns a pass broken)."""

    def __init__(self, state: PcrState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = getattr(report, OUTCOME_ATTR, None)
        if outcome is None:
            return
        state = self.state
        state.verifies.setdefault(report.nodeid, list(getattr(report, VERIFIES_ATTR, [])))
        previous = state.outcomes.get(report.nodeid)
        if report.when in ("setup", "call") or previous is None:
            state.outcomes[report.nodeid] = outcome
        elif report.when == "teardown" and outcome == "broken" and previous == "passed":
            state.outcomes[report.nodeid] = "broken"
