"""GetCreditRegisterExtract and GetExtractLog (interfaces.md §3)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pcr_register import identifiers
from pcr_register.context import Register, now_utc, today
from pcr_register.errors import fail, item
from pcr_register.identity import Caller, check_extract_permission

LOAN_TYPE_OBJECT = {"LumpSumLoan": "lumpSumLoan", "GuaranteeReceivable": "lumpSumLoan",
                    "RunningAccountLoan": "runningAccountLoan", "Leasing": "leasingContract"}


def _lender(reg: Register, row: Any, data: dict[str, Any]) -> dict[str, Any]:
    owner = json.loads(row["owner_json"]) or {}
    org = reg.org_for_owner(row["owner"])
    lender = {"idCodeType": owner.get("idCodeType", org.id_code_type if org else "BusinessId"),
              "idCode": owner.get("idCode", org.id_code if org else ""),
              **({"countryCode": owner["countryCode"]} if owner.get("countryCode") else {}),
              "name": org.name if org else "",
              "marketingName": data.get("lenderMarketingName", "")}
    return lender


def _pick(obj: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any]:
    obj = obj or {}
    return {n: obj[n] for n in names if obj.get(n) is not None}


def extract_loan(reg: Register, row: Any, business_id: str | None = None) -> dict[str, Any]:
    """One loan as shown on an extract (and in a distribution)."""
    data = json.loads(row["data"])
    delays = json.loads(row["delays"]) if row["delays"] else {}
    payment_plan = data.get("paymentPlan") or {"isInDebtArrangement": False, "isInBusinessRestructuringProgram": False}
    loan: dict[str, Any] = {"lender": _lender(reg, row, data), "loanType": data.get("loanType")}
    # EXT-017: the contract date is hidden while a payment plan is in effect
    if not (payment_plan.get("isInDebtArrangement") or payment_plan.get("isInBusinessRestructuringProgram")):
        if data.get("contractDate"):
            loan["contractDate"] = data["contractDate"]
    loan.update({
        "borrowersCount": data.get("borrowersCount", len(data.get("borrowers") or [])),
        "currencyCode": data.get("currencyCode", "EUR"),
        "isLoanWithCollateral": bool(data.get("isLoanWithCollateral")),
        "collateralTypes": data.get("collateralTypes") or [],
        "consumerCredit": data.get("consumerCredit") or {},
        "paymentPlan": {"isInDebtArrangement": bool(payment_plan.get("isInDebtArrangement")),
                        "isInBusinessRestructuringProgram": bool(payment_plan.get("isInBusinessRestructuringProgram"))},
        "accuracyIsDenied": False,
    })
    # EXT-022: balances and amounts as last reported
    if data.get("lumpSumLoan"):
        loan["lumpSumLoan"] = _pick(data["lumpSumLoan"], ("amountIssued", "amountPaid", "balance", "plannedFinalDueDate",
                                                         "amortizationFrequency", "purposeOfUse"))
    if data.get("runningAccountLoan"):
        loan["runningAccountLoan"] = _pick(data["runningAccountLoan"], ("creditLimit", "balance", "balanceDate"))
    if data.get("leasingContract"):
        loan["leasingContract"] = _pick(data["leasingContract"], ("contractPeriodStartDate", "transactionPrice",
                                                                 "monthlyPayment"))
    loan["defermentPeriods"] = data.get("defermentPeriods") or []  # EXT-019
    loan["delayedAmounts"] = delays.get("delayedAmounts") or []  # EXT-016
    loan["isForeclosed"] = bool(delays.get("isForeclosed"))
    if delays.get("foreclosureDate"):
        loan["foreclosureDate"] = delays["foreclosureDate"]
    last = json.loads(row["last_repayment"]) if row["last_repayment"] else None
    if last:
        loan["lastRepayment"] = {"paymentDate": last["paymentDate"], "amount": last["amount"]}
    if business_id:
        loan["businessInformation"] = {"borrowerBusinessId": business_id}
    return loan


def _guarantee(reg: Register, row: Any) -> dict[str, Any]:
    data = json.loads(row["data"])
    obj = data.get(LOAN_TYPE_OBJECT.get(str(data.get("loanType")), "")) or {}
    balance = obj.get("balance", obj.get("transactionPrice", 0))
    return {"lender": _lender(reg, row, data), "loanType": data.get("loanType"), "balance": balance,
            "currencyCode": data.get("currencyCode", "EUR")}


def visible_statuses(reg: Register) -> tuple[str, ...]:
    """EXT-007/EXT-008: only Active loans are on extracts (the faults let others through)."""
    statuses = ["Active"]
    if reg.faults.on("extract_includes_ended_loans"):
        statuses.append("Ended")
    if reg.faults.on("cancelled_loan_on_extract"):
        statuses.append("Cancelled")
    return tuple(statuses)


def person_loans(reg: Register, id_code: str, statuses: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    """(borrower rows with the borrower's business id, guarantor rows) of one person."""
    marks = ",".join("?" * len(statuses))
    rows = reg.storage.conn().execute(
        f"SELECT l.*, p.role AS person_role, p.business_id AS person_business_id FROM loan_persons p "
        f"JOIN loans l ON l.loan_key = p.loan_key WHERE p.id_code=? AND l.status IN ({marks}) "
        f"ORDER BY l.created_utc, l.loan_key",
        (id_code, *statuses),
    ).fetchall()
    borrowed, guaranteed, seen = [], [], set()
    for row in rows:
        mark = (row["loan_key"], row["person_role"])
        if mark in seen:
            continue
        seen.add(mark)
        (borrowed if row["person_role"] == "B" else guaranteed).append(row)
    return borrowed, guaranteed


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


def ban_in_effect(ban: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ban if it is in effect today (a fixed-term ban lapses after its end date)."""
    if not ban or not ban.get("isInEffect"):
        return None
    current = today().isoformat()
    if ban.get("startDate") and str(ban["startDate"])[:10] > current:
        return None
    if ban.get("endDate") and str(ban["endDate"])[:10] < current:
        return None
    return ban_object(ban)


def ban_object(ban: dict[str, Any]) -> dict[str, Any]:
    out = {"isInEffect": bool(ban.get("isInEffect")), "reason": ban.get("reason")}
    if ban.get("startDate"):
        out["startDate"] = ban["startDate"]
    if ban.get("endDate"):
        out["endDate"] = ban["endDate"]
    return out


def _sums(values: list[tuple[str, float]]) -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for currency, amount in values:
        totals[currency] = round(totals.get(currency, 0) + amount, 2)
    return [{"currencyCode": c, "sum": s} for c, s in sorted(totals.items())]


def outcome_for(reg: Register, id_code: str) -> tuple[str, Any, list[dict[str, str]]]:
    """(extractOutcome, person row or None, notices) — EXT-011/012/013."""
    person = reg.storage.person(id_code)
    if person is None:
        return "PersonNotFound", None, [item("E20", "idCode", "IdCode not found in the register.")]
    if person["status"] == "not-in-use":
        return "IdentifierNotInUse", person, [item("E21", "idCode")]
    if person["status"] == "deceased":
        if reg.faults.on("deceased_as_not_found"):  # breaks EXT-012
            return "PersonNotFound", None, [item("E20", "idCode", "IdCode not found in the register.")]
        return "PersonDeceased", person, []
    return "", person, []


def build_extract(reg: Register, id_code: str) -> dict[str, Any]:
    outcome, person, notices = outcome_for(reg, id_code)
    borrowed: list[Any] = []
    guaranteed: list[Any] = []
    if outcome in ("", "PersonDeceased"):
        borrowed, guaranteed = person_loans(reg, id_code, visible_statuses(reg))
    loans = [extract_loan(reg, r, r["person_business_id"]) for r in borrowed]  # EXT-005
    guarantees = [_guarantee(reg, r) for r in guaranteed]  # EXT-020
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
        "extractReference": str(uuid.uuid4()),  # EXT-014
        "creationTimeUtc": now_utc(),
        "extractOutcome": outcome,
        "personRequested": requested,
    }
    if person is not None and outcome in ("LoansFound", "NoLoans", "PersonDeceased"):
        ban = ban_in_effect(json.loads(person["ban"]) if person["ban"] else None)
        if ban and not reg.faults.on("extract_no_ban"):  # EXT-009
            extract["voluntaryBanOnCredits"] = ban
    # ENV-014 fault: the response silently renames a member
    extract["creditSummary" if reg.faults.on("schema_drift_extract") else "creditInformationSummary"] = summary
    # EXT-018: last repayments and leasing instalments per currency
    extract["repaymentsPaidLastAmount"] = _sums(
        [(lo["currencyCode"], lo["lastRepayment"]["amount"]) for lo in loans if "lastRepayment" in lo])
    extract["sumOfMonthlyLeasingInstalments"] = _sums(
        [(lo["currencyCode"], lo["leasingContract"].get("monthlyPayment", 0)) for lo in loans if "leasingContract" in lo])
    extract["loans"] = loans
    extract["guarantees"] = guarantees
    months = 11 if reg.faults.on("extract_income_11_months") else 12
    extract["incomeData"] = _income(person, months) if person is not None and outcome != "IdentifierNotInUse" else []
    extract["notices"] = notices
    return extract


def get_extract(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    check_extract_permission(caller, reg.faults)  # EXT-004
    request = body.get("request") or {}
    id_code = str(request.get("idCode", ""))
    if not identifiers.is_valid_hetu(id_code) and not reg.faults.on("accept_invalid_hetu"):
        raise fail(400, "D04", "/request/idCode")  # IDN-001
    extract = build_extract(reg, id_code)
    if not reg.faults.on("no_extract_log"):  # EXT-015
        entry = {
            "extractReference": extract["extractReference"],
            "creationTimeUtc": extract["creationTimeUtc"],
            "personRequested": {"idCode": id_code},
            "creditRegisterExtractPurpose": request.get("creditRegisterExtractPurpose") or [],
            "requester": {"idCodeType": caller.org.id_code_type, "idCode": caller.org.id_code},
        }
        with reg.storage.write() as con:
            con.execute("INSERT INTO extract_log(requester, creation_utc, entry) VALUES (?,?,?)",
                        (caller.org.key, extract["creationTimeUtc"], json.dumps(entry)))
    return 200, {"statusMessage": "The request succeeded", "creditRegisterExtract": extract}


def get_extract_log(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    """EXT-023: only the caller's own requests."""
    since = body.get("fromUtc")
    sql = "SELECT entry FROM extract_log WHERE requester=?"
    args: list[Any] = [caller.org.key]
    if since:
        sql += " AND creation_utc >= ?"
        args.append(_normalise_ts(since))
    rows = reg.storage.conn().execute(sql + " ORDER BY id", args).fetchall()
    return 200, {"entries": [json.loads(r[0]) for r in rows]}


def _normalise_ts(value: str) -> str:
    """Compare timestamps in the stored 'YYYY-MM-DDTHH:MM:SS.mmmZ' form."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
