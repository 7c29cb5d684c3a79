"""The offline rules of the validator: one plain function per rule, `(body, ctx) -> list[Problem]`, citing
its requirement ID in the first word of its docstring, and RULES, the list `check_rules` applies.

The rules check what needs no register: identity-code and Business ID check characters, D02, D40, date
order, the Kela-only loan type, the delayed-amount rules and duplicate report references. `body` is the
request body with member names already mapped to the spec's camelCase names (ENV-011, see
`validate_schema.canonicalize`). Rules never raise on malformed input: whatever the schema already reports
(wrong types, bad dates) they skip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pcr_conformance import catalogue
from pcr_conformance.identifiers import (
    CHECK_ALPHABET,
    business_id_check_digit,
    hetu_birth_date,
    hetu_check_character,
)
from pcr_conformance.validate_model import (
    WARNING,
    Context,
    Problem,
    Rule,
    as_date,
    as_dict,
    as_number,
    identified_objects,
    loan_key,
    loans,
    pointer,
    reports,
    walk,
)

# loanType -> the type-specific object it must carry (RPT-011).
TYPE_OBJECTS: dict[str, str] = {
    "LumpSumLoan": "lumpSumLoan",
    "GuaranteeReceivable": "lumpSumLoan",
    "RunningAccountLoan": "runningAccountLoan",
    "Leasing": "leasingContract",
}

DELAY_MIN_DAYS = 60  # RPT-028: a delayed instalment is reported only 60 days after its original due date


# ---- identifiers --------------------------------------------------------------------------------------


def hetu_problem(code: Any) -> str | None:
    """Why `code` is not a valid personal identity code, or None when it is (IDN-001)."""
    if not isinstance(code, str):
        return "is not a string"
    if len(code) != 11:
        return f"{code!r} has {len(code)} characters; a personal identity code has 11 (DDMMYYCZZZQ)"
    if not code[:6].isdigit() or not code[7:10].isdigit():
        return f"{code!r} is not DDMMYYCZZZQ: the date (DDMMYY) and individual number (ZZZ) must be digits"
    if code[6] not in "+-YXWVUABCDEF":
        return f"{code!r} has century sign {code[6]!r}; allowed: + - Y X W V U A B C D E F"
    if hetu_birth_date(code) is None:
        return f"{code!r} encodes no real date ({code[:2]}.{code[2:4]}.{code[4:6]})"
    if int(code[7:10]) < 2:
        return f"{code!r} has individual number {code[7:10]}; individual numbers start at 002"
    expected = hetu_check_character(code[:6], code[7:10])
    if code[10] != expected:
        if code[10] not in CHECK_ALPHABET:
            return f"{code!r} ends in {code[10]!r}, which is never a check character"
        return f"{code!r} has check character {code[10]!r}; DDMMYYZZZ mod 31 gives {expected!r}"
    return None


def business_id_problem(code: Any) -> str | None:
    """Why `code` is not a valid Business ID, or None when it is (IDN-003)."""
    if not isinstance(code, str):
        return "is not a string"
    if len(code) != 9 or code[7] != "-" or not code[:7].isdigit() or not code[8].isdigit():
        return f"{code!r} is not NNNNNNN-C (seven digits, a dash, one check digit)"
    expected = business_id_check_digit(code[:7])
    if expected is None:
        return f"{code!r}: no check digit is valid for {code[:7]} (remainder 1), so it was never issued"
    if int(code[8]) != expected:
        return f"{code!r} has check digit {code[8]}; weights 7,9,10,5,8,4,2 give {expected}"
    return None


def check_personal_identity_codes(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """IDN-001 / D04: every personal identity code has a valid layout, date and check character."""
    out = []
    for path, obj in identified_objects(body):
        if obj.get("idCodeType") == "PersonalIdentityCode" and "idCode" in obj:
            why = hetu_problem(obj["idCode"])
            if why:
                out.append(Problem(
                    pointer(*path, "idCode"), "IDN-001", "D04", f"personal identity code {why}",
                    "Send the code exactly as in the population register: DDMMYY, century sign, three-digit "
                    "individual number and the check character; do not drop or change the century sign."))
    return out


def check_business_ids(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """IDN-003 / D05: every Business ID (owner, borrower's businessId) has a valid check digit."""
    out = []
    fix = ("Copy the Business ID from the Business Information System (YTJ), with the dash and the check digit; "
           "a foreign company is idCodeType ForeignBusinessId with a countryCode.")
    for path, obj in identified_objects(body):
        if obj.get("idCodeType") == "BusinessId" and "idCode" in obj:
            why = business_id_problem(obj["idCode"])
            if why:
                out.append(Problem(pointer(*path, "idCode"), "IDN-003", "D05", f"Business ID {why}", fix))
    for path, value in walk(body):
        if path and path[-1] == "businessId" and isinstance(path[-2] if len(path) > 1 else None, int):
            why = business_id_problem(value)
            if why:
                out.append(Problem(pointer(*path), "IDN-003", "D05", f"borrower's Business ID {why}", fix))
    return out


def check_foreign_owner_country(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """IDN-004 / D40: a ForeignBusinessId needs a countryCode."""
    out = []
    for path, obj in identified_objects(body):
        if obj.get("idCodeType") == "ForeignBusinessId" and not obj.get("countryCode"):
            out.append(Problem(
                pointer(*path, "countryCode"), "IDN-004", "D40",
                "CountryCode is missing. This data element is required if Type of ID code is Foreign business ID.",
                'Add countryCode with the ISO 3166 country of the foreign business ID, e.g. "countryCode": "SE".'))
    return out


# ---- loans (AddLoans, UpdateLoans) ----------------------------------------------------------------------


def check_amount_paid(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-004 / D02: amountPaid may not be more than amountIssued."""
    out = []
    for i, loan in loans(body, ctx.operation):
        lump = as_dict(loan.get("lumpSumLoan"))
        paid, issued = as_number(lump.get("amountPaid")), as_number(lump.get("amountIssued"))
        if paid is not None and issued is not None and paid > issued:
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "lumpSumLoan", "amountPaid"), "RPT-004", "D02",
                f"The AmountPaid may not be more than the AmountIssued ({lump['amountPaid']} > "
                f"{lump['amountIssued']}).",
                "amountPaid is the amount drawn so far; it cannot exceed the amount granted (amountIssued). "
                "Check whether the two are swapped or whether amountIssued misses an increase of the loan."))
    return out


def check_guarantee_receivable_sender(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-009 / D20: only Kela may report loan type GuaranteeReceivable.

    A file cannot prove that its sender is Kela, so this is a warning unless the caller says the owner is
    Kela (`--owner-is-kela`), in which case there is nothing to report.
    """
    if ctx.owner_is_kela:
        return []
    out = []
    for i, loan in loans(body, ctx.operation):
        if loan.get("loanType") == "GuaranteeReceivable":
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "loanType"), "RPT-009", "D20",
                "loan type GuaranteeReceivable may be reported only by Kela; the register rejects it from "
                "any other owner",
                "Unless you are Kela, report a student loan as LumpSumLoan with purposeOfUse StudentLoan. "
                "(Kela: pass --owner-is-kela.)", WARNING))
    return out


