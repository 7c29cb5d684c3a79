"""Offline validation of a stakeholder's own message files (`pcr-conformance validate`).

A message file is one JSON request body as the stakeholder's loan system would send it. It is checked
against the request schema of its operation (specs/ via `pcr_conformance.specs`) and against every
processing rule that needs no register: identity-code and Business ID check characters, D02, D40, date
order, the Kela-only loan type, the delayed-amount rules and duplicate report references.

Each rule is a plain function `(body, ctx) -> list[Problem]` citing its requirement ID, so the fuzz checks
and the corpus can reuse them (or call `validate_body(body, operation)` for all of them at once). `body` is the request body with member names already mapped to the spec's
camelCase names (ENV-011: the register matches member names case-insensitively); `canonicalize` does that.
Rules never raise on malformed input: whatever the schema already reports (wrong types, bad dates) they skip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance.identifiers import (
    CHECK_ALPHABET,
    business_id_check_digit,
    hetu_birth_date,
    hetu_check_character,
)
from pcr_conformance.messages import COLLECTIONS

ERROR = "error"
WARNING = "warning"

# loanType -> the type-specific object it must carry (RPT-011).
TYPE_OBJECTS: dict[str, str] = {
    "LumpSumLoan": "lumpSumLoan",
    "GuaranteeReceivable": "lumpSumLoan",
    "RunningAccountLoan": "runningAccountLoan",
    "Leasing": "leasingContract",
}

DELAY_MIN_DAYS = 60  # RPT-028: a delayed instalment is reported only 60 days after its original due date


class ValidationInputError(Exception):
    """The file cannot be validated at all (unreadable, not JSON, operation unknown): exit code 2."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One rule broken by a message: where, which requirement and error code, what is wrong, how to fix it."""

    pointer: str  # JSON pointer into the body (RFC 6901), "" for the whole body
    requirement: str
    code: str
    message: str
    fix: str
    severity: str = ERROR


@dataclasses.dataclass(frozen=True)
class Context:
    """What the rules may know beyond the body itself."""

    operation: str
    today: dt.date
    owner_is_kela: bool = False
    # (loanNumber.type, loanNumber.number) -> contractDate of loans in the files validated together, so a
    # delayed-repayment or termination file can be checked against the AddLoans file beside it (D30 D34 D35).
    contract_dates: Mapping[tuple[str, str], dt.date] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FileResult:
    path: str
    operation: str
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def valid(self) -> bool:
        return not self.errors


Rule = Callable[[Mapping[str, Any], Context], list[Problem]]


# ---- helpers ------------------------------------------------------------------------------------------


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _date(value: Any) -> dt.date | None:
    """A yyyy-MM-dd date, or None (the schema reports malformed dates, ENV-013)."""
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def reports(body: Mapping[str, Any], operation: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, report) of the operation's collection; nothing for other operations."""
    member = COLLECTIONS.get(operation)
    items = body.get(member) if member else None
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                yield i, item


def loans(body: Mapping[str, Any], operation: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, loan) of an AddLoans or UpdateLoans body; nothing for other operations."""
    if COLLECTIONS.get(operation) == "loans":
        yield from reports(body, operation)


def loan_key(loan_number: Any) -> tuple[str, str] | None:
    ln = _dict(loan_number)
    if isinstance(ln.get("type"), str) and isinstance(ln.get("number"), str):
        return ln["type"], ln["number"]
    return None


def contract_dates(body: Mapping[str, Any], operation: str) -> dict[tuple[str, str], dt.date]:
    """Contract dates of the loans an AddLoans/UpdateLoans body reports, by loan number."""
    out: dict[tuple[str, str], dt.date] = {}
    for _, loan in loans(body, operation):
        key, date = loan_key(loan.get("loanNumber")), _date(loan.get("contractDate"))
        if key and date:
            out[key] = date
    return out


def _walk(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))


def _identified_objects(body: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every object carrying idCodeType (owner, borrowers, guarantors, extract subject, order subjects)."""
    for path, value in _walk(body):
        if isinstance(value, Mapping) and "idCodeType" in value:
            yield path, value


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
    for path, obj in _identified_objects(body):
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
    for path, obj in _identified_objects(body):
        if obj.get("idCodeType") == "BusinessId" and "idCode" in obj:
            why = business_id_problem(obj["idCode"])
            if why:
                out.append(Problem(pointer(*path, "idCode"), "IDN-003", "D05", f"Business ID {why}", fix))
    for path, value in _walk(body):
        if path and path[-1] == "businessId" and isinstance(path[-2] if len(path) > 1 else None, int):
            why = business_id_problem(value)
            if why:
                out.append(Problem(pointer(*path), "IDN-003", "D05", f"borrower's Business ID {why}", fix))
    return out


