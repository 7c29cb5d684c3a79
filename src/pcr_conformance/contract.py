"""The response contract: is an answer one the specs allow? One module for the corpus, the scenarios, the
security tests and the fuzz checks.

Each check has two forms: a plain function returning what is wrong (a list of problem texts, empty when
the answer conforms; the fuzz checks raise from it in schemathesis' check shape), and an asserting form
over an httpx response that fails with the requirement ID (``expect``'s message format), for the suites.

- ENV-014: the status is documented for the operation, the body matches the *public reading* of that
  status's schema in ``specs/`` (readings.py), a body is ``application/json``.
- ENV-023: the body also matches what only the reference reading requires (modelled members, formats and
  literals): a failure under the reference reading, an informative finding under the public one
  (judging.informative), which never stops the test.
- ENV-005: an error answer carries ``statusMessage``, a UUID ``correlationId`` and ``errorResponses``
  items with ``fieldName``, ``errorCode`` and ``errorDescription``.
- SEC-011: no stack trace, SQL or framework internals (Python, Java, .NET) in any answer.
- ENV-015: never a 5xx.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from pcr_conformance import catalogue, expect, judging, readings, specs

#: Words that only appear in an answer when internals leak (SEC-011): Python tracebacks and paths, SQL,
#: the reference register's frameworks, Java and .NET stack traces.
INTERNALS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\.py\"|\bsqlite3?\b|OperationalError|IntegrityError"
    r"|\bSELECT\s+.+\s+FROM\b|\bINSERT\s+INTO\b|pydantic|starlette|uvicorn|fastapi|\bat [\w.$]+\([\w]+\.java:\d+\)"
    r"|NullReferenceException|System\.[A-Z]\w+Exception|/site-packages/|/usr/lib/python"
    # Python's JSON decoder, its exception or its message, passed on as the error description:
    r"|JSONDecodeError|Expecting (?:value|property name enclosed in double quotes|',' delimiter): line \d+ column \d+",
    re.IGNORECASE,
)

# One word every alternative of INTERNALS needs (in case-folded text): an answer holding none of them cannot
# match, so the regex, whose many alternatives cost ~0.4 µs per character, runs only on answers that might.
# (`ı`, dotless i, matches `i` under re.IGNORECASE but case-folds to itself: it is folded by hand.)
_INTERNALS_WORDS = ("traceback", '.py"', "sqlite", "operationalerror", "integrityerror", "select", "insert",
                    "pydantic", "starlette", "uvicorn", "fastapi", ".java:", "nullreferenceexception", "system.",
                    "/site-packages/", "/usr/lib/python", "jsondecodeerror", "expecting ")

ERROR_ITEM_MEMBERS = ("fieldName", "errorCode", "errorDescription")


# ---- plain checks: what is wrong, as texts ---------------------------------------------------------------


def leaked_internals(text: str, sent: str = "") -> str | None:
    """The first internal detail found in an answer's text (SEC-011), or None. A match the request itself carried
    (`sent`: e.g. an unknown member name the answer quotes back) is the client's own text, not a leak."""
    folded = (text or "").casefold().replace("ı", "i")
    if not any(word in folded for word in _INTERNALS_WORDS):
        return None
    sent_folded = sent.casefold()
    for m in INTERNALS.finditer(text or ""):
        if not sent_folded or m.group(0).casefold() not in sent_folded:
            return m.group(0)
    return None


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def error_item_problem(item: Any, *, non_empty: bool = False) -> str | None:
    """What an error item lacks of ``{fieldName, errorCode, errorDescription}`` (strings; non-empty ones
    when `non_empty`, as per-report results must be: BAT-006), or None."""
    ok = isinstance(item, Mapping) and all(isinstance(item.get(k), str) and (item.get(k) or not non_empty)
                                           for k in ERROR_ITEM_MEMBERS)
    return None if ok else f"error item {item!r:.100} lacks fieldName/errorCode/errorDescription"


def error_object_problems(body: Any) -> list[str]:
    """What an error answer's body lacks of the error object (ENV-005); empty when it is complete."""
    if not isinstance(body, Mapping):
        return ["the body is not a JSON object"]
    problems = []
    if not (isinstance(body.get("statusMessage"), str) and body["statusMessage"]):
        problems.append("statusMessage missing")
    if not is_uuid(body.get("correlationId")):
        problems.append(f"correlationId {body.get('correlationId')!r} is not a UUID")
    items = body.get("errorResponses")
    if not isinstance(items, list) or not items:
        problems.append("errorResponses missing or empty")
    else:
        problems.extend(p for p in (error_item_problem(item) for item in items) if p)
    return problems


def is_documented(operation: str, status: int) -> bool:
    """The status code is documented for the operation (exactly, or by an ``NXX`` range or ``default``)."""
    documented = specs.documented_statuses(operation)
    return str(status) in documented or f"{str(status)[0]}XX" in documented or "default" in documented


