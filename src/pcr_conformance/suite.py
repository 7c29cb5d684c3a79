"""Helpers the suites share: deep subset matching, persons of the data pool, the reporting and extract
shortcuts the scenarios repeat, and one valid request per operation (security and envelope checks).

Response checks (ENV-005, ENV-014, SEC-011) are in :mod:`pcr_conformance.contract`; what an operation is
(family, collection, batch or not) is in :mod:`pcr_conformance.catalogue`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pcr_conformance import catalogue, contract, expect, judging
from pcr_conformance.target import SLOT_ROLES

# ---- polling -----------------------------------------------------------------------------------------

def backoff(first_s: float = 0.01, most_s: float = 0.25) -> Iterable[float]:
    """The waits between polls of a state that changes in the register's own time: fast at first (an answer
    of 1-3 ms is usually there after the first), doubling up to `most_s`; never one fixed sleep."""
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, most_s)


# ---- matching ----------------------------------------------------------------------------------------

def subset_mismatch(actual: Any, expected: Any, path: str = "") -> str | None:
    """Where `expected` is not contained in `actual` (mappings by key, lists element-wise), or None."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{path or '/'}: expected an object, actual {actual!r:.200}"
        for k, v in expected.items():
            if k not in actual:
                return f"{path}/{k}: missing"
            m = subset_mismatch(actual[k], v, f"{path}/{k}")
            if m:
                return m
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {expected!r:.200}, actual {actual!r:.200}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            m = subset_mismatch(a, e, f"{path}/{i}")
            if m:
                return m
        return None
    if actual != expected and not (isinstance(actual, int | float) and isinstance(expected, int | float)
                                   and not isinstance(actual, bool) and float(actual) == float(expected)):
        return f"{path}: expected {expected!r}, actual {actual!r}"
    return None


# ---- persons of the pool ---------------------------------------------------------------------------------

def pool_persons(data: Any, *, having: Iterable[str] = (), without: Iterable[str] = ()) -> list[str]:
    """Pool persons carrying every tag of `having` and none of `without`."""
    having, without = set(having), set(without)
    return [p.id_code for p in data.pool.persons
            if having <= set(p.tags) and not (without & set(p.tags))]


def pick_person(data: Any, *, having: Iterable[str] = (), without: Iterable[str] = (), skip_reason: str = "") -> str:
    import pytest

    codes = pool_persons(data, having=having, without=without)
    if not codes:
        pytest.skip(skip_reason or f"not claimed: the data pool has no person with tags {sorted(having)} "
                                   f"and without {sorted(without)}")
    return codes[0]


# ---- reporting shortcuts ---------------------------------------------------------------------------------

def report_all_accepted(client: Any, operation: str, reports: list[Mapping[str, Any]],
                        requirement: str, *, batch_reference: str | None = None) -> dict[str, Any]:
    """Submit a batch and require FinishedSuccess with every report Accepted (named by `requirement`)."""
    status = client.submit_and_wait(operation, reports, batch_reference=batch_reference)
    expect.batch_state(status, "FinishedSuccess", requirement)
    return status


def modelled_value(condition: Any, operation: str, expected: Any, actual: Any) -> None:
    """A check of what only our model states (a modelled member or literal, ENV-023): a failure under the
    reference reading, an informative finding under the public one (the test goes on)."""
    if condition:
        return
    if judging.public():
        judging.informative("ENV-023", operation, expected, actual)
    else:
        expect.fail("ENV-023", operation, expected, actual)


def loan_of(client: Any, loan_number: Mapping[str, str], requirement: str) -> dict[str, Any]:
    """GetLoan of one of the client's loans: 200 and the `loan` object."""
    resp = client.get_loan(loan_number)
    expect.status(resp, 200, requirement, "GetLoan")
    contract.conforms(resp, "GetLoan")
    body = contract.json_of(resp, requirement, "GetLoan")
    loan = body.get("loan") if isinstance(body, dict) else None
    expect.that(isinstance(loan, dict), requirement, "GetLoan", "a loan object", repr(body)[:300])
    return loan


def results_by_reference(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r.get("reportReference"): r for r in status.get("reportResults") or [] if isinstance(r, dict)}


def codes_of(result: Mapping[str, Any] | None) -> list[str]:
    if not result:
        return []
    return [str(e.get("errorCode")) for e in result.get("errorResponses") or [] if isinstance(e, dict)]


def unique_name(data: Any, label: str) -> str:
    """A marketing name unique to this run and call: it finds one loan among a person's loans on an extract."""
    return f"{label} {data.report_reference()[2:]}"


def extract_loans_named(extract: Mapping[str, Any], marketing_name: str) -> list[Mapping[str, Any]]:
    """The loans of an extract (or a distribution person) whose lender marketing name is `marketing_name`."""
    return [loan for loan in extract.get("loans") or []
            if isinstance(loan, dict) and (loan.get("lender") or {}).get("marketingName") == marketing_name]


