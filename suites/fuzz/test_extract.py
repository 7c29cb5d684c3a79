"""Fuzzing of the extract API: every operation of specs/extract.yaml with schema-generated bodies."""

from __future__ import annotations

import pytest

from pcr_conformance import suite as s

from . import _fuzz, checks

FAMILY = "extract"

pytestmark = [pytest.mark.capability("extract"), pytest.mark.verifies(*checks.REQUIREMENTS), pytest.mark.cost(_fuzz.COST)]


@pytest.mark.parametrize("operation_id", _fuzz.operation_ids(FAMILY))
def test_fuzz(operation_id, pcr_target, pcr_clients, pcr_data):
    """Every answer to generated and documented requests is a documented, well-formed, non-5xx answer."""
    client = pcr_clients.get(s.slot_for(FAMILY))
    _fuzz.fuzz_operation(pcr_target, FAMILY, operation_id, client, pcr_data)
