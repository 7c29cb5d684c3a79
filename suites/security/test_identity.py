"""Identity and authorization: the certificate's role decides the API (SEC-004, AUT-001, BAN-001) and the
request's owner must be the certificate's organisation (SEC-005, SEC-006)."""

from __future__ import annotations

import pytest

from pcr_conformance import catalogue, contract, expect, identifiers
from pcr_conformance import suite as s

# (operation, slot of a certificate whose role is not allowed on the operation's API, requirement IDs)
WRONG_ROLES = [
    ("AddLoans", "lender_extract", ("SEC-004",)),
    ("GetLoan", "lender_extract", ("SEC-004",)),
    ("GetBatchStatus", "authority", ("SEC-004",)),
    ("Repayments", "cic", ("SEC-004",)),
    ("GetCreditRegisterExtract", "lender", ("SEC-004",)),
    ("GetCreditRegisterExtract", "cic", ("SEC-004",)),
    ("GetExtractLog", "authority", ("SEC-004",)),
    ("OrderData", "lender", ("AUT-001", "SEC-004")),
    ("OrderData", "lender_extract", ("AUT-001", "SEC-004")),
    ("GetOrderStatus", "cic", ("AUT-001", "SEC-004")),
    ("GetDistribution", "lender_extract", ("AUT-001", "SEC-004")),
    ("GetVoluntaryBan", "lender", ("BAN-001", "SEC-004")),
    ("GetVoluntaryBan", "lender_extract", ("BAN-001", "SEC-004")),
    ("GetVoluntaryBan", "authority", ("BAN-001", "SEC-004")),
    ("GetVoluntaryBanChanges", "lender_extract", ("BAN-001", "SEC-004")),
]


def _capability(operation: str) -> str:
    return catalogue.get(operation).capability


@pytest.mark.parametrize(
    ("operation", "slot"),
    [pytest.param(op, slot, id=f"{op}-as-{slot}",
                  marks=[pytest.mark.verifies(*reqs), pytest.mark.capability(_capability(op)),
                         *s.read_only_marks(op)])
     for op, slot, reqs in WRONG_ROLES],
)
def test_certificate_role_not_allowed(operation, slot, pcr_clients, pcr_data):
    """A certificate whose role is not allowed for the API is refused with 403 D43, even for a valid request."""
    client = pcr_clients.get(slot)
    requirement = {"authorities": "AUT-001", "voluntary-ban": "BAN-001"}.get(catalogue.family_of(operation), "SEC-004")
    body, headers = s.valid_request(operation, client, pcr_data)
    resp = client.call(operation, body, headers=headers)
    expect.status(resp, 403, requirement, f"{operation} as {slot}")
    expect.error_code(resp, "D43", requirement, f"{operation} as {slot}")
    contract.error_shape(resp, operation)


OWNER_CHECKS = [("AddLoans", "lender"), ("GetLoan", "lender"), ("GetCreditRegisterExtract", "lender_extract"),
                ("OrderData", "authority"), ("GetVoluntaryBan", "cic")]


@pytest.mark.parametrize(
    ("operation", "slot"),
    [pytest.param(op, slot, id=op, marks=[pytest.mark.verifies("SEC-005"), pytest.mark.capability(_capability(op)),
                                          *s.read_only_marks(op)])
     for op, slot in OWNER_CHECKS],
)
def test_owner_type_contradicting_certificate(operation, slot, pcr_clients, pcr_data):
    """An owner whose identifier type contradicts the certificate's is refused with 403 D41."""
    client = pcr_clients.get(slot)
    body, headers = s.valid_request(operation, client, pcr_data)
    own = client.owner
    if own["idCodeType"] == "BusinessId":
        # The same organisation named as a foreign business (with a country code, so D40 does not apply).
        body["owner"] = {"idCodeType": "ForeignBusinessId", "idCode": own["idCode"], "countryCode": "SE"}
    else:
        body["owner"] = {"idCodeType": "BusinessId", "idCode": identifiers.business_id("1234566")}
    resp = client.call(operation, body, headers=headers)
    expect.status(resp, 403, "SEC-005", operation)
    expect.error_code(resp, "D41", "SEC-005", operation)

    body["owner"] = {"idCodeType": "PersonalIdentityCode", "idCode": pcr_data.person("income")}
    resp = client.call(operation, body, headers=headers)
    expect.status(resp, 403, "SEC-005", f"{operation} (owner a person)")
    expect.error_code(resp, "D41", "SEC-005", f"{operation} (owner a person)")


OTHER_OWNER = {"lender": "second_lender", "lender_extract": "second_lender_extract",
               "authority": "consumer_authority", "cic": "lender"}


@pytest.mark.parametrize(
    ("operation", "slot"),
    [pytest.param(op, slot, id=op, marks=[pytest.mark.verifies("SEC-006"), pytest.mark.capability(_capability(op)),
                                          *s.read_only_marks(op)])
     for op, slot in OWNER_CHECKS],
)
def test_owner_of_another_organisation(operation, slot, pcr_clients, pcr_data):
    """An owner other than the certificate's organisation is refused with 403 D42."""
    client = pcr_clients.get(slot)
    other = pcr_clients.get(OTHER_OWNER[slot]).owner
    body, headers = s.valid_request(operation, client, pcr_data)
    body["owner"] = other
    resp = client.call(operation, body, headers=headers)
    expect.status(resp, 403, "SEC-006", f"{operation} with owner {other['idCode']}")
    expect.error_code(resp, "D42", "SEC-006", f"{operation} with owner {other['idCode']}")
    contract.no_internals(resp, operation)


@pytest.mark.verifies("IDN-004")
@pytest.mark.capability("reporting")
@pytest.mark.read_only_safe
def test_foreign_owner_needs_country_code(pcr_clients, pcr_data):
    """A ForeignBusinessId owner without countryCode is refused with 400 D40; with it the request passes."""
    client = pcr_clients.get("foreign_lender")
    number = pcr_data.loan_number()
    body = client.envelope(loanNumber=number)
    expect.that("countryCode" in body["owner"], "IDN-004", "GetLoan", "the foreign lender's owner with a countryCode",
                body["owner"])
    resp = client.call("GetLoan", body)
    expect.status(resp, 404, "IDN-004", "GetLoan (foreign owner with countryCode)")
    del body["owner"]["countryCode"]
    resp = client.call("GetLoan", body)
    expect.status(resp, 400, "IDN-004", "GetLoan (foreign owner without countryCode)")
    expect.error_code(resp, "D40", "IDN-004", "GetLoan (foreign owner without countryCode)")