_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})T00:00:00(?:\.0+)?(?:Z|[+-]\d{2}:\d{2})$")
_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def as_public_dates(body: Any, operation: str) -> Any:
    """An extract answer with its dates as yyyy-MM-dd, whichever form the register uses (public reading: a date
    or an offset date-time at midnight, specs/README.md disputed points); the form seen is recorded
    (`extract_date_format`), and a form other than the one the implementation profile states fails ENV-024.
    Other operations, and the reference reading (whose schema check already judged the form), as given."""
    if operation != "GetCreditRegisterExtract":
        return body
    forms: set[str] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):  # ...Utc members are timestamps, not dates
            return {k: v if k.endswith("Utc") else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            m = _MIDNIGHT.match(value)
            if m:
                forms.add("date-time")
                return m.group(1)
            if _PLAIN_DATE.match(value):
                forms.add("date")
        return value

    converted = walk(body)
    for form in sorted(forms):
        judging.observe("extract_date_format", form, operation)
    stated, basis = judging.value("extract_date_format", None)
    if basis == "profile" and forms and forms != {stated}:
        expect.fail("ENV-024", operation, f"extract dates as {stated} (the implementation profile)", sorted(forms))
    return converted if judging.public() else body


def extract_of(client: Any, id_code: str, requirement: str,
               purposes: Iterable[str] = ("NewConsumerCredit",)) -> dict[str, Any]:
    """GetCreditRegisterExtract: 200 and the creditRegisterExtract object."""
    resp = client.extract(id_code, purposes)
    expect.status(resp, 200, requirement, "GetCreditRegisterExtract")
    body = contract.json_of(resp, requirement, "GetCreditRegisterExtract")
    # The date form first: a form other than the profile's is ENV-024 whichever reading judges the schema.
    public_body = as_public_dates(body, "GetCreditRegisterExtract")
    contract.conforms(resp, "GetCreditRegisterExtract")
    body = public_body
    extract = body.get("creditRegisterExtract") if isinstance(body, dict) else None
    expect.that(isinstance(extract, dict), requirement, "GetCreditRegisterExtract", "a creditRegisterExtract",
                repr(body)[:300])
    return extract


# ---- one valid request per operation (security and envelope checks) --------------------------------------

def slot_for(family: str) -> str:
    """The first identity slot whose certificate role may call the API family (the spec's
    info.x-certificate-role): lender, lender_extract, authority, cic."""
    role = catalogue.family_roles()[family]
    return next(slot for slot, slot_role in SLOT_ROLES.items() if slot_role == role)


def valid_request(operation: str, client: Any, data: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A body (with the client's envelope) and headers the operation accepts from its proper identity."""
    from pcr_conformance import messages as m

    headers: dict[str, str] = {}
    if catalogue.get(operation).submits:
        headers[catalogue.BATCH_REFERENCE_HEADER] = data.batch_reference(operation)
    number = data.loan_number()
    person = data.person("income")
    ref = data.report_reference()
    bodies: dict[str, Any] = {
        "AddLoans": {"loans": [m.lump_sum_loan(number, person, ref)]},
        "UpdateLoans": {"loans": [m.lump_sum_loan(number, person, ref)]},
        "Repayments": {"repayments": [m.repayment(number, ref)]},
        "DelayedRepayments": {"delayedRepayments": [m.delayed_repayment(number, ref)]},
        "TerminateLoans": {"loanTerminations": [m.termination(number, ref)]},
        "GetBatchStatus": {"batchReference": data.batch_reference("status")},
        "GetLoan": {"loanNumber": number},
        "GetCreditRegisterExtract": {"request": {"idCodeType": "PersonalIdentityCode", "idCode": person,
                                                 "creditRegisterExtractPurpose": ["NewConsumerCredit"]}},
        "GetExtractLog": {},
        "OrderData": {"order": {"orderType": "PersonLoans", "legalBasis": "Supervision of credit markets",
                                "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": person}]}},
        "GetOrderStatus": {"orderReference": str(uuid.uuid4())},
        "GetDistribution": {"orderReference": str(uuid.uuid4())},
        "GetVoluntaryBan": {"request": {"idCodeType": "PersonalIdentityCode", "idCode": person}},
        "GetVoluntaryBanChanges": {"sinceUtc": "2020-01-01T00:00:00Z"},
        "ListBatches": {"receivedFromUtc": "2020-01-01T00:00:00Z"},  # contract version 2027.1
    }
    if operation not in bodies:
        raise KeyError(f"suite.valid_request has no valid body for {operation}; add one to its table "
                       f"(CONTRIBUTING.md: adding an operation)")
    return client.envelope(**bodies[operation]), headers


def writes(operation: str) -> bool:
    """Operations that store something when accepted: never run against a read-only target."""
    return catalogue.get(operation).writes


def read_only_marks(operation: str) -> list[Any]:
    """[read_only_safe] for an operation that only reads, [] otherwise (for pytest.param marks)."""
    import pytest

    return [] if writes(operation) else [pytest.mark.read_only_safe]
