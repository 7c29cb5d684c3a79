"""Per-report business rules (interfaces.md §2, §5). Each returns error items; [] = the report passes.

The rules that need the stored loan (ownership, status, transfer) live in processing.py; these are the checks
of one report on its own or against the stored loan's contract date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pcr_register import identifiers
from pcr_register.errors import item
from pcr_register.faults import Faults

TYPE_OBJECT = {
    "LumpSumLoan": "lumpSumLoan",
    "GuaranteeReceivable": "lumpSumLoan",
    "RunningAccountLoan": "runningAccountLoan",
    "Leasing": "leasingContract",
}
TYPE_OBJECTS = ("lumpSumLoan", "runningAccountLoan", "leasingContract")
GUARANTEE_PURPOSE = "GuaranteeReceivableForStudentLoan"


def date_of(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def person_errors(
    id_code: str, field: str, persons: dict[str, str], faults: Faults, *, check_population: bool = True
) -> list[dict[str, str]]:
    """A borrower's or guarantor's personal identity code: D04 (IDN-001), E20 (IDN-005), E21 (IDN-006)."""
    if not identifiers.is_valid_hetu(id_code) and not faults.on("accept_invalid_hetu"):
        return [item("D04", field)]
    if id_code[6:7] == "+" and faults.on("century_sign_plus_rejected"):  # breaks IDN-002 (AddLoans only)
        return [item("D04", field)]
    if not check_population:
        return []
    status = persons.get(id_code)
    if status is None:
        if faults.on("unknown_person_accepted"):
            return []
        return [item("E20", field)]
    if status == "not-in-use":
        # IDN-006: known but not in use is E21 (the fault answers the pre-2024 E20)
        return [item("E20" if faults.on("wrong_error_code_e21") else "E21", field)]
    return []


def loan_errors(
    loan: dict[str, Any],
    prefix: str,
    *,
    operation: str = "AddLoans",
    is_kela: bool,
    persons: dict[str, str],
    faults: Faults,
    today: dt.date,
) -> list[dict[str, str]]:
    """Rules of one AddLoans/UpdateLoans loan report that need no stored state."""
    errors: list[dict[str, str]] = []
    loan_type = loan.get("loanType")
    expected = TYPE_OBJECT.get(str(loan_type))
    # RPT-011 (D22): exactly the type-specific object of the loanType
    present = [name for name in TYPE_OBJECTS if loan.get(name) is not None]
    if expected is None or expected not in present:
        errors.append(item("D22", f"{prefix}/{expected or 'loanType'}"))
    elif present != [expected] and not faults.on("second_type_object_accepted"):
        # the right object and a foreign one: name the first foreign one
        errors.append(item("D22", f"{prefix}/{sorted(set(present) - {expected})[0]}"))
    # RPT-009 (D20): only Kela may report GuaranteeReceivable
    if loan_type == "GuaranteeReceivable" and not is_kela and not faults.on("skip_kela_only_check"):
        errors.append(item("D20", f"{prefix}/loanType"))
    if loan_type == "Leasing" and faults.on("leasing_rejected"):  # breaks RPT-013
        errors.append(item("D22", f"{prefix}/leasingContract"))
    running = loan.get("runningAccountLoan")
    if isinstance(running, dict) and running.get("creditLimit") == 0 and faults.on("zero_credit_limit_rejected"):
        errors.append(item("D01", f"{prefix}/runningAccountLoan/creditLimit", "The credit limit must be positive."))
    lump = loan.get("lumpSumLoan") if isinstance(loan.get("lumpSumLoan"), dict) else None
    if lump is not None:
        purpose = lump.get("purposeOfUse")
        # RPT-010 (D21): GuaranteeReceivable <=> purpose GuaranteeReceivableForStudentLoan
        wrong = (loan_type == "GuaranteeReceivable") != (purpose == GUARANTEE_PURPOSE)
        if faults.on("guarantee_purpose_on_other_types"):  # breaks RPT-010: one direction only
            wrong = loan_type == "GuaranteeReceivable" and purpose != GUARANTEE_PURPOSE
        if wrong:
            errors.append(item("D21", f"{prefix}/lumpSumLoan/purposeOfUse"))
        # RPT-004 (D02): amountPaid may not be more than amountIssued
        paid, issued = lump.get("amountPaid"), lump.get("amountIssued")
        if (
            isinstance(paid, int | float) and isinstance(issued, int | float) and paid > issued
            and not faults.on("skip_d02")
        ):
            errors.append(item("D02", f"{prefix}/lumpSumLoan/amountPaid"))
    # RPT-012 (D23): borrowersCount not smaller than the listed borrowers
    borrowers = loan.get("borrowers") or []
    count = loan.get("borrowersCount")
    count_checked = operation != "UpdateLoans" or not faults.on("borrowers_count_unchecked_on_update")
    if isinstance(count, int) and count < len(borrowers) and count_checked:
        errors.append(item("D23", f"{prefix}/borrowersCount"))
    # RPT-035 (D36): contract date not in the future
    contract = date_of(loan.get("contractDate"))
    latest = today + dt.timedelta(days=1 if faults.on("contract_date_tomorrow_accepted") else 0)
    if contract is not None and contract > latest:
        errors.append(item("D36", f"{prefix}/contractDate"))
    # RPT-036 (D37): deferment period may not end before it starts
    periods = loan.get("defermentPeriods") or []
    for i, period in enumerate(periods[:1] if faults.on("second_deferment_period_unchecked") else periods):
        start, end = date_of(period.get("startDate")), date_of(period.get("endDate"))
        if start and end and end < start:
            errors.append(item("D37", f"{prefix}/defermentPeriods/{i}/endDate"))
    # IDN-001/003/005/006: borrowers and guarantors
    for i, borrower in enumerate(borrowers):
        field = f"{prefix}/borrowers/{i}/idCode"
        if borrower.get("idCodeType", "PersonalIdentityCode") == "PersonalIdentityCode":
            errors.extend(person_errors(str(borrower.get("idCode", "")), field, persons, faults))
        business_id = borrower.get("businessId")
        if business_id is not None and faults.on("business_borrower_rejected"):  # breaks RPT-014
            errors.append(item("D05", f"{prefix}/borrowers/{i}/businessId"))
        elif business_id is not None and not identifiers.is_valid_business_id(str(business_id)):
            if not faults.on("accept_invalid_business_id"):
                errors.append(item("D05", f"{prefix}/borrowers/{i}/businessId"))
    for i, guarantor in enumerate(loan.get("guarantors") or []):
        field = f"{prefix}/guarantors/{i}/idCode"
        id_type = guarantor.get("idCodeType", "PersonalIdentityCode")
        if id_type == "PersonalIdentityCode":
            errors.extend(person_errors(str(guarantor.get("idCode", "")), field, persons, faults))
        elif id_type == "BusinessId" and not identifiers.is_valid_business_id(str(guarantor.get("idCode", ""))):
            if not faults.on("accept_invalid_business_id"):
                errors.append(item("D05", field))
    return errors


def repayment_errors(
    report: dict[str, Any], prefix: str, contract_date: str | None, loan_type: str, faults: Faults
) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    lump = report.get("lumpSumLoanRepayment")
    running = report.get("runningAccountLoanRepayment")
    stated_type = report.get("loanType", loan_type)
    # RPT-011 (D22) on Repayments: the repayment object must match the loan type (without it GetLoan could not
    # answer a conforming loan).
    wants_running = stated_type == "RunningAccountLoan"
    if (lump is None) == (running is None) or (wants_running and running is None) or (not wants_running and lump is None):
        errors.append(item("D22", f"{prefix}/{'runningAccountLoanRepayment' if wants_running else 'lumpSumLoanRepayment'}"))
    elif stated_type != loan_type:
        errors.append(item("D22", f"{prefix}/loanType"))
    contract = date_of(contract_date)
    if contract and faults.on("repayment_on_contract_date_rejected"):  # breaks RPT-025 at its boundary
        contract += dt.timedelta(days=1)
    # RPT-025 (D35): payment date not before the contract date
    if isinstance(lump, dict):
        paid = date_of(lump.get("paymentDate"))
        if contract and paid and paid < contract:
            errors.append(item("D35", f"{prefix}/lumpSumLoanRepayment/paymentDate"))
    # RPT-025 (D35) also for a running-account balance date
    if isinstance(running, dict) and not faults.on("balance_date_before_contract_accepted"):
        balance_date = date_of(running.get("balanceDate"))
        if contract and balance_date and balance_date < contract:
            errors.append(item("D35", f"{prefix}/runningAccountLoanRepayment/balanceDate"))
    return errors


def delay_errors(
    report: dict[str, Any], prefix: str, contract_date: str | None, faults: Faults, today: dt.date
) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    is_delay = report.get("isDelay")
    amounts = report.get("delayedAmounts") or []
    # RPT-029 (D32): isDelay true needs amounts, false allows none
    amounts_forbidden = not is_delay and amounts and not faults.on("amounts_without_delay_accepted")
    if (is_delay and not amounts) or amounts_forbidden:
        errors.append(item("D32", f"{prefix}/delayedAmounts"))
    # RPT-031 (D33): acceleration needs its date
    if report.get("isForeclosed") and not report.get("foreclosureDate"):
        errors.append(item("D33", f"{prefix}/foreclosureDate"))
    contract = date_of(contract_date)
    for i, amount in enumerate(amounts):
        due = date_of(amount.get("originalDueDate"))
        if due is None:
            continue
        # RPT-027 (D30): due date not before the contract date
        if contract and due < contract and not faults.on("skip_due_date_rule"):
            errors.append(item("D30", f"{prefix}/delayedAmounts/{i}/originalDueDate"))
        # RPT-028 (D31): at least 60 days since the original due date
        if (today - due).days < 60 and not faults.on("skip_60_day_rule"):
            errors.append(item("D31", f"{prefix}/delayedAmounts/{i}/originalDueDate"))
    return errors


def termination_errors(
    report: dict[str, Any], prefix: str, contract_date: str | None, faults: Faults
) -> list[dict[str, str]]:
    termination = report.get("termination") or {}
    end, contract = date_of(termination.get("endDate")), date_of(contract_date)
    if contract and faults.on("end_date_day_before_contract_accepted"):  # breaks RPT-033 at its boundary
        contract -= dt.timedelta(days=1)
    # RPT-033 (D34): end date not before the contract date
    if end and contract and end < contract:
        return [item("D34", f"{prefix}/termination/endDate")]
    return []
