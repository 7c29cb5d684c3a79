"""Fuzzing checks: one plain function per rule, in schemathesis' check shape `(ctx, response, case)`.

Each check raises AssertionError whose message starts with the requirement ID it enforces; CHECKS maps every
check to that ID. Documented 4xx answers (403 for a random owner, 400 for a random identity code, 404 for an
unknown reference, 409 for a reused batch reference) are never flagged: the contract allows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pcr_conformance import contract


def _label(case: Any, response: Any) -> str:
    operation = getattr(case.operation, "label", "?")
    return f"{operation} -> HTTP {response.status_code}"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - any decoding problem means "not JSON"
        return None


def _operation_id(case: Any) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def not_a_server_error(ctx: Any, response: Any, case: Any) -> None:
    """ENV-015: no input, however odd, makes the register answer 5xx."""
    if response.status_code >= 500:
        raise AssertionError(f"ENV-015 {_label(case, response)}: expected a 2xx or 4xx answer, actual "
                             f"HTTP {response.status_code}: {response.text[:300]}")


def error_object(ctx: Any, response: Any, case: Any) -> None:
    """ENV-005: every error answer carries statusMessage, a UUID correlationId and errorResponses items."""
    if response.status_code < 400:
        return
    problems = contract.error_object_problems(_json(response))
    if problems:
        raise AssertionError(f"ENV-005 {_label(case, response)}: expected the error object, actual "
                             f"{'; '.join(problems)} in {response.text[:300]}")


def no_internals(ctx: Any, response: Any, case: Any) -> None:
    """SEC-011: no stack trace, SQL or framework name leaks into an answer."""
    sent = json.dumps([getattr(case, part, None) for part in ("body", "query", "path_parameters", "headers")],
                      default=str, ensure_ascii=False)
    found = contract.leaked_internals(response.text or "", sent)
    if found:
        raise AssertionError(f"SEC-011 {_label(case, response)}: expected no internals, actual {found!r} in "
                             f"{response.text[:300]}")


def documented_status(ctx: Any, response: Any, case: Any) -> None:
    """ENV-014: the status code is one the operation documents (5xx is left to ENV-015)."""
    if response.status_code >= 500:
        return
    operation = _operation_id(case)
    if not contract.is_documented(operation, response.status_code):
        from pcr_conformance import specs

        raise AssertionError(f"ENV-014 {_label(case, response)}: expected a documented status "
                             f"{' '.join(specs.documented_statuses(operation))}, actual HTTP "
                             f"{response.status_code}: {response.text[:200]}")


def json_content_type(ctx: Any, response: Any, case: Any) -> None:
    """ENV-014: answers with a body are application/json."""
    content_type = response.headers.get("content-type") or [""]
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    problem = contract.content_type_problem(content_type, bool(response.content))
    if problem:
        raise AssertionError(f"ENV-014 {_label(case, response)}: expected Content-Type application/json, actual "
                             f"{content_type!r}")


def response_schema(ctx: Any, response: Any, case: Any) -> None:
    """ENV-014: the body matches the public reading of the schema documented for its status code; ENV-023 the
    parts only the reference reading requires."""
    if response.status_code >= 500:
        return
    problems, modelled = contract.body_findings(_operation_id(case), response.status_code, _json(response))
    if problems:
        raise AssertionError(f"ENV-014 {_label(case, response)}: expected a body matching the documented schema, "
                             f"actual {'; '.join(problems)[:600]}")
    # ENV-023: what only the reference reading requires (informative, never raised, under the public reading).
    contract.modelled_parts(modelled, _label(case, response), response.status_code, response.text[:300])


# (requirement ID, check) in the order they run; the first failure names the test's verdict.
CHECKS: list[tuple[str, Callable[[Any, Any, Any], None]]] = [
    ("ENV-015", not_a_server_error),
    ("SEC-011", no_internals),
    ("ENV-014", documented_status),
    ("ENV-014", json_content_type),
    ("ENV-005", error_object),
    ("ENV-014", response_schema),
]

# response_schema also judges ENV-023 (the modelled parts of the schema).
REQUIREMENTS = sorted({req for req, _ in CHECKS} | {"ENV-023"})


def run_all(response: Any, case: Any) -> None:
    """Every check on one answer; AssertionErrors of several checks are joined, the first ID leads."""
    failures = []
    for _requirement, check in CHECKS:
        try:
            check(None, response, case)
        except AssertionError as exc:
            failures.append(str(exc))
    if failures:
        raise AssertionError("\n".join(failures))
