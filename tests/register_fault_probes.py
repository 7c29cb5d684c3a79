"""Probes of the envelope, security, extract, authorities and voluntary-ban faults (issue 13), for
tests/test_register_faults.py: each sends the requests its fault is meant to break and returns an observation
that must differ between the fault-free and the faulty register. Persons active[30:] are used here only.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
from register_fixtures import (
    Api,
    Running,
    codes,
    lump_sum_loan,
    owner_of,
    people,
    status_and_codes,
    unique,
    wait_batch,
    with_api,
    wrong_check,
)

WHO = people()
Probe = Callable[[Running], Any]


_with = with_api  # register_fixtures: one helper for the three probe modules


_answer = status_and_codes


def _status(resp: httpx.Response) -> int:
    return resp.status_code


def _loan(borrower: str, **overrides: Any) -> dict[str, Any]:
    return lump_sum_loan(unique("P"), borrower, unique("R"), **overrides)


def _extract(api: Api, code: str, purposes: tuple[str, ...] = ("NewConsumerCredit",)) -> dict[str, Any]:
    resp = api.extract(code, purposes)
    assert resp.status_code == 200, resp.text
    return resp.json()["creditRegisterExtract"]


def _added_then_extract(reg: Running, person: str, *loans: dict[str, Any]) -> dict[str, Any]:
    def go(api: Api) -> dict[str, Any]:
        assert api.add(*loans)["batchStatus"] == "FinishedSuccess"
        return _extract(api, person)
    return _with(reg, "lender-a", go)


def _loan_of(extract: dict[str, Any], marketing: str) -> dict[str, Any]:
    return next(lo for lo in extract["loans"] if lo["lender"]["marketingName"] == marketing)


def _two_lenders(reg: Running) -> tuple[int, list[str]]:
    person = WHO.active[30]
    _with(reg, "lender-b", lambda b: b.add(_loan(person, lenderMarketingName="B loans")))
    extract = _added_then_extract(reg, person, _loan(person, lenderMarketingName="A loans"))
    return len(extract["loans"]), sorted(lo["lender"]["name"] for lo in extract["loans"])


def _delays(reg: Running) -> list[Any]:
    person = WHO.active[31]
    loan = _loan(person, lenderMarketingName="Delays")

    def go(api: Api) -> list[Any]:
        api.add(loan)
        report = {"reportReference": unique("R"), "reportType": "NewReport", "loanNumber": loan["loanNumber"],
                  "isDelay": True, "isForeclosed": False, "delayedAmounts": [
                      {"delayedInstalment": 10.0, "originalDueDate": "2025-01-01"},
                      {"delayedInstalment": 20.0, "originalDueDate": "2025-02-01"}]}
        api.run("DelayedRepayments", "delayedRepayments", [report])
        return _loan_of(_extract(api, person), "Delays")["delayedAmounts"]
    return _with(reg, "lender-a", go)


def _plan(reg: Running) -> Any:
    person = WHO.active[32]
    plan = {"isInDebtArrangement": True, "isInBusinessRestructuringProgram": False}
    extract = _added_then_extract(reg, person, _loan(person, lenderMarketingName="Plan", paymentPlan=plan))
    return _loan_of(extract, "Plan").get("contractDate")


def _sums(reg: Running) -> Any:
    person = WHO.active[33]
    leasing = {"contractPeriodStartDate": "2024-03-01", "transactionPrice": 900.0, "monthlyPayment": 50.0}
    loans = [_loan(person, loanType="Leasing", currencyCode=cur, lumpSumLoan=None, leasingContract=leasing)
             for cur in ("EUR", "SEK")]
    for lo in loans:
        lo.pop("lumpSumLoan")
    return _added_then_extract(reg, person, *loans)["sumOfMonthlyLeasingInstalments"]


def _deferments(reg: Running) -> Any:
    person = WHO.active[34]
    period = {"startDate": "2025-01-01", "endDate": "2025-03-01"}
    extract = _added_then_extract(reg, person, _loan(person, lenderMarketingName="Deferred", defermentPeriods=[period]))
    return _loan_of(extract, "Deferred")["defermentPeriods"]


def _guarantees(reg: Running) -> tuple[int, int]:
    borrower, guarantor = WHO.active[35], WHO.active[36]
    extract = _added_then_extract(reg, guarantor, _loan(borrower, guarantors=[
        {"idCodeType": "PersonalIdentityCode", "idCode": guarantor}]))
    return len(extract["guarantees"]), extract["creditInformationSummary"]["guaranteedLoanContractsCount"]


def _balance(reg: Running) -> Any:
    person = WHO.active[37]
    loan = _loan(person, lenderMarketingName="Balance")
    loan["lumpSumLoan"] = {**loan["lumpSumLoan"], "balance": 9000.55}
    return _loan_of(_added_then_extract(reg, person, loan), "Balance")["lumpSumLoan"]["balance"]


def _log_of_b(reg: Running) -> bool:
    ref = _with(reg, "lender-a", lambda a: _extract(a, WHO.active[38])["extractReference"])
    entries = _with(reg, "lender-b", lambda b: b.post("GetExtractLog", b.envelope(), role="using-data").json()["entries"])
    return ref in [e["extractReference"] for e in entries]


def _two_references(reg: Running) -> bool:
    def go(api: Api) -> bool:
        return _extract(api, WHO.active[39])["extractReference"] == _extract(api, WHO.active[39])["extractReference"]
    return _with(reg, "lender-a", go)


def _extract_answer(reg: Running, code: str, purposes: list[str]) -> tuple[int, list[str]]:
    return _with(reg, "lender-a", lambda a: _answer(a.post("GetCreditRegisterExtract", a.envelope(request={
        "idCodeType": "PersonalIdentityCode", "idCode": code, "creditRegisterExtractPurpose": purposes}),
        role="using-data")))


# -- authorities -----------------------------------------------------------------------------------------

def _order(api: Api, subjects: list[str], legal_basis: str = "Test") -> httpx.Response:
    return api.post("OrderData", api.envelope(order={
        "orderType": "PersonLoans", "legalBasis": legal_basis,
        "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": c} for c in subjects]}), role="authority")


def _finished_distribution(api: Api, reference: str) -> list[dict[str, Any]]:
    for _ in range(200):
        resp = api.post("GetDistribution", api.envelope(orderReference=reference), role="authority")
        if resp.status_code == 200 and resp.json()["persons"]:
            return resp.json()["persons"]
        time.sleep(0.05)
    raise AssertionError("order never finished")


def _distribution_subjects(reg: Running) -> int:
    def go(api: Api) -> int:
        ref = _order(api, [WHO.active[30], WHO.active[31]]).json()["orderReference"]
        return len(_finished_distribution(api, ref))
    return _with(reg, "authority-full", go)


def _order_seen_by(reg: Running) -> int:
    ref = _with(reg, "authority-full", lambda a: _order(a, [WHO.active[30]]).json()["orderReference"])
    return _with(reg, "authority-consumer", lambda a: _status(a.post(
        "GetOrderStatus", a.envelope(orderReference=ref), role="authority")))


def _first_answers(reg: Running) -> tuple[str, int]:
    """(the order status right after the order, GetDistribution's status then): the order takes 0.1 s."""
    def go(api: Api) -> tuple[str, int]:
        ref = _order(api, [WHO.active[30]]).json()["orderReference"]
        status = api.post("GetOrderStatus", api.envelope(orderReference=ref), role="authority").json()["orderStatus"]
        return status, _status(api.post("GetDistribution", api.envelope(orderReference=ref), role="authority"))
    return _with(reg, "authority-full", go)


# -- envelope and transport ------------------------------------------------------------------------------

def _raw_call(reg: Running, org: str, role: str, operation: str, *, content: bytes, content_type: str | None,
              method: str = "POST") -> tuple[int, str]:
    with reg.client(org, role) as client:
        headers = {"Content-Type": content_type} if content_type else {}
        resp = client.request(method, f"/{operation}", content=content, headers=headers)
        return resp.status_code, resp.headers.get("content-type", "").split(";")[0]


def _chunked_over_limit(reg: Running) -> int:
    body = json.dumps({"targetEnvironment": "Test", "owner": owner_of("lender-a"),
                       "loanNumber": {"type": "Other", "number": "x"}, "padding": "x" * (6 * 1024 * 1024)}).encode()

    def chunks() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]
    with reg.client("lender-a", "reporting") as client:
        return client.post("/GetLoan", content=chunks(), headers={"Content-Type": "application/json"}).status_code


