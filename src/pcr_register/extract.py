"""GetCreditRegisterExtract and GetExtractLog (interfaces.md §3)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pcr_register import identifiers, load_faults, views
from pcr_register.clock import normalise_ts, now_utc, today
from pcr_register.errors import fail, item
from pcr_register.identity import Caller, check_extract_permission
from pcr_register.state import Register


def visible_statuses(reg: Register) -> tuple[str, ...]:
    """EXT-007/EXT-008: only Active loans are on extracts (the faults let others through)."""
    statuses = ["Active"]
    if reg.faults.on("extract_includes_ended_loans"):
        statuses.append("Ended")
    if reg.faults.on("cancelled_loan_on_extract"):
        statuses.append("Cancelled")
    return tuple(statuses)


def _income(person: Any, months: int) -> list[dict[str, Any]]:
    """EXT-010: the latest 12 months of income up to the current month, grouped per year."""
    current = today()
    entries = [e for e in json.loads(person["income"] or "[]")
               if (e.get("year"), e.get("month")) <= (current.year, current.month)]
    entries.sort(key=lambda e: (e["year"], e["month"]), reverse=True)
    by_year: dict[int, list[dict[str, Any]]] = {}
    for e in sorted(entries[:months], key=lambda e: (e["year"], e["month"])):
        by_year.setdefault(e["year"], []).append({
            "month": e["month"],
            "wagesGrossAmount": e.get("wagesGrossAmount", 0), "wagesNetAmount": e.get("wagesNetAmount", 0),
            "benefitsGrossAmount": e.get("benefitsGrossAmount", 0), "benefitsNetAmount": e.get("benefitsNetAmount", 0),
        })
    return [{"year": year, "months": ms} for year, ms in sorted(by_year.items())]


def _sums(values: list[tuple[str, float]], first_currency_only: bool = False) -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for currency, amount in values:
        currency = values[0][0] if first_currency_only else currency  # fault sums_in_first_currency: EXT-018
        totals[currency] = round(totals.get(currency, 0) + amount, 2)
    return [{"currencyCode": c, "sum": s} for c, s in sorted(totals.items())]


FLAT_MEMBERS = ("idCodeType", "idCode", "creditRegisterExtractPurpose")


def subject(reg: Register, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the request's subject {idCodeType, idCode, creditRegisterExtractPurpose}, notices). The documented form
    nests it in `request`; the flat form a public client sends (docs/register-facts.md#real-clients-on-the-wire)
    has it at top level. The schema allows either, never a mix; the reference variant warns with N01."""
    if "request" in body:
        return body.get("request") or {}, []
    flat = {name: body[name] for name in FLAT_MEMBERS if name in body}
    return flat, ([item("N01", "request")] if reg.config.variant == "reference" else [])