def check_guarantee_receivable_purpose(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-010 / D21: GuaranteeReceivable has purpose GuaranteeReceivableForStudentLoan, and only it has."""
    out = []
    for i, loan in loans(body, ctx.operation):
        purpose = as_dict(loan.get("lumpSumLoan")).get("purposeOfUse")
        loan_type = loan.get("loanType")
        if purpose is None or loan_type is None:
            continue
        is_gr, is_gr_purpose = loan_type == "GuaranteeReceivable", purpose == "GuaranteeReceivableForStudentLoan"
        if is_gr != is_gr_purpose:
            where = pointer(catalogue.collection_of(ctx.operation), i, "lumpSumLoan", "purposeOfUse")
            if is_gr:
                msg = f"a GuaranteeReceivable loan must have purposeOfUse GuaranteeReceivableForStudentLoan, not {purpose}"
                fix = 'Set "purposeOfUse": "GuaranteeReceivableForStudentLoan".'
            else:
                msg = f"purposeOfUse GuaranteeReceivableForStudentLoan is allowed only with loanType GuaranteeReceivable, not {loan_type}"
                fix = "Use the loan's real purpose (e.g. StudentLoan) or, for Kela's guarantee receivables, loanType GuaranteeReceivable."
            out.append(Problem(where, "RPT-010", "D21", msg, fix))
    return out


def check_type_specific_object(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-011 / D22: each loan carries exactly the type-specific object of its loanType."""
    out = []
    for i, loan in loans(body, ctx.operation):
        loan_type = loan.get("loanType")
        wanted = TYPE_OBJECTS.get(loan_type) if isinstance(loan_type, str) else None
        if wanted is None:
            continue  # unknown or missing loanType: the schema reports it
        present = [name for name in sorted(set(TYPE_OBJECTS.values())) if name in loan]
        base = (catalogue.collection_of(ctx.operation), i)
        # One problem per loan, as the register answers: the missing object, else the first foreign one.
        if wanted not in present:
            out.append(Problem(
                pointer(*base, wanted), "RPT-011", "D22", f"loanType {loan_type} needs the object {wanted}",
                f"Add {wanted} with the {loan_type} data, or correct loanType."))
            continue
        for other in [name for name in present if name != wanted][:1]:
            out.append(Problem(
                pointer(*base, other), "RPT-011", "D22",
                f"loanType {loan_type} may not carry {other} (it belongs to another loan type)",
                f"Remove {other}; a {loan_type} loan carries only {wanted}."))
    return out


REPAYMENT_OBJECTS = {"RunningAccountLoan": "runningAccountLoanRepayment"}  # every other type: lumpSumLoanRepayment


def check_repayment_object(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-011 / D22: a repayment carries the repayment object of its loan's type, and only that one.

    Offline the loan's type is known only when the report states its loanType; otherwise the register
    judges it against the stored loan."""
    out = []
    names = ("lumpSumLoanRepayment", "runningAccountLoanRepayment")
    for i, rep in reports(body, ctx.operation):
        loan_type = rep.get("loanType")
        if ctx.operation != "Repayments" or not isinstance(loan_type, str):
            continue
        wanted = REPAYMENT_OBJECTS.get(loan_type, "lumpSumLoanRepayment")
        present = [n for n in names if rep.get(n) is not None]
        if present != [wanted]:
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, wanted), "RPT-011", "D22",
                f"a {loan_type} repayment carries {wanted} and no other repayment object "
                f"(found: {', '.join(present) or 'none'})",
                f"Send the payment in {wanted}; a {loan_type} repayment carries only that object."))
    return out


def check_borrowers_count(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-012 / D23: borrowersCount is not smaller than the number of listed borrowers."""
    out = []
    for i, loan in loans(body, ctx.operation):
        count, borrowers = loan.get("borrowersCount"), loan.get("borrowers")
        if isinstance(count, int) and not isinstance(count, bool) and isinstance(borrowers, list) \
                and count < len(borrowers):
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "borrowersCount"), "RPT-012", "D23",
                f"borrowersCount {count} is smaller than the {len(borrowers)} borrowers listed",
                "borrowersCount is the number of all debtors of the loan; it is at least the number of "
                "borrowers in the list."))
    return out