def _deep(reg: Running, operation: str, role: str, org: str) -> int:
    content = json.dumps({"targetEnvironment": "Test", "owner": owner_of(org)})[:-1] + ', "deep": ' + "[" * 100 + \
        "]" * 100 + "}"
    return _raw_call(reg, org, role, operation, content=content.encode(), content_type="application/json")[0]


def _pascal_nested(reg: Running) -> tuple[int, list[str]]:
    body = {"TargetEnvironment": "Test", "Owner": {"IdCodeType": "BusinessId", "IdCode": owner_of("lender-a")["idCode"]},
            "LoanNumber": {"Type": "Other", "Number": unique("x")}}
    return _with(reg, "lender-a", lambda a: _answer(a.post("GetLoan", body)))


def _add_answer(reg: Running, **overrides: Any) -> tuple[int, list[str]]:
    return _with(reg, "lender-a", lambda a: _answer(a.post("AddLoans", a.envelope(loans=[_loan(
        WHO.active[30], **overrides)]), headers={"BatchReference": unique("B")})))


def _tls_handshake(reg: Running, *, cert: str, key: str, old: bool = False) -> str:
    from urllib.parse import urlsplit

    url = urlsplit(reg.url)
    ctx = ssl.create_default_context(cafile=str(reg.data / "ca.pem"))
    if old:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(reg.data / cert, reg.data / key)
    try:
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock, \
                ctx.wrap_socket(sock, server_hostname=url.hostname) as tls:
            tls.sendall(b"POST /GetLoan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            return tls.recv(12).decode("latin-1") or "closed"
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {type(exc).__name__}"


def _ban_answer(reg: Running, code: str) -> Any:
    return _with(reg, "cic", lambda api: (lambda r: (r.status_code, sorted(r.json())))(api.post(
        "GetVoluntaryBan", api.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": code}),
        role="credit-information-company")))


def _ban_of(reg: Running, code: str) -> Any:
    return _with(reg, "cic", lambda api: api.post(
        "GetVoluntaryBan", api.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": code}),
        role="credit-information-company").json().get("voluntaryBanOnCredits"))


def _feed(reg: Running) -> bool:
    return _with(reg, "cic", lambda api: WHO.banned_no_consent in [c["idCode"] for c in api.post(
        "GetVoluntaryBanChanges", api.envelope(sinceUtc="2000-01-01T00:00:00Z"),
        role="credit-information-company").json()["changes"]])


def _batch_status_members(reg: Running) -> list[str]:
    def go(api: Api) -> list[str]:
        ref = api.submit("AddLoans", "loans", [_loan(WHO.active[30])])
        wait_batch(api.client("reporting"), api.owner, ref)
        return sorted(api.post("GetBatchStatus", api.envelope(batchReference=ref)).json())
    return _with(reg, "lender-a", go)


PROBES_B: dict[str, Probe] = {
    # extract
    "empty_purpose_list_accepted": lambda r: _extract_answer(r, WHO.active[30], []),
    "second_purpose_rejected": lambda r: _extract_answer(r, WHO.active[30], ["NewConsumerCredit", "NewLoan"]),
    "non_consumer_purpose_rejected": lambda r: _extract_answer(r, WHO.active[30], ["NewLoan"]),
    "extract_first_lender_only": lambda r: _two_lenders(r)[0],
    "not_found_as_error": lambda r: _extract_answer(r, WHO.unknown, ["NewConsumerCredit"]),
    "not_in_use_as_error": lambda r: _extract_answer(r, WHO.not_in_use, ["NewConsumerCredit"]),
    "extract_reference_per_person": _two_references,
    "extract_second_delayed_amount_dropped": _delays,
    "contract_date_shown_in_debt_arrangement": _plan,
    "sums_in_first_currency": _sums,
    "deferment_periods_dropped": _deferments,
    "guarantees_not_listed": _guarantees,
    "lender_of_first_loan": lambda r: _two_lenders(r)[1],
    "balance_rounded": _balance,
    "extract_log_of_everyone": _log_of_b,
    # envelope and contract
    "delete_served_on_voluntary_ban": lambda r: _raw_call(r, "cic", "credit-information-company", "GetVoluntaryBan",
        content=json.dumps({"targetEnvironment": "Test", "owner": owner_of("cic"), "request": {
            "idCodeType": "PersonalIdentityCode", "idCode": WHO.active[30]}}).encode(),
        content_type="application/json", method="DELETE")[0],
    "target_environment_optional_authorities": lambda r: _with(r, "authority-full", lambda a: _answer(a.post(
        "GetOrderStatus", {"owner": a.owner, "orderReference": "6f1b1d4e-2f1e-4c55-9a8e-0d4b1c2a3e4f"},
        role="authority"))),
    "production_accepted_on_voluntary_ban": lambda r: _with(r, "cic", lambda a: _answer(a.post(
        "GetVoluntaryBan", {**a.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[30]}),
                            "targetEnvironment": "Production"}, role="credit-information-company"))),
    "owner_optional_get_batch_status": lambda r: _with(r, "lender-a", lambda a: _answer(a.post(
        "GetBatchStatus", {"targetEnvironment": "Test", "batchReference": unique("B")}))),
    "content_type_unchecked_extract_log": lambda r: _raw_call(r, "lender-a", "using-data", "GetExtractLog",
        content=json.dumps({"targetEnvironment": "Test", "owner": owner_of("lender-a")}).encode(),
        content_type="text/plain")[0],
    "size_limit_on_content_length_only": _chunked_over_limit,
    "deep_nesting_500_reporting": lambda r: _deep(r, "GetLoan", "reporting", "lender-a"),
    "casing_top_level_only": _pascal_nested,
    "enum_case_folded_loan_type": lambda r: _add_answer(r, loanType="lumpSumLoan"),
    "finnish_date_accepted": lambda r: _add_answer(r, contractDate="15.3.2024"),
    "quote_in_loan_number_500": lambda r: _with(r, "lender-a", lambda a: _status(a.get_loan(
        {"type": "Other", "number": "'; DROP TABLE loans; --"}))),
    "unknown_path_gateway_404": lambda r: _raw_call(r, "lender-a", "reporting", "NoSuchOperation", content=b"{}",
                                                    content_type="application/json"),
    "batch_status_without_received_time": _batch_status_members,
    "extract_dates_as_timestamps": lambda r: [lo.get("contractDate") for lo in _added_then_extract(
        r, WHO.active[30], _loan(WHO.active[30]))["loans"]],
    "method_not_allowed_code_h04": lambda r: _with(r, "lender-a", lambda a: codes(a.client("reporting").request(
        "PUT", "/GetLoan", json={}))),
    # security
    "trust_foreign_ca": lambda r: _tls_handshake(r, cert="foreign-ca/lender-a-reporting.pem",
                                                 key="foreign-ca/lender-a-reporting.key"),
    "accept_expired_certificate": lambda r: _tls_handshake(r, cert="clients/expired-lender-reporting.pem",
                                                           key="clients/expired-lender-reporting.key"),
    "allow_tls_1_0": lambda r: _tls_handshake(r, cert="clients/lender-a-reporting.pem",
                                              key="clients/lender-a-reporting.key", old=True),
    "internals_in_bad_json_answer": lambda r: "JSONDecodeError" in _with(r, "lender-a", lambda a: a.client(
        "reporting").post("/GetLoan", content=b"{oops", headers={"Content-Type": "application/json"}).text),
    # authorities
    "authority_role_unchecked_get_distribution": lambda r: _with(r, "lender-a", lambda a: _status(a.post(
        "GetDistribution", a.envelope(orderReference="6f1b1d4e-2f1e-4c55-9a8e-0d4b1c2a3e4f")))),
    "order_answered_200": lambda r: _with(r, "authority-full", lambda a: _status(_order(a, [WHO.active[30]]))),
    "legal_basis_blank_accepted": lambda r: _with(r, "authority-full", lambda a: _status(_order(
        a, [WHO.active[30]], legal_basis="   "))),
    "order_status_finished_at_once": lambda r: _first_answers(r)[0],
    "distribution_first_subject_only": _distribution_subjects,
    "order_visible_to_other_authority": _order_seen_by,
    "distribution_before_finished": lambda r: _first_answers(r)[1],
    "second_subject_not_validated": lambda r: _with(r, "authority-full", lambda a: _status(_order(
        a, [WHO.active[30], wrong_check(WHO.active[31])]))),
    # voluntary ban
    "ban_changes_role_unchecked": lambda r: _with(r, "lender-a", lambda a: _status(a.post(
        "GetVoluntaryBanChanges", a.envelope(sinceUtc="2000-01-01T00:00:00Z")))),
    "ban_validity_dropped": lambda r: _ban_of(r, WHO.banned_consent),
    "no_consent_reveals_ban": lambda r: _ban_answer(r, WHO.banned_no_consent),
    "ban_feed_ignores_consent": _feed,
    "ban_hetu_not_validated": lambda r: _ban_answer(r, wrong_check(WHO.active[30])),
}