def build_extract(reg: Register, id_code: str, extra_notices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    outcome, person, notices = views.outcome_for(reg, id_code)
    if outcome == "PersonNotFound" and reg.faults.on("not_found_as_error"):  # breaks EXT-011: no billable extract
        raise fail(400, "D04", "/request/idCode", "IdCode not found in the register.")
    if outcome == "IdentifierNotInUse" and reg.faults.on("not_in_use_as_error"):  # breaks EXT-013
        raise fail(400, "D04", "/request/idCode", "IdCode not in use.")
    notices = [*notices, *(extra_notices or [])]
    borrowed: list[Any] = []
    guaranteed: list[Any] = []
    if outcome in ("", "PersonDeceased"):
        borrowed, guaranteed = views.person_loans(reg, id_code, visible_statuses(reg))
    if borrowed and reg.faults.on("extract_first_lender_only"):  # breaks EXT-005
        borrowed = [r for r in borrowed if r["owner"] == borrowed[0]["owner"]]
    if reg.faults.on("guarantees_not_listed"):  # breaks EXT-020
        guaranteed = []
    loans = [views.extract_loan(reg, r, r["person_business_id"]) for r in borrowed]  # EXT-005
    if loans and reg.faults.on("lender_of_first_loan"):  # breaks EXT-021: a lender looked up once per extract
        loans = [{**lo, "lender": {**lo["lender"], "name": loans[0]["lender"]["name"]}} for lo in loans]
    if reg.faults.on("extract_second_delayed_amount_dropped"):  # breaks EXT-016: the first delayed instalment only
        loans = [{**lo, "delayedAmounts": lo["delayedAmounts"][:1]} for lo in loans]
    if reg.faults.on("extract_dates_as_timestamps"):  # breaks ENV-024: another date form than the profile's
        loans = [{**lo, "contractDate": lo["contractDate"] + "T00:00:00Z"} if "contractDate" in lo else lo
                 for lo in loans]
    guarantees = [views.guarantee(reg, r) for r in guaranteed]  # EXT-020
    if not outcome:
        outcome = "LoansFound" if loans or guarantees else "NoLoans"
    requested: dict[str, Any] = {"idCode": id_code}
    if outcome == "PersonDeceased" and person is not None and person["date_of_death"]:
        requested["dateOfDeath"] = person["date_of_death"]
    summary = {  # EXT-006
        "lendersCount": len({(lo["lender"]["idCodeType"], lo["lender"]["idCode"]) for lo in loans}),
        "loanContractsCount": len(loans) + (1 if reg.faults.on("extract_wrong_summary") else 0),
        "guaranteedLoanContractsCount": len(guarantees),
    }
    extract: dict[str, Any] = {
        "extractReference": str(uuid.uuid5(uuid.NAMESPACE_OID, id_code) if reg.faults.on("extract_reference_per_person")
                                else uuid.uuid4()),  # EXT-014
        "creationTimeUtc": now_utc(),
        "extractOutcome": outcome,
        "personRequested": requested,
    }
    if person is not None and outcome in ("LoansFound", "NoLoans", "PersonDeceased"):
        ban = views.ban_in_effect(json.loads(person["ban"]) if person["ban"] else None)
        if ban and not reg.faults.on("extract_no_ban"):  # EXT-009
            extract["voluntaryBanOnCredits"] = ban
    # ENV-014 fault: the response silently renames a member
    extract["creditSummary" if reg.faults.on("schema_drift_extract") else "creditInformationSummary"] = summary
    # EXT-018: last repayments and leasing instalments per currency
    first = reg.faults.on("sums_in_first_currency")
    extract["repaymentsPaidLastAmount"] = _sums(
        [(lo["currencyCode"], lo["lastRepayment"]["amount"]) for lo in loans if "lastRepayment" in lo], first)
    extract["sumOfMonthlyLeasingInstalments"] = _sums(
        [(lo["currencyCode"], lo["leasingContract"].get("monthlyPayment", 0)) for lo in loans if "leasingContract" in lo],
        first)
    extract["loans"] = loans
    extract["guarantees"] = guarantees
    months = 11 if reg.faults.on("extract_income_11_months") else 12
    extract["incomeData"] = _income(person, months) if person is not None and outcome != "IdentifierNotInUse" else []
    extract["notices"] = reg.specs.describe(notices)
    return extract


def _check_purposes(reg: Register, request: dict[str, Any], pointer: str) -> None:
    """Faults second_purpose_rejected (EXT-002) and non_consumer_purpose_rejected (EXT-003); the schema checks
    the purposes themselves (EXT-001)."""
    purposes = request.get("creditRegisterExtractPurpose") or []
    if len(purposes) > 1 and reg.faults.on("second_purpose_rejected"):
        raise fail(400, "D01", f"{pointer}/1", "Only one purpose may be given.")
    for i, purpose in enumerate(purposes):
        if "ConsumerCredit" not in str(purpose) and reg.faults.on("non_consumer_purpose_rejected"):
            raise fail(400, "D01", f"{pointer}/{i}", "Only consumer-credit purposes are accepted.")


def get_extract(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    load_faults.slow_extract(reg.faults)  # breaks PRF-001: right, but late
    check_extract_permission(caller, reg.faults)  # EXT-004
    request, form_notices = subject(reg, body)
    _check_purposes(reg, request, "/request/creditRegisterExtractPurpose" if "request" in body
                    else "/creditRegisterExtractPurpose")
    id_code = str(request.get("idCode", ""))
    if not identifiers.is_valid_hetu(id_code) and not reg.faults.on("accept_invalid_hetu"):
        raise fail(400, "D04", "/request/idCode" if "request" in body else "/idCode")  # IDN-001
    extract = build_extract(reg, id_code, form_notices)
    if not reg.faults.on("no_extract_log"):  # EXT-015
        entry = {
            "extractReference": extract["extractReference"],
            "creationTimeUtc": extract["creationTimeUtc"],
            "personRequested": {"idCode": id_code},
            "creditRegisterExtractPurpose": request.get("creditRegisterExtractPurpose") or [],
            "requester": {"idCodeType": caller.org.id_code_type, "idCode": caller.org.id_code},
        }
        reg.storage.write_one("INSERT INTO extract_log(requester, creation_utc, entry) VALUES (?,?,?)",
                              (caller.org.key, extract["creationTimeUtc"], json.dumps(entry)))
    return 200, {"statusMessage": "The request succeeded", "creditRegisterExtract": extract}


def get_extract_log(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    """EXT-023: only the caller's own requests."""
    since = body.get("fromUtc")
    everyone = reg.faults.on("extract_log_of_everyone")  # breaks EXT-023
    sql = "SELECT entry FROM extract_log WHERE (requester=? OR ?)"
    args: list[Any] = [caller.org.key, everyone]
    if since:
        sql += " AND creation_utc >= ?"
        args.append(normalise_ts(since))
    rows = reg.storage.conn().execute(sql + " ORDER BY id", args).fetchall()
    return 200, {"entries": [json.loads(r[0]) for r in rows]}