def check_foreign_owner_country(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """IDN-004 / D40: a ForeignBusinessId needs a countryCode."""
    out = []
    for path, obj in _identified_objects(body):
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
        lump = _dict(loan.get("lumpSumLoan"))
        paid, issued = _number(lump.get("amountPaid")), _number(lump.get("amountIssued"))
        if paid is not None and issued is not None and paid > issued:
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "lumpSumLoan", "amountPaid"), "RPT-004", "D02",
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
                pointer(COLLECTIONS[ctx.operation], i, "loanType"), "RPT-009", "D20",
                "loan type GuaranteeReceivable may be reported only by Kela; the register rejects it from "
                "any other owner",
                "Unless you are Kela, report a student loan as LumpSumLoan with purposeOfUse StudentLoan. "
                "(Kela: pass --owner-is-kela.)", WARNING))
    return out


def check_guarantee_receivable_purpose(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-010 / D21: GuaranteeReceivable has purpose GuaranteeReceivableForStudentLoan, and only it has."""
    out = []
    for i, loan in loans(body, ctx.operation):
        purpose = _dict(loan.get("lumpSumLoan")).get("purposeOfUse")
        loan_type = loan.get("loanType")
        if purpose is None or loan_type is None:
            continue
        is_gr, is_gr_purpose = loan_type == "GuaranteeReceivable", purpose == "GuaranteeReceivableForStudentLoan"
        if is_gr != is_gr_purpose:
            where = pointer(COLLECTIONS[ctx.operation], i, "lumpSumLoan", "purposeOfUse")
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
        base = (COLLECTIONS[ctx.operation], i)
        if wanted not in present:
            out.append(Problem(
                pointer(*base, wanted), "RPT-011", "D22", f"loanType {loan_type} needs the object {wanted}",
                f"Add {wanted} with the {loan_type} data, or correct loanType."))
        for other in present:
            if other != wanted:
                out.append(Problem(
                    pointer(*base, other), "RPT-011", "D22",
                    f"loanType {loan_type} may not carry {other} (it belongs to another loan type)",
                    f"Remove {other}; a {loan_type} loan carries only {wanted}."))
    return out


def check_borrowers_count(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-012 / D23: borrowersCount is not smaller than the number of listed borrowers."""
    out = []
    for i, loan in loans(body, ctx.operation):
        count, borrowers = loan.get("borrowersCount"), loan.get("borrowers")
        if isinstance(count, int) and not isinstance(count, bool) and isinstance(borrowers, list) \
                and count < len(borrowers):
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "borrowersCount"), "RPT-012", "D23",
                f"borrowersCount {count} is smaller than the {len(borrowers)} borrowers listed",
                "borrowersCount is the number of all debtors of the loan; it is at least the number of "
                "borrowers in the list."))
    return out


