"""The credit information company's view of voluntary bans on credits: only with the person's consent."""

from __future__ import annotations

from typing import Any

import pytest

from pcr_conformance import contract, expect
from pcr_conformance import suite as s

pytestmark = pytest.mark.capability("voluntary-ban")

REASONS = ("RiskOfIdentityTheft", "ControlOfPersonalFinances", "Other")
_NOT_ORDINARY = ["deceased", "unknown", "not-in-use"]


def _ban(client: Any, id_code: str, requirement: str) -> dict[str, Any]:
    resp = client.call("GetVoluntaryBan", client.envelope(request={"idCodeType": "PersonalIdentityCode",
                                                                   "idCode": id_code}))
    expect.status(resp, 200, requirement, "GetVoluntaryBan")
    return contract.json_of(resp, requirement, "GetVoluntaryBan")


@pytest.mark.verifies("BAN-002", "BAN-003")
def test_ban_disclosed_with_consent(pcr_clients, pcr_data):
    """The ban of a consenting person is disclosed with isInEffect, reason and validity."""
    cic = pcr_clients.get("cic")
    person = s.pick_person(pcr_data, having=["voluntary-ban", "ban-consent"], without=_NOT_ORDINARY)
    answer = _ban(cic, person, "BAN-002")
    expect.that((answer.get("personRequested") or {}).get("idCode") == person and answer.get("disclosureConsent")
                is True, "BAN-002", "GetVoluntaryBan", f"personRequested {person} with disclosureConsent true", answer)
    ban = answer.get("voluntaryBanOnCredits")
    expect.that(isinstance(ban, dict), "BAN-002", "GetVoluntaryBan", "the ban of a consenting person", answer)
    expect.that(ban.get("isInEffect") is True and ban.get("reason") in REASONS, "BAN-003", "GetVoluntaryBan",
                "isInEffect true and a reason", ban)
    # Its validity: a ban in effect has begun (startDate); a fixed-term one also ends (endDate, when given).
    expect.that("startDate" in ban, "BAN-003", "GetVoluntaryBan", "the ban's validity (startDate)", ban)
    for member in ("startDate", "endDate"):
        if member in ban:
            expect.that(isinstance(ban[member], str) and len(ban[member]) == 10, "BAN-003", "GetVoluntaryBan",
                        f"{member} as yyyy-MM-dd", ban[member])


@pytest.mark.verifies("BAN-002", "BAN-004")
def test_nothing_revealed_without_consent(pcr_clients, pcr_data):
    """Without consent the answer is the same whether or not the person has a ban: no ban is revealed."""
    cic = pcr_clients.get("cic")
    banned = s.pick_person(pcr_data, having=["voluntary-ban"], without=["ban-consent", *_NOT_ORDINARY])
    unbanned = s.pick_person(pcr_data, having=["income"], without=["ban-consent", "voluntary-ban", *_NOT_ORDINARY])
    with_ban, without_ban = _ban(cic, banned, "BAN-002"), _ban(cic, unbanned, "BAN-004")
    expect.that(with_ban.get("disclosureConsent") is False and "voluntaryBanOnCredits" not in with_ban, "BAN-002",
                "GetVoluntaryBan", "disclosureConsent false and no voluntaryBanOnCredits without consent", with_ban)

    def shape(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k != "personRequested"}

    expect.that(shape(with_ban) == shape(without_ban), "BAN-004", "GetVoluntaryBan",
                f"the same answer as for a person without a ban ({shape(without_ban)})", shape(with_ban))


@pytest.mark.verifies("BAN-005")
def test_change_feed_lists_only_consenting_persons(pcr_clients, pcr_data):
    """The change feed lists bans of consenting persons and never those of persons who did not consent."""
    cic = pcr_clients.get("cic")
    resp = cic.call("GetVoluntaryBanChanges", cic.envelope(sinceUtc="2000-01-01T00:00:00Z"))
    expect.status(resp, 200, "BAN-005", "GetVoluntaryBanChanges")
    changes = contract.json_of(resp, "BAN-005", "GetVoluntaryBanChanges").get("changes")
    expect.that(isinstance(changes, list), "BAN-005", "GetVoluntaryBanChanges", "a changes list", changes)
    consenting = set(s.pool_persons(pcr_data, having=["ban-consent"]))
    withheld = set(s.pool_persons(pcr_data, having=["voluntary-ban"], without=["ban-consent"]))
    listed = {c.get("idCode") for c in changes if isinstance(c, dict)}
    leaked = sorted(listed & withheld)
    expect.that(not leaked, "BAN-005", "GetVoluntaryBanChanges", "no person who did not consent", leaked[:5])
    if consenting:
        outsiders = sorted(listed - consenting)
        expect.that(not outsiders, "BAN-005", "GetVoluntaryBanChanges", "only persons of the pool who consented",
                    outsiders[:5])
    banned_consenting = set(s.pool_persons(pcr_data, having=["ban-consent", "voluntary-ban"]))
    if banned_consenting:
        expect.that(listed & banned_consenting, "BAN-005", "GetVoluntaryBanChanges",
                    "the bans of consenting persons since 2000", f"{len(listed)} persons listed")
