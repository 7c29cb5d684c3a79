"""Views of stored loans, persons and bans shared by the extract, the authorities' distribution and the
voluntary-ban API (interfaces.md §3, §4)."""

from __future__ import annotations

import json
from typing import Any

from pcr_register.clock import today
from pcr_register.errors import item
from pcr_register.state import Register

LOAN_TYPE_OBJECT = {"LumpSumLoan": "lumpSumLoan", "GuaranteeReceivable": "lumpSumLoan",
                    "RunningAccountLoan": "runningAccountLoan", "Leasing": "leasingContract"}


# -- loans -----------------------------------------------------------------------------------------------

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
    debt_arrangement = payment_plan.get("isInDebtArrangement") and not reg.faults.on("contract_date_shown_in_debt_arrangement")
    if not (debt_arrangement or payment_plan.get("isInBusinessRestructuringProgram")):
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
    if reg.faults.on("balance_rounded"):  # breaks EXT-022: whole euros, not as last reported
        for obj in (loan.get("lumpSumLoan"), loan.get("runningAccountLoan")):
            if obj and isinstance(obj.get("balance"), (int, float)):
                obj["balance"] = round(obj["balance"])
    deferments = [] if reg.faults.on("deferment_periods_dropped") else data.get("defermentPeriods") or []
    loan["defermentPeriods"] = deferments  # EXT-019
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


def guarantee(reg: Register, row: Any) -> dict[str, Any]:
    """One guaranteed loan as shown on an extract (EXT-020)."""
    data = json.loads(row["data"])
    obj = data.get(LOAN_TYPE_OBJECT.get(str(data.get("loanType")), "")) or {}
    balance = obj.get("balance", obj.get("transactionPrice", 0))
    return {"lender": _lender(reg, row, data), "loanType": data.get("loanType"), "balance": balance,
            "currencyCode": data.get("currencyCode", "EUR")}


# -- persons ---------------------------------------------------------------------------------------------

def person_loans(reg: Register, id_code: str, statuses: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    """(borrower rows with the borrower's business id, guarantor rows) of one person."""
    marks = ",".join("?" * len(statuses))
    # IDN-007: the century sign is significant; the fault compares the codes without it
    ignore_sign = reg.faults.on("century_sign_ignored")
    match = "substr(p.id_code, 1, 6) || substr(p.id_code, 8)=substr(?, 1, 6) || substr(?, 8)" if ignore_sign else (
        "p.id_code=?")
    rows = reg.storage.conn().execute(
        f"SELECT l.*, p.role AS person_role, p.business_id AS person_business_id FROM loan_persons p "
        f"JOIN loans l ON l.loan_key = p.loan_key WHERE {match} AND l.status IN ({marks}) "
        f"ORDER BY l.created_utc, l.loan_key",
        (*([id_code] * (2 if ignore_sign else 1)), *statuses),
    ).fetchall()
    borrowed, guaranteed, seen = [], [], set()
    for row in rows:
        mark = (row["loan_key"], row["person_role"])
        if mark in seen:
            continue
        seen.add(mark)
        (borrowed if row["person_role"] == "B" else guaranteed).append(row)
    return borrowed, guaranteed


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
    if reg.faults.on("living_person_as_deceased"):  # breaks ENV-023: the deceased outcome literal for everyone
        return "PersonDeceased", person, []
    return "", person, []


# -- voluntary ban on credits ----------------------------------------------------------------------------

def ban_object(ban: dict[str, Any]) -> dict[str, Any]:
    """The VoluntaryBanOnCredits object of a stored ban."""
    out = {"isInEffect": bool(ban.get("isInEffect")), "reason": ban.get("reason")}
    if ban.get("startDate"):
        out["startDate"] = ban["startDate"]
    if ban.get("endDate"):
        out["endDate"] = ban["endDate"]
    return out


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