def check_contract_date_not_future(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-035 / D36: a contract date in the future is rejected."""
    out = []
    for i, loan in loans(body, ctx.operation):
        date = _date(loan.get("contractDate"))
        if date and date > ctx.today:
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "contractDate"), "RPT-035", "D36",
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
            start, end = _date(_dict(period).get("startDate")), _date(_dict(period).get("endDate"))
            if start and end and end < start:
                out.append(Problem(
                    pointer(COLLECTIONS[ctx.operation], i, "defermentPeriods", j, "endDate"), "RPT-036", "D37",
                    f"deferment period ends ({end}) before it starts ({start})",
                    "Check the period's dates: startDate is the first and endDate the last day of the deferment."))
    return out


# ---- repayments, delays, terminations -------------------------------------------------------------------


def _contract_date(report: Mapping[str, Any], ctx: Context) -> dt.date | None:
    key = loan_key(report.get("loanNumber"))
    return ctx.contract_dates.get(key) if key else None


def check_payment_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-025 / D35: a payment date before the contract date is rejected (needs the loan in the same run)."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        paid = _date(_dict(rep.get("lumpSumLoanRepayment")).get("paymentDate"))
        if contract and paid and paid < contract:
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "lumpSumLoanRepayment", "paymentDate"), "RPT-025", "D35",
                f"paymentDate {paid} is before the loan's contractDate {contract}",
                "A payment cannot precede the loan contract: check the payment date or the loan number."))
    return out


def check_delay_due_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-027 / D30: a delayed instalment's original due date may not precede the contract date."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        amounts = rep.get("delayedAmounts")
        for j, amount in enumerate(amounts if contract and isinstance(amounts, list) else []):
            due = _date(_dict(amount).get("originalDueDate"))
            if due and contract and due < contract:
                out.append(Problem(
                    pointer(COLLECTIONS[ctx.operation], i, "delayedAmounts", j, "originalDueDate"), "RPT-027", "D30",
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
            due = _date(_dict(amount).get("originalDueDate"))
            if due and (ctx.today - due).days < DELAY_MIN_DAYS:
                out.append(Problem(
                    pointer(COLLECTIONS[ctx.operation], i, "delayedAmounts", j, "originalDueDate"), "RPT-028", "D31",
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
        base = (COLLECTIONS[ctx.operation], i)
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
                pointer(COLLECTIONS[ctx.operation], i, "foreclosureDate"), "RPT-031", "D33",
                "isForeclosed is true but foreclosureDate is missing",
                "Add foreclosureDate (yyyy-MM-dd), the date the whole loan was accelerated (eräännytetty)."))
    return out


def check_end_date(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-033 / D34: an end date before the contract date is rejected (needs the loan in the same run)."""
    out = []
    for i, rep in reports(body, ctx.operation):
        contract = _contract_date(rep, ctx)
        end = _date(_dict(rep.get("termination")).get("endDate"))
        if contract and end and end < contract:
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "termination", "endDate"), "RPT-033", "D34",
                f"endDate {end} is before the loan's contractDate {contract}",
                "A loan cannot end before its contract was concluded: check the end date or the loan number."))
    return out


# ---- the whole batch ------------------------------------------------------------------------------------


def check_duplicate_report_references(body: Mapping[str, Any], ctx: Context) -> list[Problem]:
    """RPT-034 / D50: report references repeated within a batch are rejected (every repeat)."""
    out = []
    first: dict[str, int] = {}
    for i, rep in reports(body, ctx.operation):
        ref = rep.get("reportReference")
        if not isinstance(ref, str):
            continue
        if ref in first:
            out.append(Problem(
                pointer(COLLECTIONS[ctx.operation], i, "reportReference"), "RPT-034", "D50",
                f"reportReference {ref!r} is already used by report {first[ref]} of this batch",
                "Give every report of a batch its own reportReference (e.g. append the report's index)."))
        else:
            first[ref] = i
    return out


