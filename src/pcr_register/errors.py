"""Error items and the error object (the codes are data: specs/errors.yaml).

The codes and their texts are data: specs/errors.yaml, loaded with the other spec files
(validation.Specs.error_codes). An item made here carries its errorDescription only when the code path gives
a text of its own; every other item gets the code's description from errors.yaml when it leaves the
register (Specs.describe, at the error answer, the stored batch result and the extract's notices).
"""

from __future__ import annotations

import uuid
from typing import Any

STATUS_FAILED = "Failed to process the request."

def item(code: str, field: str = "", description: str | None = None) -> dict[str, Any]:
    """One {fieldName, errorCode, errorDescription} item (reportResults, notices and error answers); without a
    description of its own, errorDescription is None until Specs.describe fills in the code's text."""
    return {"fieldName": field, "errorCode": code, "errorDescription": description or None}


class ApiError(Exception):
    """A 4xx/5xx answer with the error object."""

    def __init__(self, status: int, items: list[dict[str, str]]) -> None:
        super().__init__(f"{status} {[i['errorCode'] for i in items]}")
        self.status = status
        self.items = items


def fail(status: int, code: str, field: str = "", description: str | None = None) -> ApiError:
    return ApiError(status, [item(code, field, description)])


def error_body(items: list[dict[str, str]], with_correlation_id: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"statusMessage": STATUS_FAILED}
    if with_correlation_id:  # ENV-005 (fault missing_correlation_id drops it)
        body["correlationId"] = str(uuid.uuid4())
    body["errorResponses"] = items
    return body
