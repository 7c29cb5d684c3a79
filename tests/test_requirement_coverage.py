"""Every `must` requirement is verified by a suite test or carries `not_tested` with a reason
(docs/concepts.md#lints). Coverage comes from the one place that computes it, pytest's own collection of the
suites (pcr_conformance.collect, which `pcr-conformance requirements` uses too), so the lint and the command cannot
disagree."""

from __future__ import annotations

from pcr_conformance import collect


def test_every_must_requirement_is_verified_or_not_tested() -> None:
    """No must-requirement is without a test or a reason (`pcr-conformance requirements --uncovered`)."""
    coverage = collect.requirement_coverage()
    assert coverage, "no requirements"
    uncovered = [c.id for c in coverage if c.uncovered]
    assert not uncovered, f"must-requirements without a test or a not_tested reason: {uncovered}"
    assert any(c.tests for c in coverage), "no test verifies any requirement"