RULES: tuple[Rule, ...] = (
    check_personal_identity_codes,
    check_business_ids,
    check_foreign_owner_country,
    check_amount_paid,
    check_guarantee_receivable_sender,
    check_guarantee_receivable_purpose,
    check_type_specific_object,
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


# ---- member names (ENV-011) ---------------------------------------------------------------------------


def canonicalize(value: Any, names: Mapping[str, str]) -> tuple[Any, dict[str, str]]:
    """Map member names case-insensitively to the spec's names (ENV-011).

    `names` maps lower-cased names to canonical ones. Returns the canonical value and a map from canonical
    JSON pointers to the pointers as written in the file (for messages that quote the file's own spelling).
    Members the spec does not know keep their spelling (the schema then reports them, ENV-010).
    """
    pointers: dict[str, str] = {}

    def walk(v: Any, canon: str, orig: str) -> Any:
        pointers[canon] = orig
        if isinstance(v, Mapping):
            out = {}
            for k, item in v.items():
                name = names.get(k.lower(), k) if isinstance(k, str) else k
                if name in out:  # two spellings of one member: keep both visible to the schema
                    name = k
                out[name] = walk(item, canon + pointer(name), orig + pointer(k))
            return out
        if isinstance(v, list):
            return [walk(item, canon + pointer(i), orig + pointer(i)) for i, item in enumerate(v)]
        return v

    return walk(value, "", ""), pointers


def original_pointer(canonical: str, pointers: Mapping[str, str]) -> str:
    """The file's own spelling of a canonical pointer (its longest known prefix, rest unchanged)."""
    probe = canonical
    while True:
        if probe in pointers:
            return pointers[probe] + canonical[len(probe):]
        if not probe:
            return canonical
        probe = probe[: probe.rfind("/")]


# ---- operation inference ------------------------------------------------------------------------------


def infer_operation(body: Any) -> str:
    """The operation a canonical body is for, from its members; ValidationInputError when it cannot tell."""
    if not isinstance(body, Mapping):
        raise ValidationInputError("the body is not a JSON object; a request body is {\"targetEnvironment\": ..., "
                                   "\"owner\": ..., ...}")
    if "loans" in body:
        loans = body["loans"] if isinstance(body["loans"], list) else []
        types = {_dict(loan).get("reportType") for loan in loans}
        if types & {"ErrorCorrection", "Cancellation"}:
            return "UpdateLoans"
        if types <= {None}:
            return "AddLoans"
        raise ValidationInputError("loans with reportType NewReport may be AddLoans or UpdateLoans; "
                                   "say which with --operation AddLoans or --operation UpdateLoans")
    for member, operation in (("repayments", "Repayments"), ("delayedRepayments", "DelayedRepayments"),
                              ("loanTerminations", "TerminateLoans"), ("batchReference", "GetBatchStatus"),
                              ("loanNumber", "GetLoan"), ("order", "OrderData"),
                              ("sinceUtc", "GetVoluntaryBanChanges"), ("fromUtc", "GetExtractLog")):
        if member in body:
            return operation
    request = body.get("request")
    if isinstance(request, Mapping):
        return "GetCreditRegisterExtract" if "creditRegisterExtractPurpose" in request else "GetVoluntaryBan"
    if "creditRegisterExtractPurpose" in body:
        return "GetCreditRegisterExtract"
    if "orderReference" in body:
        raise ValidationInputError("a body with orderReference may be GetOrderStatus or GetDistribution; "
                                   "say which with --operation")
    raise ValidationInputError("cannot tell the operation from the members "
                               f"{sorted(body)}; give it with --operation (e.g. --operation AddLoans)")


# ---- the request schema (specs/) ------------------------------------------------------------------------


def _specs() -> Any:
    """`pcr_conformance.specs`, imported when first needed (the rules alone work without the specs)."""
    from pcr_conformance import specs

    return specs


def known_operations() -> list[str]:
    return sorted(_specs().operation_index())


def require_operation(operation: str) -> str:
    """The specs' spelling of an operation name (letter case aside); ValidationInputError when unknown."""
    known = known_operations()
    by_lower = {op.lower(): op for op in known}
    if operation.lower() not in by_lower:
        raise ValidationInputError(f"unknown operation {operation!r}; the specs define {', '.join(known)}")
    return by_lower[operation.lower()]


def member_names() -> dict[str, str]:
    """lower-case -> canonical name of every member any spec schema defines (for ENV-011)."""
    specs = _specs()
    names: dict[str, str] = {}
    files = sorted(p.name for p in specs.specs_dir().glob("*.yaml") if not p.name.startswith("requirements"))
    for file_name in files:
        for path, value in _walk(specs.load_raw(file_name)):
            if path and path[-1] == "properties" and isinstance(value, Mapping):
                for name in value:
                    if isinstance(name, str):
                        names.setdefault(name.lower(), name)
    return names


# Schema keyword -> the requirement it stands for, when nothing more specific applies.
_KEYWORD_REQUIREMENTS = {
    "required": "ENV-017",
    "type": "ENV-017",
    "additionalProperties": "ENV-010",
    "unevaluatedProperties": "ENV-010",
    "enum": "ENV-012",
    "const": "ENV-012",
    "minimum": "RPT-037",
    "exclusiveMinimum": "RPT-037",
}
_DATE_MEMBERS = ("Date", "date")


_FLAT_EXTRACT_MEMBERS = {"idCodeType", "idCode", "creditRegisterExtractPurpose"}


def schema_problem(error: Any) -> list[Problem]:
    """Problems from a jsonschema ValidationError: pointer, requirement, D01, the schema's words, a fix."""
    path = list(error.absolute_path)
    keyword = error.validator
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, Mapping):
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return [_unknown_member(path, name, error.instance) for name in extra]
    where = pointer(*path)
    last = str(path[-1]) if path else ""
    requirement = _KEYWORD_REQUIREMENTS.get(keyword, "")
    fix = "Make the member match the request schema of the operation in specs/ (type, format, required members)."
    message = error.message
    if keyword == "required":
        missing = next((m for m in error.validator_value if isinstance(error.instance, Mapping)
                        and m not in error.instance), "")
        where = pointer(*path, missing) if missing else where
        message = f"required member {missing or error.message} is missing"
        fix = f"Add {missing}; the operation requires it."
        last = missing
    elif keyword in ("enum", "const"):
        allowed = error.validator_value if keyword == "enum" else [error.validator_value]
        fix = f"Use one of {', '.join(map(str, allowed))} (enum values are case-sensitive)."
    elif keyword in ("minimum", "exclusiveMinimum"):
        fix = f"Amounts and counts are never negative: use a number of at least {error.validator_value}."
    elif keyword == "minItems" and path and path[-1] in COLLECTIONS.values():
        requirement, fix = "RPT-040", "Send at least one report in the batch."
    if keyword in ("format", "pattern") and last.endswith(_DATE_MEMBERS):
        requirement, fix = "ENV-013", "Write dates as yyyy-MM-dd, e.g. 2026-03-31."
    if keyword == "pattern" and last == "currencyCode":
        requirement, fix = "RPT-037", "Use an ISO 4217 code in capitals, e.g. EUR."
    if "creditRegisterExtractPurpose" in map(str, path):
        requirement = "EXT-001"
        fix = "Give at least one known purpose, each once, e.g. [\"NewConsumerCredit\"]."
    if path[:1] == ["targetEnvironment"] or last == "targetEnvironment":
        requirement, fix = "ENV-002", 'Set "targetEnvironment" to "Test" or "Production".'
    elif path[:1] == ["owner"] or last == "owner":
        requirement = "ENV-004"
        fix = 'Send "owner": {"idCodeType": "BusinessId", "idCode": "NNNNNNN-C"} (the certificate\'s organisation).'
    return [Problem(where, requirement or "schema", "D01", f"schema: {message}", fix)]


