"""The service levels under load (PRF-..., docs/load.md), judged over one load run on Locust.

`pcr_load` runs the load once per session (the register kit: a short one; `pcr-conformance load`: the user's
users, run time and workers) or reads a run made elsewhere (--pcr-load-results). Each test judges one level
with pcr_conformance.service_levels; a level the load never exercised (no identity for its stakeholder) is
skipped with what it needs.
"""

from __future__ import annotations

import pytest

from pcr_conformance import expect, kits, service_levels
from pcr_conformance.load_results import LoadRun

# Under `run --workers N` (--dist loadfile) this module goes to one worker: the session makes one load run.


def _params() -> list[object]:
    reqs = kits.load_requirements()
    return [pytest.param(rid, id=rid, marks=[pytest.mark.verifies(rid),
                                             *(pytest.mark.capability(c) for c in reqs[rid].applies_when)])
            for rid in service_levels.CHECKS]


@pytest.mark.parametrize("requirement", _params())
def test_service_level(requirement: str, pcr_load: LoadRun) -> None:
    """The register meets the service level over the session's load run."""
    judgement = service_levels.CHECKS[requirement](pcr_load)
    if judgement.status == "not-shown":
        pytest.skip(f"not claimed: {judgement.actual}")
    if judgement.status == "failed":
        expect.fail(requirement, judgement.operation, judgement.expected, judgement.actual)
