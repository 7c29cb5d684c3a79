"""Small helpers shared by the suites that the harness does not (yet) offer.

Only glue on top of pcr_conformance: response-shape checks named by their requirement (ENV-005, ENV-014,
SEC-011), the spec lookup, deep subset matching and a few reporting shortcuts the scenarios repeat.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from pcr_conformance import expect

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"

# API family (base_urls key / scenario package) -> spec file.
SPEC_FILES = {
    "reporting": "reporting.yaml",
    "extract": "extract.yaml",
    "authorities": "authorities.yaml",
    "voluntary_ban": "voluntary-ban.yaml",
    "voluntary-ban": "voluntary-ban.yaml",
}

OPERATIONS = {
    "reporting": ("AddLoans", "UpdateLoans", "Repayments", "DelayedRepayments", "TerminateLoans",
                  "GetBatchStatus", "GetLoan"),
    "extract": ("GetCreditRegisterExtract", "GetExtractLog"),
    "authorities": ("OrderData", "GetOrderStatus", "GetDistribution"),
    "voluntary_ban": ("GetVoluntaryBan", "GetVoluntaryBanChanges"),
}
FAMILY_OF = {op: fam for fam, ops in OPERATIONS.items() for op in ops}
SUBMIT_OPERATIONS = ("AddLoans", "UpdateLoans", "Repayments", "DelayedRepayments", "TerminateLoans")

# Capability a target claims for each API family (interfaces.md §9).
CAPABILITY_OF = {"reporting": "reporting", "extract": "extract", "authorities": "authorities",
                 "voluntary_ban": "voluntary-ban", "voluntary-ban": "voluntary-ban"}

# Words that only appear in an answer when internals leak (SEC-011).
_INTERNALS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\.py\"|\bsqlite3?\b|OperationalError|IntegrityError"
    r"|\bSELECT\s+.+\s+FROM\b|\bINSERT\s+INTO\b|pydantic|starlette|uvicorn|fastapi|\bat [\w.$]+\([\w]+\.java:\d+\)"
    r"|NullReferenceException|System\.[A-Z]\w+Exception|/site-packages/|/usr/lib/python",
    re.IGNORECASE,
)


# ---- JSON and shapes -------------------------------------------------------------------------------------

def json_of(resp: httpx.Response, requirement: str, operation: str) -> Any:
    """The JSON body; a body that is not JSON fails `requirement`."""
    try:
        return resp.json()
    except ValueError:
        expect.fail(requirement, operation, "a JSON body", f"HTTP {resp.status_code}: {resp.text[:300]!r}")


def error_shape(resp: httpx.Response, operation: str, requirement: str = "ENV-005") -> dict[str, Any]:
    """The error answer carries statusMessage, a UUID correlationId and errorResponses items (ENV-005)."""
    body = expect.body_of(resp)
    where = f"{operation} (HTTP {resp.status_code})"
    expect.that(isinstance(body, dict), requirement, where, "an error object",
                f"{resp.headers.get('content-type')}: {resp.text[:300]!r}")
    expect.that(isinstance(body.get("statusMessage"), str) and body["statusMessage"], requirement, where,
                "a statusMessage", body.get("statusMessage"))
    cid = body.get("correlationId")
    expect.that(isinstance(cid, str) and _is_uuid(cid), requirement, where, "a UUID correlationId", repr(cid))
    items = body.get("errorResponses")
    expect.that(isinstance(items, list) and items, requirement, where, "a non-empty errorResponses list",
                repr(items)[:300])
    for item in items:
        ok = isinstance(item, dict) and all(isinstance(item.get(k), str) for k in
                                            ("fieldName", "errorCode", "errorDescription"))
        expect.that(ok, requirement, where, "errorResponses items with fieldName, errorCode, errorDescription",
                    repr(item)[:300])
    return body


def no_internals(resp: httpx.Response, operation: str, requirement: str = "SEC-011") -> None:
    """The answer reveals no stack trace, SQL or framework internals (SEC-011)."""
    m = _INTERNALS.search(resp.text)
    expect.that(m is None, requirement, f"{operation} (HTTP {resp.status_code})", "no internals in the answer",
                f"{m.group(0)!r} in {resp.text[:300]!r}" if m else "")


def not_server_error(resp: httpx.Response, requirement: str, operation: str) -> None:
    expect.that(resp.status_code < 500, requirement, operation, "a 2xx or 4xx answer, never 5xx",
                f"HTTP {resp.status_code}: {resp.text[:300]}")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _is_uuid(value)


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


# ---- contract conformance (ENV-014) ----------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def spec_schema(family: str) -> Any:
    """The schemathesis schema of one API family's spec file (cached per process)."""
    import schemathesis

    return schemathesis.openapi.from_path(str(SPECS_DIR / SPEC_FILES[family]))


