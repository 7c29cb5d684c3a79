"""Every extract request is logged, and each lender sees only its own requests in the log."""

from __future__ import annotations

import datetime as dt

import pytest

from pcr_conformance import contract, expect
from pcr_conformance import suite as s

pytestmark = pytest.mark.capability("extract")


def _log(client, since: str, requirement: str) -> list[dict]:
    resp = client.call("GetExtractLog", client.envelope(fromUtc=since))
    expect.status(resp, 200, requirement, "GetExtractLog")
    body = contract.json_of(resp, requirement, "GetExtractLog")
    entries = body.get("entries") if isinstance(body, dict) else None
    expect.that(isinstance(entries, list), requirement, "GetExtractLog", "an entries list", repr(body)[:300])
    return entries


@pytest.mark.verifies("EXT-014", "EXT-015", "EXT-023")
def test_requests_are_logged_for_the_requester_only(pcr_clients, pcr_data):
    """Each extract has its own reference and time, is logged with requester and purposes, and only for its requester."""
    own, other = pcr_clients.get("lender_extract"), pcr_clients.get("second_lender_extract")
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    person = pcr_data.person("income")
    purposes = ["NewConsumerCredit", "GuaranteeOrThirdPartyPledge"]
    first = s.extract_of(own, person, "EXT-014", purposes)
    second = s.extract_of(own, person, "EXT-014")
    for extract in (first, second):
        expect.that(contract.is_uuid(extract.get("extractReference")) and extract.get("creationTimeUtc"), "EXT-014",
                    "GetCreditRegisterExtract", "a UUID extractReference and a creationTimeUtc",
                    f"{extract.get('extractReference')!r}, {extract.get('creationTimeUtc')!r}")
    expect.that(first["extractReference"] != second["extractReference"], "EXT-014", "GetCreditRegisterExtract",
                "a different extractReference for each extract", first["extractReference"])
    foreign = s.extract_of(other, person, "EXT-023")

    entries = _log(own, since, "EXT-015")
    by_ref = {e.get("extractReference"): e for e in entries if isinstance(e, dict)}
    for extract, wanted in ((first, purposes), (second, ["NewConsumerCredit"])):
        entry = by_ref.get(extract["extractReference"])
        expect.that(entry is not None, "EXT-015", "GetExtractLog", f"an entry for extract {extract['extractReference']}",
                    f"{len(entries)} entries")
        ok = ((entry.get("personRequested") or {}).get("idCode") == person
              and sorted(entry.get("creditRegisterExtractPurpose") or []) == sorted(wanted)
              and (entry.get("requester") or {}).get("idCode") == own.owner["idCode"]
              and entry.get("creationTimeUtc"))
        expect.that(ok, "EXT-015", "GetExtractLog",
                    f"person {person}, purposes {wanted}, requester {own.owner['idCode']} and a time", entry)
    expect.that(foreign["extractReference"] not in by_ref, "EXT-023", "GetExtractLog",
                "no entry for another lender's extract", foreign["extractReference"])
    strangers = [e for e in entries if (e.get("requester") or {}).get("idCode") != own.owner["idCode"]]
    expect.that(not strangers, "EXT-023", "GetExtractLog", "only the caller's own requests", strangers[:3])

    other_entries = _log(other, since, "EXT-023")
    refs = {e.get("extractReference") for e in other_entries}
    expect.that(foreign["extractReference"] in refs and first["extractReference"] not in refs, "EXT-023",
                "GetExtractLog", "the other lender sees its own extract and not ours",
                f"{len(other_entries)} entries")