def _unknown_member(path: list[Any], name: str, instance: Mapping[str, Any]) -> Problem:
    """ENV-010: an unknown member, with a pointed fix for the flat extract form some clients send."""
    fix = (f"Remove {name} or correct its spelling; the register rejects unknown members "
           f"(member names may differ in letter case only).")
    if not path and name in _FLAT_EXTRACT_MEMBERS and "request" not in instance:
        fix = ("Put idCodeType, idCode and creditRegisterExtractPurpose inside \"request\": {...} "
               "(the documented extract request nests them).")
    return Problem(pointer(*path, name), "ENV-010", "D01", f"schema: unknown member {name}", fix)


def request_validator(operation: str) -> Any:
    """A jsonschema validator (2020-12, with formats) for the operation's request body."""
    import jsonschema

    schema = _specs().schema_for_request(operation)
    if hasattr(schema, "iter_errors"):  # the specs module already gave a validator
        return schema
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def schema_problems(body: Any, operation: str) -> list[Problem]:
    """The request schema's verdict on a canonical body (D01 problems)."""
    validator = request_validator(operation)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    out: list[Problem] = []
    for error in errors:
        # oneOf/anyOf/if-then failures: report their most specific cause instead of the umbrella message.
        leaves = _leaf_errors(error)
        for leaf in leaves:
            out.extend(schema_problem(leaf))
    unique: dict[tuple[str, str], Problem] = {}  # one problem per member and requirement is enough
    for p in out:
        unique.setdefault((p.pointer, p.requirement), p)
    return list(unique.values())