def conforms(resp: httpx.Response, operation: str, requirement: str = "ENV-014") -> None:
    """The answer's status is documented for the operation and its body matches that status's schema."""
    from schemathesis.core.failures import FailureGroup

    family = FAMILY_OF.get(operation)
    if family is None or not (SPECS_DIR / SPEC_FILES[family]).is_file():
        return  # no spec for it (yet): nothing to conform to
    op = spec_schema(family).find_operation_by_id(operation)
    documented = op.responses.find_by_status_code(resp.status_code) is not None
    expect.that(documented, requirement, operation, f"a status documented in {SPEC_FILES[family]}",
                f"HTTP {resp.status_code}: {resp.text[:300]}")
    try:
        op.validate_response(resp)
    except (FailureGroup, AssertionError) as exc:  # one schemathesis Failure is itself an AssertionError
        found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
        details = "; ".join(_failure_text(f) for f in found)
        expect.fail(requirement, operation, f"a body matching the HTTP {resp.status_code} schema",
                    f"{details[:800]} in {resp.text[:300]}")


def _failure_text(failure: BaseException) -> str:
    title = getattr(failure, "title", "") or type(failure).__name__
    message = getattr(failure, "message", "") or str(failure)
    return f"{title}: {message}".replace("\n", " ")[:400]


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


def loan_of(client: Any, loan_number: Mapping[str, str], requirement: str) -> dict[str, Any]:
    """GetLoan of one of the client's loans: 200 and the `loan` object."""
    resp = client.get_loan(loan_number)
    expect.status(resp, 200, requirement, "GetLoan")
    conforms(resp, "GetLoan")
    body = json_of(resp, requirement, "GetLoan")
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


def extract_of(client: Any, id_code: str, requirement: str,
               purposes: Iterable[str] = ("NewConsumerCredit",)) -> dict[str, Any]:
    """GetCreditRegisterExtract: 200 and the creditRegisterExtract object."""
    resp = client.extract(id_code, purposes)
    expect.status(resp, 200, requirement, "GetCreditRegisterExtract")
    conforms(resp, "GetCreditRegisterExtract")
    body = json_of(resp, requirement, "GetCreditRegisterExtract")
    extract = body.get("creditRegisterExtract") if isinstance(body, dict) else None
    expect.that(isinstance(extract, dict), requirement, "GetCreditRegisterExtract", "a creditRegisterExtract",
                repr(body)[:300])
    return extract


# ---- one valid request per operation (security and envelope checks) --------------------------------------

SLOT_FOR_FAMILY = {"reporting": "lender", "extract": "lender_extract", "authorities": "authority",
                   "voluntary_ban": "cic"}


def valid_request(operation: str, client: Any, data: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A body (with the client's envelope) and headers the operation accepts from its proper identity."""
    from pcr_conformance import messages as m

    headers: dict[str, str] = {}
    if operation in SUBMIT_OPERATIONS:
        headers["BatchReference"] = data.batch_reference(operation)
    number = data.loan_number()
    person = data.person("income")
    ref = data.report_reference()
    members: dict[str, Any] = {
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
    }[operation]
    return client.envelope(**members), headers


ALL_OPERATIONS = tuple(op for ops in OPERATIONS.values() for op in ops)


def writes(operation: str) -> bool:
    """Operations that store something when accepted: never run against a read-only target."""
    return operation in SUBMIT_OPERATIONS or operation == "OrderData"


def read_only_marks(operation: str) -> list[Any]:
    """[read_only_safe] for an operation that only reads, [] otherwise (for pytest.param marks)."""
    import pytest

    return [] if writes(operation) else [pytest.mark.read_only_safe]