def check_contract_date_not_future(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-035 / D36: a contract date in the future is rejected."""
    out = []
    for i, loan in loans(body, ctx.operation):
        date = as_date(loan.get("contractDate"))
        if date and date > ctx.today:
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "contractDate"), "RPT-035", "D36",
                f"contractDate {date} is in the future (today is {ctx.today})",
                "Report a loan only once its contract has been concluded (by the next calendar day), "
                "with the date the contract was concluded."))
    return out


def check_deferment_periods(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-036 / D37: a deferment period may not end before it starts."""
    out = []
    for i, loan in loans(body, ctx.operation):
        periods = loan.get("defermentPeriods")
        for j, period in enumerate(periods if isinstance(periods, list) else []):
            start, end = as_date(as_dict(period).get("startDate")), as_date(as_dict(period).get("endDate"))
            if start and end and end < start:
                out.append(Problem(
                    pointer(catalogue.collection_of(ctx.operation), i, "defermentPeriods", j, "endDate"), "RPT-036", "D37",
                    f"deferment period ends ({end}) before it starts ({start})",
                    "Check the period's dates: startDate is the first and endDate the last day of the deferment."))
    return out


# ---- repayments, delays, terminations -------------------------------------------------------------------


def _contract_date(report: Mapping[str, Any], ctx: Context) -> dt.date | None:
    key = loan_key(report.get("loanNumber"))
    return ctx.contract_dates.get(key) if key else None


def check_payment_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-025 / D35: a payment date (lump sum) or balance date (running account) before the contract date
    is rejected (needs the loan in the same run)."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        for obj, member in (("lumpSumLoanRepayment", "paymentDate"), ("runningAccountLoanRepayment", "balanceDate")):
            date = as_date(as_dict(rep.get(obj)).get(member))
            if contract and date and date < contract:
                out.append(Problem(
                    pointer(catalogue.collection_of(ctx.operation), i, obj, member), "RPT-025", "D35",
                    f"{member} {date} is before the loan's contractDate {contract}",
                    "A payment cannot precede the loan contract: check the date or the loan number."))
    return out


def check_delay_due_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-027 / D30: a delayed instalment's original due date may not precede the contract date."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        amounts = rep.get("delayedAmounts")
        for j, amount in enumerate(amounts if contract and isinstance(amounts, list) else []):
            due = as_date(as_dict(amount).get("originalDueDate"))
            if due and contract and due < contract:
                out.append(Problem(
                    pointer(catalogue.collection_of(ctx.operation), i, "delayedAmounts", j, "originalDueDate"), "RPT-027", "D30",
                    f"originalDueDate {due} is before the loan's contractDate {contract}",
                    "The original due date is the instalment's due date in the payment plan; it cannot "
                    "precede the contract."))
    return out


def check_delay_60_days(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-028 / D31: a delayed instalment is reported only when 60 days have passed since its due date."""
    out = []
    for i, rep in reports(body, ctx.operation):
        amounts = rep.get("delayedAmounts")
        for j, amount in enumerate(amounts if isinstance(amounts, list) else []):
            due = as_date(as_dict(amount).get("originalDueDate"))
            if due and (ctx.today - due).days < DELAY_MIN_DAYS:
                out.append(Problem(
                    pointer(catalogue.collection_of(ctx.operation), i, "delayedAmounts", j, "originalDueDate"), "RPT-028", "D31",
                    f"only {(ctx.today - due).days} days have passed since originalDueDate {due} "
                    f"(today {ctx.today}); at least {DELAY_MIN_DAYS} are needed",
                    f"Report the instalment once it is {DELAY_MIN_DAYS} days late, i.e. on "
                    f"{due + dt.timedelta(days=DELAY_MIN_DAYS)} or later."))
    return out


def check_delay_amounts(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-029 / D32: isDelay true needs delayedAmounts, and isDelay false allows none."""
    out = []
    for i, rep in reports(body, ctx.operation):
        is_delay, amounts = rep.get("isDelay"), rep.get("delayedAmounts")
        has_amounts = isinstance(amounts, list) and len(amounts) > 0
        base = (catalogue.collection_of(ctx.operation), i)
        if is_delay is True and not has_amounts:
            out.append(Problem(
                pointer(*base, "delayedAmounts"), "RPT-029", "D32", "isDelay is true but no delayedAmounts are given",
                "List each delayed instalment (delayedInstalment, originalDueDate), or send isDelay false to clear "
                "the delay."))
        elif is_delay is False and has_amounts:
            out.append(Problem(
                pointer(*base, "delayedAmounts"), "RPT-029", "D32", "isDelay is false but delayedAmounts are given",
                "To clear a delay send isDelay false without delayedAmounts; to report one, set isDelay true."))
    return out


def check_foreclosure_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-031 / D33: acceleration (isForeclosed true) needs a foreclosureDate."""
    out = []
    for i, rep in reports(body, ctx.operation):
        if rep.get("isForeclosed") is True and not rep.get("foreclosureDate"):
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "foreclosureDate"), "RPT-031", "D33",
                "isForeclosed is true but foreclosureDate is missing",
                "Add foreclosureDate (yyyy-MM-dd), the date the whole loan was accelerated (eräännytetty)."))
    return out


def check_end_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-033 / D34: an end date before the contract date is rejected (needs the loan in the same run)."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        end = as_date(as_dict(rep.get("termination")).get("endDate"))
        if contract and end and end < contract:
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "termination", "endDate"), "RPT-033", "D34",
                f"endDate {end} is before the loan's contractDate {contract}",
                "A loan cannot end before its contract was concluded: check the end date or the loan number."))
    return out


# ---- the whole batch ------------------------------------------------------------------------------------


def check_duplicate_report_references(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-034 / D50: every report whose reportReference occurs more than once in the batch is rejected
    (all of them, the first one too: none of them can be told apart in the batch's results)."""
    at: dict[str, list[int]] = {}
    for i, rep in reports(body, ctx.operation):
        ref = rep.get("reportReference")
        if isinstance(ref, str):
            at.setdefault(ref, []).append(i)
    out = []
    for ref, indexes in at.items():
        for i in indexes if len(indexes) > 1 else []:
            others = ", ".join(str(j) for j in indexes if j != i)
            out.append(Problem(
                pointer(catalogue.collection_of(ctx.operation), i, "reportReference"), "RPT-034", "D50",
                f"reportReference {ref!r} is also used by report {others} of this batch",
                "Give every report of a batch its own reportReference (e.g. append the report's index)."))
    return out


RULES: tuple[Rule, ...] = (
    check_personal_identity_codes,
    check_business_ids,
    check_foreign_owner_country,
    check_amount_paid,
    check_guarantee_receivable_sender,
    check_guarantee_receivable_purpose,
    check_type_specific_object,
    check_repayment_object,
    check_borrowers_count,
    check_contract_date_not_future,
    check_deferment_periods,
    check_payment_date,
    check_delay_due_date,
    check_delay_60_days,
    check_delay_amounts,
    check_foreclosure_date,
    check_end_date,
    check_duplicate_report_references,
)


def check_rules(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """Every offline rule on a canonical body."""
    out: list[Problem] = []
    for rule in RULES:
        out.extend(rule(body, ctx))
    return out
