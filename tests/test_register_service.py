"""The reference register as a real process over mutual TLS: security, reporting, extract, authorities, ban."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from register_fixtures import (
    Api,
    Running,
    codes,
    database,
    lump_sum_loan,
    no_cert_client,
    owner_of,
    people,
    start_register,
    termination,
    unique,
    wait_batch,
    wrong_check,
)

from pcr_register.storage import open_storage

WHO = people()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def reg(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Running]:
    """The register on each backend: every test of this module runs against both (same behaviour)."""
    running = start_register(data_dir, db=database(request.param, request, data_dir),
                             extra_env={"PCR_REGISTER_ORDER_DELAY_S": "0.3"})
    yield running
    running.stop()


@pytest.fixture()
def a(reg: Running) -> Iterator[Api]:
    api = Api(reg, "lender-a")
    yield api
    api.close()


@pytest.fixture()
def b(reg: Running) -> Iterator[Api]:
    api = Api(reg, "lender-b")
    yield api
    api.close()


def new_loan(borrower: str | None = None, **overrides: object) -> dict:
    return lump_sum_loan(unique("PCR"), borrower or WHO.active[0], unique("R"), **overrides)


# -- TLS and identity ----------------------------------------------------------------------------------

def test_connection_without_client_certificate_is_refused(reg: Running) -> None:
    with no_cert_client(reg) as client, pytest.raises(httpx.TransportError):
        client.post("/GetLoan", json={})


@pytest.mark.parametrize("cert", ["foreign-ca/lender-a-reporting", "clients/expired-lender-reporting"])
def test_untrusted_or_expired_certificate_is_refused(reg: Running, cert: str) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(reg.data / "ca.pem"))
    ctx.load_cert_chain(reg.data / f"{cert}.pem", reg.data / f"{cert}.key")
    with httpx.Client(base_url=reg.url, verify=ctx, timeout=10) as client, pytest.raises(httpx.TransportError):
        client.post("/GetLoan", json={})


def test_tls_1_1_is_refused(reg: Running) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(reg.data / "ca.pem"))
    ctx.load_cert_chain(reg.data / "clients/lender-a-reporting.pem", reg.data / "clients/lender-a-reporting.key")
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot speak TLS 1.1")
    with httpx.Client(base_url=reg.url, verify=ctx, timeout=10) as client, pytest.raises(httpx.TransportError):
        client.post("/GetLoan", json={})


def test_role_owner_type_and_owner_id_are_checked(a: Api) -> None:
    number = {"type": "Other", "number": unique("PCR")}
    wrong_role = a.post("GetLoan", a.envelope(loanNumber=number), role="using-data")
    assert (wrong_role.status_code, codes(wrong_role)) == (403, ["D43"])
    wrong_type = a.post("GetLoan", {"targetEnvironment": "Test", "owner": {
        "idCodeType": "ForeignBusinessId", "idCode": a.owner["idCode"], "countryCode": "FI"}, "loanNumber": number})
    assert (wrong_type.status_code, codes(wrong_type)) == (403, ["D41"])
    other = a.post("GetLoan", {"targetEnvironment": "Test", "owner": owner_of("lender-b"), "loanNumber": number})
    assert (other.status_code, codes(other)) == (403, ["D42"])
    bad_digit = a.post("GetLoan", {"targetEnvironment": "Test", "owner": {
        "idCodeType": "BusinessId", "idCode": a.owner["idCode"][:-1] + str((int(a.owner["idCode"][-1]) + 1) % 10)},
        "loanNumber": number})
    assert (bad_digit.status_code, codes(bad_digit)) == (400, ["D05"])


def test_foreign_owner_needs_country_code(reg: Running) -> None:
    api = Api(reg, "lender-foreign")
    number = {"type": "Other", "number": unique("PCR")}
    ok = api.get_loan(number)
    assert (ok.status_code, codes(ok)) == (404, ["D11"])
    owner = {k: v for k, v in api.owner.items() if k != "countryCode"}
    resp = api.post("GetLoan", {"targetEnvironment": "Test", "owner": owner, "loanNumber": number})
    assert (resp.status_code, codes(resp)) == (400, ["D40"])
    api.close()


# -- envelope ------------------------------------------------------------------------------------------

def test_http_level_errors_use_the_error_object(a: Api) -> None:
    client = a.client("reporting")
    cases = [
        (client.post("/NoSuchOperation", json={}), 404, "H04"),
        (client.get("/GetLoan"), 405, "H05"),
        (client.post("/GetLoan", content=b"{}", headers={"Content-Type": "text/plain"}), 415, "H15"),
        (client.post("/GetLoan", content=b"{not json", headers={"Content-Type": "application/json"}), 400, "H00"),
        (client.post("/GetLoan", content=b"[" * 40 + b"]" * 40, headers={"Content-Type": "application/json"}), 400, "H00"),
        # ENV-022: numbers out of range name their member (D01); ENV-018: bytes that are not UTF-8 are H01;
        # ENV-007: NaN is not JSON (RFC 8259), so the body is not JSON (H00)
        (client.post("/GetLoan", content=b'{"x": NaN}', headers={"Content-Type": "application/json"}), 400, "H00"),
        (client.post("/GetLoan", content=b'{"x": 1e400}', headers={"Content-Type": "application/json"}), 400, "D01"),
        (client.post("/GetLoan", content=b'{"x": "\xff"}', headers={"Content-Type": "application/json"}), 400, "H01"),
        (client.post("/GetLoan", content=b"[" * 100000 + b"]" * 100000, headers={"Content-Type": "application/json"}),
         400, "H00"),
        (client.post("/GetLoan", content=b" " * (5 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"}),
         413, "H13"),
        (client.post("/GetLoan", content=iter([b" " * (1024 * 1024)] * 6),  # chunked: no Content-Length
                     headers={"Content-Type": "application/json"}), 413, "H13"),
    ]
    for resp, status, code in cases:
        body = resp.json()
        assert (resp.status_code, codes(resp)) == (status, [code]), resp.text
        assert body["statusMessage"] == "Failed to process the request."
        assert len(body["correlationId"]) == 36


def test_schema_errors_name_the_member(a: Api) -> None:
    number = {"type": "Other", "number": unique("PCR")}
    resp = a.post("GetLoan", a.envelope(loanNumber=number, surprise=1))
    assert resp.status_code == 400
    assert resp.json()["errorResponses"] == [
        {"fieldName": "/surprise", "errorCode": "D01", "errorDescription": "Unknown member 'surprise'."}]
    resp = a.post("GetLoan", {"targetEnvironment": "test", "owner": a.owner, "loanNumber": number})
    assert (resp.status_code, codes(resp)) == (400, ["D01"])  # ENV-012: enum values are case-sensitive
    resp = a.post("GetLoan", {"targetEnvironment": "Production", "owner": a.owner, "loanNumber": number})
    assert (resp.status_code, codes(resp)) == (400, ["D07"])


def test_impossible_birth_date_of_a_borrower_is_a_synchronous_d04(a: Api) -> None:
    impossible = "310298-9" + "99"  # 31 February: the pattern passes, the date does not
    impossible = impossible[:-1] + "0123456789ABCDEFHJKLMNPRSTUVWXY"[int("310298999") % 31]
    resp = a.post("AddLoans", a.envelope(loans=[new_loan(borrower=impossible)]), headers={"BatchReference": unique("B")})
    assert (resp.status_code, resp.json()["errorResponses"][0]["fieldName"], codes(resp)) == (
        400, "/loans/0/borrowers/0/idCode", ["D04"])


def test_pascal_case_members_are_accepted(a: Api) -> None:
    loan = new_loan()
    pascal = {k[0].upper() + k[1:]: v for k, v in loan.items()}
    pascal["LoanNumber"] = {"Type": loan["loanNumber"]["type"], "NUMBER": loan["loanNumber"]["number"]}
    reference = unique("B")
    resp = a.client("reporting").post("/AddLoans", json={"TargetEnvironment": "Test", "Owner": a.owner,
                                                         "Loans": [pascal]}, headers={"BatchReference": reference})
    assert resp.status_code == 202, resp.text
    assert wait_batch(a.client("reporting"), a.owner, reference)["batchStatus"] == "FinishedSuccess"
    assert a.get_loan(loan["loanNumber"]).status_code == 200


def test_batch_reference_header_idempotency_and_limits(a: Api) -> None:
    body = a.envelope(loans=[new_loan()])
    missing = a.post("AddLoans", body)
    assert (missing.status_code, codes(missing)) == (400, ["D06"])
    bad = a.post("AddLoans", body, headers={"BatchReference": "no spaces allowed"})
    assert (bad.status_code, codes(bad)) == (400, ["D06"])
    reference = unique("B")
    first = a.post("AddLoans", body, headers={"BatchReference": reference})
    again = a.post("AddLoans", body, headers={"BatchReference": reference})
    assert first.status_code == again.status_code == 202
    assert first.json()["receivedTimeUtc"] == again.json()["receivedTimeUtc"]
    status = wait_batch(a.client("reporting"), a.owner, reference)
    assert (status["batchStatus"], status["reportCount"]) == ("FinishedSuccess", 1)  # processed once (BAT-008)
    other = a.post("AddLoans", a.envelope(loans=[new_loan()]), headers={"BatchReference": reference})
    assert (other.status_code, codes(other)) == (409, ["D61"])
    too_many = a.post("AddLoans", a.envelope(loans=[{}] * 10_001), headers={"BatchReference": unique("B")})
    assert (too_many.status_code, codes(too_many)) == (413, ["D62"])
    empty = a.post("AddLoans", a.envelope(loans=[]), headers={"BatchReference": unique("B")})
    assert (empty.status_code, codes(empty)) == (400, ["D01"])


# -- reporting -----------------------------------------------------------------------------------------

def test_add_loans_then_batch_status_then_get_loan(a: Api) -> None:
    loan = new_loan(guarantors=[{"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[1]}])
    status = a.add(loan)
    assert status["batchStatus"] == "FinishedSuccess"
    assert (status["reportCount"], status["acceptedCount"], status["rejectedCount"]) == (1, 1, 0)
    assert status["reportResults"] == [{"reportReference": loan["reportReference"], "status": "Accepted",
                                        "errorResponses": []}]
    resp = a.get_loan(loan["loanNumber"])
    assert resp.status_code == 200
    stored = resp.json()["loan"]
    for key, value in loan.items():
        assert stored[key] == value, key
    assert (stored["status"], stored["owner"], stored["repayments"], stored["isForeclosed"]) == (
        "Active", a.owner, [], False)


def test_partial_acceptance_and_per_report_rules(a: Api) -> None:
    existing = new_loan()
    a.add(existing)
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    ok = new_loan()
    reports = [
        ok,
        lump_sum_loan(existing["loanNumber"]["number"], WHO.active[0], unique("R")),  # D10
        new_loan(lumpSumLoan={**ok["lumpSumLoan"], "amountPaid": 20000.0}),  # D02
        new_loan(borrower=wrong_check(WHO.active[2])),  # D04
        new_loan(borrower=WHO.unknown),  # E20
        new_loan(borrower=WHO.not_in_use),  # E21
        new_loan(loanType="GuaranteeReceivable"),  # D20 (+ D21)
        new_loan(loanType="RunningAccountLoan"),  # D22
        new_loan(borrowersCount=1, borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": c}
                                              for c in WHO.active[3:5]]),  # D23
        new_loan(contractDate=future),  # D36
        new_loan(defermentPeriods=[{"startDate": "2025-02-01", "endDate": "2025-01-01"}]),  # D37
    ]
    status = a.add(*reports)
    assert status["batchStatus"] == "FinishedPartialSuccess"
    assert (status["reportCount"], status["acceptedCount"], status["rejectedCount"]) == (11, 1, 10)
    got = [[e["errorCode"] for e in r["errorResponses"]] for r in status["reportResults"]]
    assert got == [[], ["D10"], ["D02"], ["D04"], ["E20"], ["E21"], ["D20", "D21"], ["D22"], ["D23"], ["D36"],
                   ["D37"]]
    assert all(e["fieldName"].startswith("/loans/") for r in status["reportResults"] for e in r["errorResponses"])
    assert a.get_loan(reports[2]["loanNumber"]).status_code == 404  # rejected reports store nothing (BAT-003)


def test_repeated_report_reference_and_duplicate_loan_number_in_one_batch(a: Api) -> None:
    first, second = new_loan(), new_loan()
    second["reportReference"] = first["reportReference"]
    status = a.add(first, second)
    assert status["batchStatus"] == "FinishedFailed"
    assert codes(status) == ["D50", "D50"]
    one = new_loan()
    twin = dict(one, reportReference=unique("R"))
    status = a.add(one, twin)
    assert status["batchStatus"] == "FinishedPartialSuccess"
    assert [r["status"] for r in status["reportResults"]] == ["Accepted", "Rejected"]


def test_kela_may_report_guarantee_receivable(reg: Running) -> None:
    kela = Api(reg, "kela")
    loan = new_loan(loanType="GuaranteeReceivable",
                    lumpSumLoan={**new_loan()["lumpSumLoan"], "purposeOfUse": "GuaranteeReceivableForStudentLoan"})
    assert kela.add(loan)["batchStatus"] == "FinishedSuccess"
    kela.close()


def test_a_repayment_must_carry_the_object_of_its_loans_type(a: Api) -> None:
    """D22 on Repayments (no requirement in requirements.yaml yet; RepaymentReport in reporting.yaml names it).
    Without it a repayment with no repayment object would be stored and make the loan's GetLoan answer
    non-conforming (StoredRepayment requires balance), and one with another loan type's object would be
    accepted without changing the balance."""
    loan = new_loan()
    number = loan["loanNumber"]
    a.add(loan)
    base = {"reportType": "NewReport", "loanNumber": number, "loanType": "LumpSumLoan",
            "reportCreationTimeUtc": "2025-01-02T10:00:00Z"}
    reports = [
        {**base, "reportReference": unique("R")},  # neither object
        {**base, "reportReference": unique("R"), "loanType": "RunningAccountLoan",
         "runningAccountLoanRepayment": {"balance": 5.0, "balanceDate": "2025-01-01"}},  # running on a lump-sum loan
        {**base, "reportReference": unique("R"), "loanType": "Leasing",
         "lumpSumLoanRepayment": {"balance": 5.0, "paymentDate": "2025-01-01"}},  # stated type not the loan's
    ]
    status = a.run("Repayments", "repayments", reports)
    assert [[(e["errorCode"], e["fieldName"]) for e in r["errorResponses"]] for r in status["reportResults"]] == [
        [("D22", "/repayments/0/lumpSumLoanRepayment")],
        [("D22", "/repayments/1/loanType")],
        [("D22", "/repayments/2/loanType")],
    ]
    stored = a.get_loan(number)
    assert stored.status_code == 200, stored.text
    assert stored.json()["loan"]["repayments"] == []


def test_loan_lifecycle_update_repay_delay_terminate_cancel_restore(a: Api) -> None:
    loan = new_loan()
    number = loan["loanNumber"]
    a.add(loan)
    changed = dict(loan, reportReference=unique("R"), reportType="NewReport", lenderMarketingName="Renamed")
    assert a.run("UpdateLoans", "loans", [changed])["batchStatus"] == "FinishedSuccess"
    assert a.get_loan(number).json()["loan"]["lenderMarketingName"] == "Renamed"
    repayment = {"reportReference": unique("R"), "reportType": "NewReport", "loanNumber": number,
                 "loanType": "LumpSumLoan", "reportCreationTimeUtc": "2025-01-02T10:00:00Z",
                 "lumpSumLoanRepayment": {"amortizationPaid": 500.0, "interestPaid": 40.0, "otherExpenses": 5.0,
                                          "paymentDate": "2025-01-01", "balance": 8500.0}}
    early = dict(repayment, reportReference=unique("R"),
                 lumpSumLoanRepayment={**repayment["lumpSumLoanRepayment"], "paymentDate": "2023-01-01"})
    status = a.run("Repayments", "repayments", [repayment, early])
    assert codes(status) == ["D35"]
    stored = a.get_loan(number).json()["loan"]
    assert stored["lumpSumLoan"]["balance"] == 8500.0
    assert stored["repayments"][0]["amortizationPaid"] == 500.0
    due = (dt.date.today() - dt.timedelta(days=70)).isoformat()
    recent = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    delay = {"reportReference": unique("R"), "reportType": "NewReport", "loanNumber": number, "isDelay": True,
             "delayedAmounts": [{"delayedInstalment": 300.0, "originalDueDate": due}], "isForeclosed": False}
    bad = [dict(delay, reportReference=unique("R"), delayedAmounts=[{"delayedInstalment": 1.0, "originalDueDate": d}])
           for d in ("2024-01-01", recent)]
    bad.append(dict(delay, reportReference=unique("R"), delayedAmounts=[]))
    bad.append(dict(delay, reportReference=unique("R"), isForeclosed=True))
    status = a.run("DelayedRepayments", "delayedRepayments", [delay, *bad])
    assert [[e["errorCode"] for e in r["errorResponses"]] for r in status["reportResults"]] == [
        [], ["D30"], ["D31"], ["D32"], ["D33"]]
    assert a.get_loan(number).json()["loan"]["delayedAmounts"] == delay["delayedAmounts"]
    clear = dict(delay, reportReference=unique("R"), isDelay=False, delayedAmounts=None)
    del clear["delayedAmounts"]
    a.run("DelayedRepayments", "delayedRepayments", [clear])
    assert a.get_loan(number).json()["loan"]["delayedAmounts"] == []
    early_end = termination(number, unique("R"), end="2020-01-01")
    status = a.run("TerminateLoans", "loanTerminations", [early_end, termination(number, unique("R"))])
    assert codes(status) == ["D34"]
    assert a.get_loan(number).json()["loan"]["status"] == "Ended"
    corrected = termination(number, unique("R"), "ErrorCorrection", end="2025-07-31")
    a.run("TerminateLoans", "loanTerminations", [corrected])
    assert a.get_loan(number).json()["loan"]["termination"]["endDate"] == "2025-07-31"
    a.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"), "Cancellation")])
    assert a.get_loan(number).json()["loan"]["status"] == "Cancelled"
    status = a.run("UpdateLoans", "loans", [dict(changed, reportReference=unique("R"))])
    assert codes(status) == ["D13"]
    a.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"), "ErrorCorrection", terminated=False)])
    assert a.get_loan(number).json()["loan"]["status"] == "Active"


def test_transfer_between_lenders(a: Api, b: Api) -> None:
    loan = new_loan(borrower=WHO.active[6])
    number = loan["loanNumber"]
    a.add(loan)
    premature = dict(loan, reportReference=unique("R"), isTransferredFromAnotherLender=True)
    assert codes(b.add(premature)) == ["D12"]
    a.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"), transferred=True)])
    wrong_borrower = new_loan(borrower=WHO.active[7], loanNumber=number, isTransferredFromAnotherLender=True)
    assert codes(b.add(wrong_borrower)) == ["D12"]
    assert b.add(dict(premature, reportReference=unique("R")))["batchStatus"] == "FinishedSuccess"
    assert b.get_loan(number).json()["loan"]["status"] == "Active"
    assert a.get_loan(number).status_code == 404


def test_tenant_isolation(a: Api, b: Api) -> None:
    loan = new_loan()
    number = loan["loanNumber"]
    reference = a.submit("AddLoans", "loans", [loan])
    wait_batch(a.client("reporting"), a.owner, reference)
    unknown = b.get_loan({"type": "Other", "number": unique("nope")})
    other = b.get_loan(number)
    assert other.status_code == unknown.status_code == 404
    assert codes(other) == codes(unknown) == ["D11"]
    assert other.json()["errorResponses"] == unknown.json()["errorResponses"]
    status = b.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"))])
    assert codes(status) == ["D11"]
    status = b.run("UpdateLoans", "loans", [dict(loan, reportReference=unique("R"))])
    assert codes(status) == ["D11"]
    batch = b.post("GetBatchStatus", b.envelope(batchReference=reference))
    assert (batch.status_code, codes(batch)) == (404, ["D60"])
    assert a.get_loan(number).json()["loan"]["status"] == "Active"


# -- extract -------------------------------------------------------------------------------------------

def test_extract_gathers_loans_of_every_lender(reg: Running, a: Api, b: Api) -> None:
    person = WHO.active[10]
    guarantor_of = new_loan(borrower=WHO.active[11], guarantors=[{"idCodeType": "PersonalIdentityCode",
                                                                   "idCode": person}])
    la = new_loan(borrower=person, paymentPlan={"isInDebtArrangement": True, "isInBusinessRestructuringProgram": False})
    lb = new_loan(borrower=person)
    ended = new_loan(borrower=person)
    a.add(la, guarantor_of, ended)
    b.add(lb)
    a.run("TerminateLoans", "loanTerminations", [termination(ended["loanNumber"], unique("R"))])
    a.run("Repayments", "repayments", [{
        "reportReference": unique("R"), "reportType": "NewReport", "loanNumber": la["loanNumber"],
        "loanType": "LumpSumLoan", "reportCreationTimeUtc": "2025-01-02T10:00:00Z",
        "lumpSumLoanRepayment": {"amortizationPaid": 100.0, "interestPaid": 20.0, "paymentDate": "2025-01-01",
                                 "balance": 8900.0}}])
    resp = a.extract(person, ("NewConsumerCredit", "NewLoan"))
    assert resp.status_code == 200, resp.text
    extract = resp.json()["creditRegisterExtract"]
    assert extract["extractOutcome"] == "LoansFound"
    assert extract["creditInformationSummary"] == {"lendersCount": 2, "loanContractsCount": 2,
                                                   "guaranteedLoanContractsCount": 1}
    assert [g["lender"]["name"] for g in extract["guarantees"]] == ["Lender A Oy"]
    names = sorted(loan["lender"]["name"] for loan in extract["loans"])
    assert names == ["Lender A Oy", "Lender B Oy"]
    hidden = [loan for loan in extract["loans"] if loan["lender"]["name"] == "Lender A Oy"][0]
    assert "contractDate" not in hidden  # EXT-017
    assert hidden["lumpSumLoan"]["balance"] == 8900.0
    assert extract["repaymentsPaidLastAmount"] == [{"currencyCode": "EUR", "sum": 120.0}]
    assert sum(len(y["months"]) for y in extract["incomeData"]) == 12
    borrower = a.extract(WHO.active[11]).json()["creditRegisterExtract"]
    assert (borrower["creditInformationSummary"]["loanContractsCount"], borrower["guarantees"]) == (1, [])
    log = a.post("GetExtractLog", a.envelope(), role="using-data").json()["entries"]
    assert extract["extractReference"] in [e["extractReference"] for e in log]
    assert all(e["requester"]["idCode"] == a.owner["idCode"] for e in log)
    b_log = b.post("GetExtractLog", b.envelope(), role="using-data").json()["entries"]
    assert extract["extractReference"] not in [e["extractReference"] for e in b_log]


def test_extract_guarantees_outcomes_and_permission(reg: Running, a: Api) -> None:
    person = WHO.active[12]
    a.add(new_loan(borrower=WHO.active[13], guarantors=[{"idCodeType": "PersonalIdentityCode", "idCode": person}]))
    extract = a.extract(person).json()["creditRegisterExtract"]
    assert extract["creditInformationSummary"]["guaranteedLoanContractsCount"] == len(extract["guarantees"]) == 1
    outcomes = {code: a.extract(code).json()["creditRegisterExtract"] for code in
                (WHO.unknown, WHO.not_in_use, WHO.deceased, WHO.active[30], WHO.banned_consent)}
    assert outcomes[WHO.unknown]["extractOutcome"] == "PersonNotFound"
    assert [n["errorCode"] for n in outcomes[WHO.unknown]["notices"]] == ["E20"]
    assert outcomes[WHO.not_in_use]["extractOutcome"] == "IdentifierNotInUse"
    assert [n["errorCode"] for n in outcomes[WHO.not_in_use]["notices"]] == ["E21"]
    assert outcomes[WHO.deceased]["extractOutcome"] == "PersonDeceased"
    assert outcomes[WHO.deceased]["personRequested"]["dateOfDeath"] == "2025-01-15"
    assert outcomes[WHO.active[30]]["extractOutcome"] == "NoLoans"
    assert outcomes[WHO.banned_consent]["voluntaryBanOnCredits"]["reason"] == "RiskOfIdentityTheft"
    bad = a.extract(wrong_check(person))
    assert (bad.status_code, codes(bad)) == (400, ["D04"])
    noperm = Api(reg, "lender-noperm")
    denied = noperm.extract(person)
    assert (denied.status_code, codes(denied)) == (403, ["P01"])
    noperm.close()


# -- authorities and credit information companies -------------------------------------------------------

def test_authority_order_processing_and_consumer_scope(reg: Running, a: Api) -> None:
    import time

    person = WHO.active[20]
    consumer = new_loan(borrower=person)
    business = new_loan(borrower=person, consumerCredit={"loanConsumerProtectionAct": "OtherThanConsumerCredit",
                                                         "isGoodsOrServicesRelatedCredit": False})
    a.add(consumer, business)
    seen = {}
    for key in ("authority-full", "authority-consumer"):
        auth = Api(reg, key)
        order = {"orderType": "PersonLoans", "legalBasis": "Test supervision",
                 "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": person},
                              {"idCodeType": "PersonalIdentityCode", "idCode": WHO.unknown}]}
        resp = auth.post("OrderData", auth.envelope(order=order), role="authority")
        assert resp.status_code == 202, resp.text
        ref = resp.json()["orderReference"]
        early = auth.post("GetDistribution", auth.envelope(orderReference=ref), role="authority")
        assert (early.status_code, codes(early)) == (409, ["D72"])
        for _ in range(100):
            status = auth.post("GetOrderStatus", auth.envelope(orderReference=ref), role="authority").json()
            if status["orderStatus"] == "Finished":
                break
            time.sleep(0.05)
        assert status == {"orderReference": ref, "orderStatus": "Finished", "subjectCount": 2}
        dist = auth.post("GetDistribution", auth.envelope(orderReference=ref), role="authority").json()
        seen[key] = dist["persons"]
        no_basis = auth.post("OrderData", auth.envelope(order={**order, "legalBasis": ""}), role="authority")
        assert (no_basis.status_code, codes(no_basis)) == (400, ["D70"])
        auth.close()
    assert len(seen["authority-full"][0]["loans"]) == 2
    assert [lo["consumerCredit"]["loanConsumerProtectionAct"] for lo in seen["authority-consumer"][0]["loans"]] == [
        "ConsumerCredit"]
    assert seen["authority-full"][1]["extractOutcome"] == "PersonNotFound"
    other = Api(reg, "authority-consumer")
    lender_cert = a.post("OrderData", a.envelope(order={"orderType": "PersonLoans", "legalBasis": "x",
                                                        "subjects": []}), role="reporting")
    assert (lender_cert.status_code, codes(lender_cert)) == (403, ["D43"])
    other.close()


def test_an_order_finishes_when_its_delay_is_over_without_being_polled(reg: Running) -> None:
    """AUT-004: Processing at first, Finished ORDER_DELAY_S (0.3 s here) after OrderData, without a request in
    between to wake the worker (it used to sleep its 0.5 s round past the moment the order was due)."""
    import time

    auth = Api(reg, "authority-full")
    order = {"orderType": "PersonLoans", "legalBasis": "Test supervision",
             "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[21]}]}
    resp = auth.post("OrderData", auth.envelope(order=order), role="authority")
    assert resp.status_code == 202, resp.text
    ordered = time.monotonic()
    ref = resp.json()["orderReference"]

    def state() -> str:
        return auth.post("GetOrderStatus", auth.envelope(orderReference=ref), role="authority").json()["orderStatus"]

    assert state() == "Processing"
    time.sleep(max(0.0, ordered + 0.3 + 0.12 - time.monotonic()))
    assert state() == "Finished"
    auth.close()


def test_voluntary_ban_needs_consent(reg: Running) -> None:
    cic = Api(reg, "cic")

    def ban(code: str) -> dict:
        resp = cic.post("GetVoluntaryBan", cic.envelope(request={"idCodeType": "PersonalIdentityCode",
                                                                 "idCode": code}), role="credit-information-company")
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert ban(WHO.banned_consent)["voluntaryBanOnCredits"]["isInEffect"] is True
    assert ban(WHO.banned_no_consent) == {"personRequested": {"idCode": WHO.banned_no_consent},
                                          "disclosureConsent": False}
    assert ban(WHO.active[0]) == {"personRequested": {"idCode": WHO.active[0]}, "disclosureConsent": False}
    changes = cic.post("GetVoluntaryBanChanges", cic.envelope(sinceUtc="2020-01-01T00:00:00Z"),
                       role="credit-information-company").json()["changes"]
    assert [c["idCode"] for c in changes] == [WHO.banned_consent]
    cic.close()


# -- durability ----------------------------------------------------------------------------------------

def test_kill_9_during_processing_loses_no_acknowledged_batch(data_dir: Path, tmp_path: Path, backend: str,
                                                              request: pytest.FixtureRequest) -> None:
    db = database(backend, request, tmp_path)
    first = start_register(data_dir, db=db, validate_responses=False)
    api = Api(first, "lender-a")
    loans = [lump_sum_loan(unique("K"), WHO.active[i % 30], f"R{i}") for i in range(5000)]
    reference = api.submit("AddLoans", "loans", loans)
    first.stop(kill=True)  # SIGKILL right after the 202, while the worker is processing
    api.close()
    # The kill really came before the batch finished (read through the register's own storage layer).
    row = open_storage(db).conn().execute("SELECT status FROM batches WHERE reference=?", (reference,)).fetchone()
    assert tuple(row) == ("Processing",)
    second = start_register(data_dir, db=db, validate_responses=False)
    api = Api(second, "lender-a")
    try:
        status = wait_batch(api.client("reporting"), api.owner, reference)
        assert (status["batchStatus"], status["acceptedCount"]) == ("FinishedSuccess", 5000)
        assert api.get_loan(loans[-1]["loanNumber"]).status_code == 200
    finally:
        api.close()
        second.stop()


# -- command line --------------------------------------------------------------------------------------

def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pcr_register.cli", *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_help_faults_and_errors(tmp_path: Path, data_dir: Path) -> None:
    code, out, _ = _cli("--help")
    assert code == 0 and "serve" in out and "export-pool" in out
    for sub in ("serve", "init", "export-pool", "faults"):
        assert _cli(sub, "--help")[0] == 0
    code, out, _ = _cli("faults")
    faults = json.loads(out)
    assert code == 0 and len(faults) >= 28
    assert {"name", "requirement", "description"} == set(faults[0])
    for args, env in [
        (("serve", "--bogus"), None),
        (("serve", "--data", str(tmp_path / "missing")), None),
        (("serve", "--data", str(data_dir)), {"PCR_REGISTER_FAULTS": "no_such_fault"}),
        (("frobnicate",), None),
    ]:
        code, out, err = _cli(*args, env=env)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
