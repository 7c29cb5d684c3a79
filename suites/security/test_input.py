"""Input handling on every operation: the envelope (ENV-002..004), unknown members (ENV-010), member-name
casing (ENV-011) and hostile strings in text members (ENV-015)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from pcr_conformance import catalogue, contract, expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s


def _operation_params(verifies: pytest.MarkDecorator) -> list[Any]:
    return [pytest.param(op, s.slot_for(catalogue.get(op).family), id=op,
                         marks=[verifies,
                                pytest.mark.capability(catalogue.get(op).capability),
                                *s.read_only_marks(op)])
            for op in catalogue.operation_ids()]


def _rejected(resp, status: int, code: str, requirement: str, operation: str, field: str | None = None) -> None:
    contract.not_server_error(resp, requirement, operation)
    expect.status(resp, status, requirement, operation)
    expect.error_code(resp, code, requirement, operation, field=field)
    contract.error_shape(resp, operation)
    contract.no_internals(resp, operation)


@pytest.mark.parametrize(("operation", "slot"), _operation_params(pytest.mark.verifies("ENV-002", "ENV-003", "ENV-004", "ENV-005")))
def test_envelope_on_every_operation(operation, slot, pcr_clients, pcr_data):
    """Missing or unknown targetEnvironment (D01), the wrong environment (D07) and a missing owner (D01) are 400."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    wrong_env = "Production" if client.target.environment == "Test" else "Test"
    cases = [
        ({k: v for k, v in body.items() if k != "targetEnvironment"}, 400, "D01", "ENV-002", "targetEnvironment"),
        ({**body, "targetEnvironment": "Sandbox"}, 400, "D01", "ENV-002", "targetEnvironment"),
        ({**body, "targetEnvironment": wrong_env}, 400, "D07", "ENV-003", None),
        ({k: v for k, v in body.items() if k != "owner"}, 400, "D01", "ENV-004", "owner"),
        ({**body, "owner": {"idCodeType": body["owner"]["idCodeType"]}}, 400, "D01", "ENV-004", "idCode"),
    ]
    for variant, status, code, requirement, field in cases:
        resp = client.call(operation, variant, headers=headers)
        _rejected(resp, status, code, requirement, f"{operation} ({requirement})", field)


@pytest.mark.parametrize(("operation", "slot"), _operation_params(pytest.mark.verifies("ENV-010", "ENV-005")))
def test_unknown_member_on_every_operation(operation, slot, pcr_clients, pcr_data):
    """An unknown member beside the envelope is rejected with 400 D01 naming the member."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    body["pcrUnknownMember"] = "x"
    resp = client.call(operation, body, headers=headers)
    _rejected(resp, 400, "D01", "ENV-010", operation, field="pcrUnknownMember")
    nested, headers = s.valid_request(operation, client, pcr_data)
    nested["owner"] = {**nested["owner"], "pcrNestedUnknown": 1}
    resp = client.call(operation, nested, headers=headers)
    _rejected(resp, 400, "D01", "ENV-010", f"{operation} (owner)", field="pcrNestedUnknown")


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


@pytest.mark.verifies("ENV-011")
@pytest.mark.capability("reporting")
@pytest.mark.capability("extract")
def test_pascal_case_member_names(pcr_clients, pcr_data):
    """Bodies with PascalCase member names, as a production client sends them, are accepted."""
    lender, reader = pcr_clients.get("lender"), pcr_clients.get("lender_extract")
    person = pcr_data.person("income")
    loan = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())
    reference = pcr_data.batch_reference("pascal")
    resp = lender.call("AddLoans", _pascal(lender.envelope(loans=[loan])), headers={"BatchReference": reference})
    expect.status(resp, 202, "ENV-011", "AddLoans in PascalCase")
    expect.batch_state(lender.wait_batch(reference), "FinishedSuccess", "ENV-011")
    resp = lender.call("GetLoan", _pascal(lender.envelope(loanNumber=loan["loanNumber"])))
    expect.status(resp, 200, "ENV-011", "GetLoan in PascalCase")
    body = contract.json_of(resp, "ENV-011", "GetLoan")
    expect.that("loan" in body and "loanNumber" in body["loan"], "ENV-011", "GetLoan",
                "the answer in canonical camelCase", list(body)[:5])
    resp = reader.call("GetCreditRegisterExtract", _pascal(reader.envelope(request={
        "idCodeType": "PersonalIdentityCode", "idCode": person, "creditRegisterExtractPurpose": ["NewConsumerCredit"]})))
    expect.status(resp, 200, "ENV-011", "GetCreditRegisterExtract in PascalCase")


HOSTILE = [
    "'; DROP TABLE loans; --",
    "\" OR \"1\"=\"1",
    "<script>alert('pcr')</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}} %s %n %x",
    "nul\u0000byte",
    "\u202eRTL override \U0001F3E6 Ääkkönen ß 漢字",
    "../../../../etc/passwd",
    "\\u0000 \\x00 \r\n header: injected",
]


@pytest.mark.verifies("ENV-015", "SEC-011")
@pytest.mark.capability("reporting")
def test_hostile_strings_in_loan_text_members(pcr_clients, pcr_data):
    """Hostile strings in text members are stored verbatim or rejected with 4xx, never 5xx."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    loans = []
    for text in HOSTILE:
        loans.append(m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(),
                                     lenderMarketingName=text))
    # One batch per string keeps a rejection of one from hiding the others.
    for loan in loans:
        sub = lender.submit("AddLoans", [loan])
        contract.not_server_error(sub.response, "ENV-015", f"AddLoans with lenderMarketingName {loan['lenderMarketingName']!r}")
        contract.no_internals(sub.response, "AddLoans")
        if sub.response.status_code != 202:
            expect.that(400 <= sub.response.status_code < 500, "ENV-015", "AddLoans", "202 or a 4xx",
                        sub.response.status_code)
            contract.error_shape(sub.response, "AddLoans")
            continue
        status = lender.wait_batch(sub.batch_reference)
        if status.get("batchStatus") != "FinishedSuccess":
            continue  # rejected per report: a clean refusal
        stored = s.loan_of(lender, loan["loanNumber"], "ENV-015")
        expect.that(stored.get("lenderMarketingName") == loan["lenderMarketingName"], "ENV-015", "GetLoan",
                    f"lenderMarketingName stored verbatim {loan['lenderMarketingName']!r}",
                    repr(stored.get("lenderMarketingName")))

    for text in HOSTILE:
        hostile_number = {"type": "Other", "number": text}
        resp = lender.call("GetLoan", lender.envelope(loanNumber=hostile_number))
        contract.not_server_error(resp, "ENV-015", f"GetLoan of loan number {text!r}")
        expect.that(resp.status_code in (400, 404), "ENV-015", "GetLoan", "400 or 404 for a hostile loan number",
                    f"HTTP {resp.status_code}")
        contract.no_internals(resp, "GetLoan")
        resp = lender.call("GetBatchStatus", lender.envelope(batchReference=text))
        contract.not_server_error(resp, "ENV-015", f"GetBatchStatus of {text!r}")
        expect.that(400 <= resp.status_code < 500, "ENV-015", "GetBatchStatus", "a 4xx for a hostile reference",
                    f"HTTP {resp.status_code}")
        contract.no_internals(resp, "GetBatchStatus")
        headers = {"BatchReference": re.sub(r"[^\x20-\x7e]", "?", text)}  # a header can carry only these
        body = lender.envelope(loans=[m.lump_sum_loan(pcr_data.loan_number(), person, text)])
        resp = lender.call("AddLoans", body, headers=headers)
        contract.not_server_error(resp, "ENV-015", f"AddLoans with reportReference and BatchReference {text!r}")
        contract.no_internals(resp, "AddLoans")


