"""The client requirements (CLI-...) judged over a recording of a stakeholder system's traffic (docs/client-testing.md).

The recording is the HAR file given with `--pcr-recording` (`pcr-conformance proxy` passes its own; `pcr-conformance
run --kit lender-client --recording FILE.har` judges one recorded elsewhere). The checks are
`pcr_conformance.client_rules`, the same functions the proxy ran live. A requirement the recording did not
exercise (no 429 answer for CLI-010, no partial success for CLI-006) is skipped with what it needs, so the
verdict says incomplete rather than passing what was never shown.
"""

from __future__ import annotations

import pytest

from pcr_conformance import client_rules, expect, judging, traffic

pytestmark = [pytest.mark.read_only_safe]


@pytest.fixture(scope="module")
def client_judgement(request: pytest.FixtureRequest) -> client_rules.ClientState:
    path = request.config.getoption("pcr_recording")
    if not path:
        pytest.skip("not claimed: no recording of a stakeholder system (run pcr-conformance proxy, or give "
                    "--recording FILE.har)")
    return client_rules.replay(traffic.read_har(path), judging.current().reading)


@pytest.mark.parametrize("requirement", [pytest.param(rid, marks=pytest.mark.verifies(rid), id=rid)
                                         for rid in client_rules.CHECKS])
def test_client_requirement(requirement: str, client_judgement: client_rules.ClientState) -> None:
    """The stakeholder system's recorded traffic meets the client requirement."""
    found = [f for f in client_judgement.findings if f.requirement == requirement]
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        expect.fail(requirement, found[0].operation, found[0].fix, f"{found[0].line()}{more}")
    if requirement not in client_judgement.exercised:
        pytest.skip(f"not claimed: nothing in the recording exercises it (it needs {client_rules.NEEDS[requirement]})")
