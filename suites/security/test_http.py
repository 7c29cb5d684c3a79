"""HTTP-level robustness: methods, paths, content types, bodies that are not JSON, too large or too deep.

Every error answer must carry the error object (ENV-005) and reveal no internals (SEC-011); none may be 5xx.
"""

from __future__ import annotations

import json

import pytest

from pcr_conformance import catalogue, contract, expect
from pcr_conformance import suite as s

# One operation per API family, with the slot allowed to call it.
REPRESENTATIVES = [("AddLoans", "lender"), ("GetLoan", "lender"), ("GetCreditRegisterExtract", "lender_extract"),
                   ("OrderData", "authority"), ("GetVoluntaryBan", "cic")]


def _params(pairs, verifies: pytest.MarkDecorator):
    return [pytest.param(op, slot, id=op, marks=[verifies, pytest.mark.capability(catalogue.get(op).capability),
                                                 *s.read_only_marks(op)])
            for op, slot in pairs]


def _error(resp, status: int, code: str, requirement: str, operation: str) -> None:
    contract.not_server_error(resp, requirement, operation)
    expect.status(resp, status, requirement, operation)
    expect.error_code(resp, code, requirement, operation)
    contract.error_shape(resp, operation)
    contract.no_internals(resp, operation)


@pytest.mark.parametrize(("operation", "slot"),
                         _params([(op, s.slot_for(catalogue.get(op).family)) for op in catalogue.operation_ids()],
                                 pytest.mark.verifies("ENV-001", "ENV-005", "SEC-011", "ENV-024")))
def test_methods_other_than_post(operation, slot, pcr_clients, pcr_data):
    """GET, PUT, PATCH and DELETE on an operation are answered 405 H05 with the error object (H05: the
    implementation profile's code for the rule, ENV-024)."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = client.call(operation, body if method != "GET" else None, headers=headers, method=method,
                           content_type="application/json" if method != "GET" else None)
        _error(resp, 405, "H05", "ENV-001", f"{method} {operation}")


@pytest.mark.parametrize(("operation", "slot"), _params(REPRESENTATIVES, pytest.mark.verifies("ENV-006", "ENV-005", "SEC-011")))
def test_content_types_other_than_json(operation, slot, pcr_clients, pcr_data):
    """A JSON body declared as another content type is answered 415 H15; application/json with a charset passes."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    content = json.dumps(body)
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded", "text/json", None):
        resp = client.call(operation, content=content, headers=headers, content_type=content_type)
        _error(resp, 415, "H15", "ENV-006", f"{operation} as {content_type or 'no content type'}")
    body, headers = s.valid_request(operation, client, pcr_data)
    resp = client.call(operation, content=json.dumps(body), headers=headers,
                       content_type="application/json; charset=utf-8")
    expect.that(resp.status_code != 415, "ENV-006", operation, "application/json; charset=utf-8 accepted as JSON",
                f"HTTP {resp.status_code}: {resp.text[:300]}")


NOT_JSON = ["{not json", '{"targetEnvironment": "Test",', "", "\u00ff\u00fe garbage", "[1, 2,]", "{'single': 'quotes'}"]


@pytest.mark.parametrize(("operation", "slot"), _params(REPRESENTATIVES, pytest.mark.verifies("ENV-007", "ENV-005", "SEC-011")))
def test_bodies_that_are_not_json(operation, slot, pcr_clients, pcr_data):
    """A body that is not JSON is answered 400 H00 with the error object, never 5xx."""
    client = pcr_clients.get(slot)
    _, headers = s.valid_request(operation, client, pcr_data)
    for content in NOT_JSON:
        resp = client.call(operation, content=content.encode("latin-1", "replace") if content.startswith("\u00ff")
                           else content, headers=headers)
        _error(resp, 400, "H00", "ENV-007", f"{operation} with body {content[:20]!r}")
    resp = client.call(operation, content=b"\xff\xfe\x00{", headers=headers)
    _error(resp, 400, "H00", "ENV-007", f"{operation} with bytes that are not UTF-8")


@pytest.mark.parametrize(("operation", "slot"), _params(REPRESENTATIVES[:1] + REPRESENTATIVES[2:],
                                                        pytest.mark.verifies("ENV-008", "ENV-005", "SEC-011")))
def test_body_larger_than_the_limit(operation, slot, pcr_clients, pcr_data):
    """A body larger than 5 MiB is answered 413 H13 with the error object."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    body["padding"] = "x" * (5 * 1024 * 1024 + 1024)
    resp = client.call(operation, content=json.dumps(body), headers=headers)
    _error(resp, 413, "H13", "ENV-008", f"{operation} with a {len(body['padding']) // 1024} KiB body")


@pytest.mark.parametrize(("operation", "slot"), _params(REPRESENTATIVES, pytest.mark.verifies("ENV-009", "ENV-005", "SEC-011")))
def test_deeply_nested_json(operation, slot, pcr_clients, pcr_data):
    """JSON nested deeper than the limit is answered 400, never 5xx, however deep it goes."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    for depth in (40, 1000, 100_000):
        nested = "[" * depth + "]" * depth
        content = json.dumps(body)[:-1] + f', "deep": {nested}}}'
        resp = client.call(operation, content=content, headers=headers)
        contract.not_server_error(resp, "ENV-009", f"{operation} nested {depth} deep")
        expect.status(resp, 400, "ENV-009", f"{operation} nested {depth} deep")
        contract.error_shape(resp, operation)
        contract.no_internals(resp, operation)
    objects = '{"a": ' * 5000 + "1" + "}" * 5000
    resp = client.call(operation, content=objects, headers=headers)
    contract.not_server_error(resp, "ENV-009", f"{operation} with objects nested 5000 deep")
    expect.status(resp, 400, "ENV-009", f"{operation} with objects nested 5000 deep")


@pytest.mark.verifies("ENV-016", "ENV-005", "SEC-011")
@pytest.mark.capability("reporting")
@pytest.mark.read_only_safe
def test_unknown_operation_path(pcr_clients, pcr_data):
    """An unknown operation path is answered 404 H04 with the error object."""
    client = pcr_clients.get("lender")
    body, _ = s.valid_request("GetLoan", client, pcr_data)
    for path in ("NoSuchOperation", "GetLoans", "AddLoans/extra", "..%2FAddLoans"):
        resp = client.call(path, body)
        _error(resp, 404, "H04", "ENV-016", f"POST /{path}")
