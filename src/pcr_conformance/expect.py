"""Named expectations (docs/interfaces.md §10).

Every failure is a `RequirementFailure` (an AssertionError) carrying the requirement it names; its message
starts with the requirement ID, then the operation, expected and actual: "RPT-005 AddLoans: expected ...,
actual ...". summary.json fails exactly that requirement (docs/concepts.md#verdicts-and-exit-codes); the
Allure categories read the ID from the start of the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from pcr_conformance import judging
from pcr_conformance.errors import RequirementFailure

__all__ = ["RequirementFailure", "batch_state", "body_of", "carries_code", "error_code", "error_codes", "fail",
           "is_accepted", "is_rejected", "report_accepted", "report_rejected", "report_result", "status", "that"]

_EXCERPT = 600


def fail(requirement: str, operation: str, expected: Any, actual: Any) -> None:
    """The implementation broke `requirement`: raises RequirementFailure."""
    raise RequirementFailure(requirement, operation, expected, actual)


def that(condition: Any, requirement: str, operation: str, expected: Any, actual: Any) -> None:
    """The general form: fails with the requirement ID when `condition` is falsy."""
    if not condition:
        fail(requirement, operation, expected, actual)


def body_of(resp: httpx.Response) -> Any:
    """The JSON body, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


def _excerpt(resp: httpx.Response) -> str:
    text = resp.text
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def status(resp: httpx.Response, expected: int | Iterable[int], requirement: str, operation: str) -> None:
    """The HTTP status is `expected` (or one of them)."""
    allowed = (expected,) if isinstance(expected, int) else tuple(expected)
    if resp.status_code not in allowed:
        want = allowed[0] if len(allowed) == 1 else " or ".join(map(str, allowed))
        fail(requirement, operation, f"HTTP {want}", f"HTTP {resp.status_code}: {_excerpt(resp)}")


def error_codes(resp: httpx.Response) -> list[str]:
    body = body_of(resp)
    items = body.get("errorResponses") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [str(i.get("errorCode")) for i in items if isinstance(i, dict)]


def carries_code(codes: Iterable[str], model_code: str, requirement: str, operation: str) -> bool:
    """Whether error codes `codes` show the rule the model gives `model_code`, by the session's judging: the
    exact code when it is public, stated by the implementation profile or (reference reading) the model's; else
    (public reading, profile silent) any code, the one seen recorded for `profile --learn`. A wrong exact code
    the model alone gave fails ENV-024, not the public `requirement` (judging.code_requirement)."""
    codes = [str(c) for c in codes]
    want, basis = judging.expected_code(model_code)
    if len(set(codes)) == 1:  # several codes would not say which one is this rule's
        judging.observe(f"error_codes.{model_code}", codes[0], operation)
    if want is None:
        return bool(codes)
    if codes and want not in codes:
        fail(judging.code_requirement(requirement, basis), operation,
             f"error code {want} ({basis}: the code for the rule of {model_code})", f"codes {codes}")
    return want in codes


def error_code(resp: httpx.Response, code: str, requirement: str, operation: str, *,
               field: str | None = None) -> None:
    """The error answer's errorResponses carry the code for the rule the model gives `code` (carries_code:
    exactly, or under the public reading without a stated value any code) and, when given, an item naming
    `field`."""
    codes = error_codes(resp)
    if not carries_code(codes, code, requirement, operation):
        want, _basis = judging.expected_code(code)
        fail(requirement, operation, f"error code {want}" if want else f"an error (the rule of {code})",
             f"HTTP {resp.status_code} with codes {codes or 'none'}: {_excerpt(resp)}")
    if field is not None:
        body = body_of(resp)
        want, _basis = judging.expected_code(code)
        fields = [str(i.get("fieldName", "")) for i in body.get("errorResponses", [])
                  if isinstance(i, dict) and (want is None or i.get("errorCode") == want)]
        if not any(field.lower() in f.lower() for f in fields):
            fail(requirement, operation, f"error {want or ''} naming field {field!r}".replace("  ", " "),
                 f"fieldName(s) {fields}")


def batch_state(status: Mapping[str, Any], expected: str, requirement: str) -> None:
    """The batch status (GetBatchStatus body) is in `expected` final state."""
    actual = status.get("batchStatus")
    if actual != expected:
        fail(requirement, "GetBatchStatus", f"batchStatus {expected} for batch {status.get('batchReference')}",
             f"{actual} with results {_results_text(status)}")


def is_rejected(result: Mapping[str, Any]) -> bool:
    """A report's result shows it rejected. The public part is its errors (a rejected report carries at least
    one, BAT-006); the `status` literal is our model: under the reference reading it decides, and a result
    without it fails ENV-023."""
    if judging.public():
        return bool(result.get("errorResponses"))
    _status_literal(result)
    return result.get("status") == "Rejected"


def is_accepted(result: Mapping[str, Any]) -> bool:
    """A report's result shows it accepted: no errors (public reading), status Accepted (reference reading)."""
    if judging.public():
        return not result.get("errorResponses")
    _status_literal(result)
    return result.get("status") == "Accepted"


def _status_literal(result: Mapping[str, Any]) -> None:
    if "status" not in result:
        fail("ENV-023", "GetBatchStatus", "each report result with its status (Accepted or Rejected, modelled)",
             f"{dict(result)!r:.300}")


def report_result(status: Mapping[str, Any], report_reference: str) -> Mapping[str, Any] | None:
    for r in status.get("reportResults") or []:
        if isinstance(r, dict) and r.get("reportReference") == report_reference:
            return r
    return None


def report_rejected(status: Mapping[str, Any], report_reference: str, code: str, requirement: str) -> None:
    """Report `report_reference` of the batch was Rejected with the code for the rule of `code` (carries_code)."""
    r = report_result(status, report_reference)
    if r is None:
        fail(requirement, "GetBatchStatus", f"a result for report {report_reference}",
             f"results {_results_text(status)}")
    assert r is not None
    codes = [str(e.get("errorCode")) for e in r.get("errorResponses") or [] if isinstance(e, dict)]
    where = f"GetBatchStatus (report {report_reference})"
    if not is_rejected(r) or not carries_code(codes, code, requirement, where):
        want, _basis = judging.expected_code(code)
        fail(requirement, "GetBatchStatus", f"report {report_reference} Rejected with {want or 'an error'}",
             f"{r.get('status')} with codes {codes or 'none'}: {r.get('errorResponses')}")


def report_accepted(status: Mapping[str, Any], report_reference: str, requirement: str) -> None:
    """Report `report_reference` of the batch was Accepted."""
    r = report_result(status, report_reference)
    if r is None or not is_accepted(r):
        fail(requirement, "GetBatchStatus", f"report {report_reference} Accepted",
             "no result for it" if r is None else f"{r.get('status')}: {r.get('errorResponses')}")


def _results_text(status: Mapping[str, Any]) -> str:
    parts = []
    for r in status.get("reportResults") or []:
        if isinstance(r, dict):
            codes = ",".join(str(e.get("errorCode")) for e in r.get("errorResponses") or [] if isinstance(e, dict))
            parts.append(f"{r.get('reportReference')}={r.get('status')}{'(' + codes + ')' if codes else ''}")
    text = "; ".join(parts) or "none"
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."