def body_problems(operation: str, status: int, body: Any) -> list[str]:
    """Where a body differs from the schema documented for the operation and status (ENV-014), under the
    session's reading: the public reading's findings, plus (reference reading) those only it makes."""
    public, reference_only = readings.body_findings(operation, status, body)
    return public if judging.public() else public + reference_only


def body_findings(operation: str, status: int, body: Any) -> tuple[list[str], list[str]]:
    """(ENV-014 problems: the public reading's, ENV-023 problems: what only the reference reading adds)."""
    return readings.body_findings(operation, status, body)


def modelled_parts(found: list[str], operation: str, status: int, excerpt: str) -> None:
    """ENV-023 for what only the reference reading finds: a failure under it, informative under the public one."""
    if not found:
        return
    expected, actual = f"the modelled parts of the HTTP {status} schema", f"{'; '.join(found)[:800]} in {excerpt}"
    if judging.public():
        judging.informative("ENV-023", operation, expected, actual)
    else:
        expect.fail("ENV-023", operation, expected, actual)


def content_type_problem(content_type: str | None, has_body: bool) -> str | None:
    """An answer with a body must be application/json (ENV-014)."""
    if has_body and not str(content_type or "").lower().startswith("application/json"):
        return f"Content-Type {content_type!r}, not application/json"
    return None


def knows(operation: str) -> bool:
    """The specs define the operation (an unknown path has no contract to conform to)."""
    return catalogue.family_of(operation) is not None


# ---- asserting forms for the suites ----------------------------------------------------------------------


def json_of(resp: httpx.Response, requirement: str, operation: str) -> Any:
    """The JSON body; a body that is not JSON fails `requirement`."""
    try:
        return resp.json()
    except ValueError:
        expect.fail(requirement, operation, "a JSON body", f"HTTP {resp.status_code}: {resp.text[:300]!r}")


def conforms(resp: httpx.Response, operation: str, requirement: str = "ENV-014") -> None:
    """The answer's status is documented for the operation and its body matches that status's schema."""
    if not knows(operation):
        return  # no spec for it: nothing to conform to
    family_file = specs.family_files()[catalogue.get(operation).family]
    expect.that(is_documented(operation, resp.status_code), requirement, operation,
                f"a status documented in {family_file}", f"HTTP {resp.status_code}: {resp.text[:300]}")
    problem = content_type_problem(resp.headers.get("content-type"), bool(resp.content))
    expect.that(problem is None, requirement, operation, "an application/json body", problem)
    body = expect.body_of(resp)
    found, reference_only = body_findings(operation, resp.status_code, body)
    expect.that(not found, requirement, operation, f"a body matching the HTTP {resp.status_code} schema",
                f"{'; '.join(found)[:800]} in {resp.text[:300]}")
    modelled_parts(reference_only, operation, resp.status_code, resp.text[:300])


def error_shape(resp: httpx.Response, operation: str, requirement: str = "ENV-005") -> dict[str, Any]:
    """The error answer carries statusMessage, a UUID correlationId and errorResponses items (ENV-005)."""
    body = expect.body_of(resp)
    problems = error_object_problems(body)
    expect.that(not problems, requirement, f"{operation} (HTTP {resp.status_code})", "the error object",
                f"{'; '.join(problems)} in {resp.headers.get('content-type')}: {resp.text[:300]!r}")
    return body


def no_internals(resp: httpx.Response, operation: str, requirement: str = "SEC-011") -> None:
    """The answer reveals no stack trace, SQL or framework internals (SEC-011); what the request itself carried
    (its URL and body, quoted back in an error description) is not taken for one."""
    found = leaked_internals(resp.text, sent=_sent_text(resp))
    expect.that(found is None, requirement, f"{operation} (HTTP {resp.status_code})", "no internals in the answer",
                f"{found!r} in {resp.text[:300]!r}")


def _sent_text(resp: httpx.Response) -> str:
    """The URL and body of the request an answer came for; "" for an answer with no request (a raw exchange's
    answer is built from the bytes read, and its request was raw bytes the check does not see)."""
    try:
        request = resp.request
    except RuntimeError:  # httpx: "The request instance has not been set on this response."
        return ""
    try:
        body = request.content.decode("utf-8", "replace")
    except httpx.RequestNotRead:  # a streamed body that was never read into the request
        body = ""
    return f"{request.url}\n{body}"


def not_server_error(resp: httpx.Response, requirement: str, operation: str) -> None:
    """A 2xx or 4xx answer, never 5xx (ENV-015 and the rules that name it)."""
    expect.that(resp.status_code < 500, requirement, operation, "a 2xx or 4xx answer, never 5xx",
                f"HTTP {resp.status_code}: {resp.text[:300]}")
