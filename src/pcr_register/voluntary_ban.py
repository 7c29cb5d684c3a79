"""Voluntary ban on credits API for credit information companies (modelled, interfaces.md §4)."""

from __future__ import annotations

import json
from typing import Any

from pcr_register import identifiers
from pcr_register.clock import normalise_ts
from pcr_register.errors import fail
from pcr_register.identity import Caller
from pcr_register.state import Register
from pcr_register.views import ban_object


def get_voluntary_ban(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    request = body.get("request") or {}
    id_code = str(request.get("idCode", ""))
    if not identifiers.is_valid_hetu(id_code) and not reg.faults.on("ban_hetu_not_validated"):  # BAN-006
        raise fail(400, "D04", "/request/idCode")
    person = reg.storage.person(id_code)
    consent = bool(person is not None and person["ban_consent"])
    out: dict[str, Any] = {"personRequested": {"idCode": id_code}, "disclosureConsent": consent}
    ban = json.loads(person["ban"]) if person is not None and person["ban"] else None
    # BAN-002/BAN-004: without consent the answer is the same whether or not a ban exists
    if ban and (consent or reg.faults.on("ban_without_consent")):
        out["voluntaryBanOnCredits"] = ban_object(ban)  # BAN-003
        if reg.faults.on("ban_validity_dropped"):  # breaks BAN-003
            out["voluntaryBanOnCredits"] = {k: v for k, v in out["voluntaryBanOnCredits"].items()
                                            if k not in ("startDate", "endDate")}
    if ban and not consent and reg.faults.on("no_consent_reveals_ban"):  # breaks BAN-004
        out["consentRequired"] = True  # said only when there is a ban to withhold
    return 200, out


def get_voluntary_ban_changes(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    """BAN-005: only persons who consented, changed at or after sinceUtc."""
    since = normalise_ts(str(body.get("sinceUtc", "")))
    rows = reg.storage.conn().execute(
        "SELECT id_code, ban, ban_changed_utc FROM persons WHERE (ban_consent=1 OR ?) AND ban IS NOT NULL "
        "AND ban_changed_utc IS NOT NULL ORDER BY ban_changed_utc, id_code", (reg.faults.on("ban_feed_ignores_consent"),)
    ).fetchall()  # the fault ban_feed_ignores_consent breaks BAN-005
    changes = [
        {"idCode": r["id_code"], "changedTimeUtc": r["ban_changed_utc"], "voluntaryBanOnCredits": ban_object(json.loads(r["ban"]))}
        for r in rows
        if normalise_ts(r["ban_changed_utc"]) >= since
    ]
    return 200, {"changes": changes}