def _leaf_errors(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    import jsonschema.exceptions

    best = jsonschema.exceptions.best_match(error.context)
    return _leaf_errors(best) if best is not None else [error]


# ---- files --------------------------------------------------------------------------------------------


def read_json(path: str | Path) -> Any:
    """The JSON of a file; ValidationInputError naming the file and the fix when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValidationInputError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationInputError(f"{p}: cannot read the file ({e}); save it as UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationInputError(f"{p}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


SchemaCheck = Callable[[Any, str], list[Problem]]


def validate_files(
    paths: Sequence[str | Path],
    *,
    operation: str | None = None,
    today: dt.date | None = None,
    owner_is_kela: bool = False,
    names: Mapping[str, str] | None = None,
    schema_check: SchemaCheck | None = None,
) -> list[FileResult]:
    """Validate message files together (loans of one file give contract dates for the others).

    `names` (lower-case -> canonical member names) and `schema_check` default to the specs' (see
    `member_names` and `schema_problems`). Raises ValidationInputError for a file that cannot be validated.
    """
    if operation is not None:
        operation = require_operation(operation)
    names = member_names() if names is None else names
    schema_check = schema_problems if schema_check is None else schema_check
    today = today or dt.date.today()
    loaded: list[tuple[str, Any, dict[str, str], str]] = []
    for path in paths:
        raw = read_json(path)
        body, pointers = canonicalize(raw, names)
        try:
            op = operation or infer_operation(body)
        except ValidationInputError as e:
            raise ValidationInputError(f"{path}: {e}") from None
        loaded.append((str(path), body, pointers, op))
    dates: dict[tuple[str, str], dt.date] = {}
    for _, body, _, op in loaded:
        if isinstance(body, Mapping):
            dates.update(contract_dates(body, op))
    results = []
    for path, body, pointers, op in loaded:
        ctx = Context(operation=op, today=today, owner_is_kela=owner_is_kela, contract_dates=dates)
        problems = _problems(body, ctx, schema_check)
        problems = [dataclasses.replace(p, pointer=original_pointer(p.pointer, pointers)) for p in problems]
        results.append(FileResult(path, op, tuple(problems)))
    return results


def validate_body(body: Any, operation: str, *, today: dt.date | None = None, owner_is_kela: bool = False,
                  with_schema: bool = True) -> list[Problem]:
    """Every problem of one request body (any member-name casing), for reuse by fuzz checks and the corpus.

    Pointers use the canonical camelCase names. Contract dates come from the body itself only.
    """
    canonical, _ = canonicalize(body, member_names())
    ctx = Context(operation=operation, today=today or dt.date.today(), owner_is_kela=owner_is_kela,
                  contract_dates=contract_dates(canonical, operation) if isinstance(canonical, Mapping) else {})
    return _problems(canonical, ctx, schema_problems if with_schema else None)


def _problems(body: Any, ctx: Context, schema_check: SchemaCheck | None) -> list[Problem]:
    problems = check_rules(body, ctx) if isinstance(body, Mapping) else []
    if schema_check is not None:
        ruled = {p.pointer for p in problems if p.severity == ERROR}
        # A rule's error is more specific than the schema's pattern error at the same place.
        problems += [p for p in schema_check(body, ctx.operation) if p.pointer not in ruled]
    problems.sort(key=lambda p: (p.severity != ERROR, _pointer_sort_key(p.pointer), p.requirement))
    return problems


def _pointer_sort_key(ptr: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in ptr.split("/")[1:])


# ---- output -------------------------------------------------------------------------------------------


def render_text(results: Sequence[FileResult]) -> str:
    lines = []
    for r in results:
        if not r.problems:
            lines.append(f"{r.path}: valid {r.operation} message")
            continue
        n_err, n_warn = len(r.errors), len(r.problems) - len(r.errors)
        lines.append(f"{r.path}: {r.operation}: {n_err} error(s), {n_warn} warning(s)")
        for p in r.problems:
            label = "" if p.severity == ERROR else "warning "
            lines.append(f"  {r.path}: {p.pointer or '/'}  {label}{p.requirement} {p.code}  {p.message}")
            lines.append(f"      fix: {p.fix}")
    return "\n".join(lines)


def to_json(results: Sequence[FileResult]) -> list[dict[str, Any]]:
    return [
        {"file": r.path, "operation": r.operation, "valid": r.valid,
         "problems": [dataclasses.asdict(p) for p in r.problems]}
        for r in results
    ]
