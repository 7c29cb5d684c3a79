"""Error codes, their texts and the error object (interfaces.md §5)."""

from __future__ import annotations

import uuid
from typing import Any

STATUS_FAILED = "Failed to process the request."

DESCRIPTIONS: dict[str, str] = {
    "D01": "The request does not conform to the schema.",
    "D02": "The AmountPaid may not be more than the AmountIssued.",
    "D04": "The personal identity code is malformed or its check character is wrong.",
    "D05": "The Business ID is malformed or its check digit is wrong.",
    "D06": "The BatchReference header is missing or malformed.",
    "D07": "The targetEnvironment does not match the environment.",
    "D10": "The LoanNumber is already in the register. The data element must be unique.",
    "D11": "The loan was not found.",
    "D12": "The conditions for reporting a transferred loan are not met.",
    "D13": "The loan is cancelled: only an error correction on TerminateLoans may restore it.",
    "D20": "Only Kela may report the loan type GuaranteeReceivable.",
    "D21": "A GuaranteeReceivable loan must have, and only it may have, the purpose GuaranteeReceivableForStudentLoan.",
    "D22": "The type-specific object is missing or does not match the loanType.",
    "D23": "The borrowersCount is smaller than the number of listed borrowers.",
    "D30": "The original due date of a delayed instalment precedes the contract date.",
    "D31": "Fewer than 60 days have passed since the original due date.",
    "D32": "isDelay true needs delayedAmounts; isDelay false allows none.",
    "D33": "isForeclosed true needs a foreclosureDate.",
    "D34": "The end date precedes the contract date.",
    "D35": "The payment date precedes the contract date.",
    "D36": "The contract date is in the future.",
    "D37": "The deferment period ends before it starts.",
    "D40": "CountryCode is missing. This data element is required if Type of ID code is Foreign business ID.",
    "D41": "The owner's type of ID code contradicts the certificate.",
    "D42": "The owner differs from the organisation of the certificate.",
    "D43": "The certificate's role is not allowed for this API.",
    "D50": "The reportReference is repeated within the batch.",
    "D60": "The batch was not found.",
    "D61": "The batch reference was already used with other content.",
    "D62": "The batch has more than 10 000 reports.",
    "D70": "The order has no legal basis.",
    "D71": "The order was not found.",
    "D72": "The order is not finished.",
    "E20": "IdCode not found in the register. Please submit your report again in one week.",
    "E21": "The identifier is invalid",
    "P01": "No data permission for credit register extracts.",
    "H00": "The body is not valid JSON or is nested too deeply.",
    "H04": "No such operation.",
    "H05": "Only POST is allowed.",
    "H13": "The body is larger than 5 MiB.",
    "H15": "The content type must be application/json.",
    "H50": "Internal error.",
}


def item(code: str, field: str = "", description: str | None = None) -> dict[str, str]:
    """One {fieldName, errorCode, errorDescription} item (reportResults and error answers)."""
    return {"fieldName": field, "errorCode": code, "errorDescription": description or DESCRIPTIONS[code]}


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