@pytest.mark.verifies("ENV-015", "SEC-011")
@pytest.mark.capability("extract")
@pytest.mark.capability("authorities")
@pytest.mark.capability("voluntary-ban")
def test_hostile_strings_in_queries(pcr_clients, pcr_data):
    """Hostile strings in identity codes and legal bases of the query APIs get a clean 4xx or 2xx, never 5xx."""
    reader, authority, cic = (pcr_clients.get(x) for x in ("lender_extract", "authority", "cic"))
    for text in HOSTILE:
        calls = [
            (reader, "GetCreditRegisterExtract", reader.envelope(request={
                "idCodeType": "PersonalIdentityCode", "idCode": text,
                "creditRegisterExtractPurpose": ["NewConsumerCredit"]})),
            (cic, "GetVoluntaryBan", cic.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": text})),
            (authority, "GetOrderStatus", authority.envelope(orderReference=text)),
            (authority, "OrderData", authority.envelope(order={
                "orderType": "PersonLoans", "legalBasis": text,
                "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": pcr_data.person("income")}]})),
        ]
        for client, operation, body in calls:
            resp = client.call(operation, copy.deepcopy(body))
            contract.not_server_error(resp, "ENV-015", f"{operation} with {text!r}")
            contract.no_internals(resp, operation)
            if resp.status_code >= 400:
                contract.error_shape(resp, operation)


@pytest.mark.verifies("ENV-015", "SEC-011")
@pytest.mark.capability("reporting")
@pytest.mark.read_only_safe
def test_hostile_strings_in_loan_queries(pcr_clients):
    """Hostile strings in the loan number of GetLoan and the batch reference of GetBatchStatus get a clean 4xx or
    2xx, never 5xx (the reporting API's queries, as the query APIs above)."""
    lender = pcr_clients.get("lender")
    for text in HOSTILE:
        calls = [("GetLoan", lender.envelope(loanNumber={"type": "Other", "number": text})),
                 ("GetBatchStatus", lender.envelope(batchReference=text))]
        for operation, body in calls:
            resp = lender.call(operation, body)
            contract.not_server_error(resp, "ENV-015", f"{operation} with {text!r}")
            contract.no_internals(resp, operation)
            if resp.status_code >= 400:
                contract.error_shape(resp, operation)
