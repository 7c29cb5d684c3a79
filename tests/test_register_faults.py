"""Every fault switch changes the register's behaviour, and only where its requirement says.

For each fault a probe sends the requests that the fault is meant to break and returns an observation; the
same probe against the fault-free register must observe something else. The faulty registers are started
in parallel (one process per fault) and the observations cached, so the parametrized tests stay fast.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_probes_load import PROBES_LOAD
from fault_probes_reporting import PROBES as REPORTING_PROBES
from register_fault_probes import PROBES_B
from register_fixtures import (
    REGISTER_CMD,
    Api,
    Running,
    codes,
    lump_sum_loan,
    no_cert_client,
    owner_of,
    people,
    start_register,
    status_and_codes,
    termination,
    unique,
    wait_batch,
    with_api,
    wrong_check,
)
from register_hostile import Case, Sender, request

from pcr_register.faults import FAULTS

WHO = people()
Probe = Callable[[Running], Any]


def _loan(borrower: str | None = None, **overrides: Any) -> dict[str, Any]:
    return lump_sum_loan(unique("F"), borrower or WHO.active[0], unique("R"), **overrides)


def _first_codes(status: dict[str, Any]) -> tuple[str, list[str]]:
    return status["batchStatus"], codes(status)


_with = with_api  # register_fixtures: one helper for the three probe modules


_answer = status_and_codes


def _extract(reg: Running, code: str, org: str = "lender-a") -> dict[str, Any]:
    resp = _with(reg, org, lambda api: api.extract(code))
    assert resp.status_code == 200, resp.text
    return resp.json()["creditRegisterExtract"]


def _add_then(reg: Running, then: Callable[[Api, dict[str, Any]], Any], **overrides: Any) -> Any:
    def go(api: Api) -> Any:
        loan = _loan(**overrides)
        assert api.add(loan)["batchStatus"] == "FinishedSuccess"
        return then(api, loan)
    return _with(reg, "lender-a", go)


def _get_status(api: Api, loan: dict[str, Any]) -> str:
    return api.get_loan(loan["loanNumber"]).json()["loan"]["status"]


def _order_distribution(reg: Running, org: str, person: str) -> list[dict[str, Any]]:
    import time

    def go(api: Api) -> list[dict[str, Any]]:
        order = {"orderType": "PersonLoans", "legalBasis": "Test",
                 "subjects": [{"idCodeType": "PersonalIdentityCode", "idCode": person}]}
        ref = api.post("OrderData", api.envelope(order=order), role="authority").json()["orderReference"]
        for _ in range(200):
            resp = api.post("GetDistribution", api.envelope(orderReference=ref), role="authority")
            if resp.status_code == 200:
                return resp.json()["persons"]
            time.sleep(0.05)
        raise AssertionError("order never finished")
    return _with(reg, org, go)


def _no_cert_get_loan(reg: Running) -> Any:
    with no_cert_client(reg) as client:
        try:
            resp = client.post("/GetLoan", json={"targetEnvironment": "Test", "owner": owner_of("lender-a"),
                                                 "loanNumber": {"type": "Other", "number": unique("x")}})
        except httpx.TransportError:
            return "refused"
        return _answer(resp)


def _bad_json(reg: Running) -> int:
    return _with(reg, "lender-a", lambda api: api.client("reporting").post(
        "/GetLoan", content=b"{oops", headers={"Content-Type": "application/json"}).status_code)


def _stuck(reg: Running) -> str:
    import time

    def go(api: Api) -> str:
        ref = api.submit("AddLoans", "loans", [_loan()])
        end = time.monotonic() + 2
        status = "Processing"
        while status == "Processing" and time.monotonic() < end:
            status = api.post("GetBatchStatus", api.envelope(batchReference=ref)).json()["batchStatus"]
            time.sleep(0.05)
        return status
    return _with(reg, "lender-a", go)


def _resubmit(reg: Running) -> tuple[str, int]:
    def go(api: Api) -> tuple[str, int]:
        body = api.envelope(loans=[_loan()])
        ref = unique("B")
        api.post("AddLoans", body, headers={"BatchReference": ref})
        wait_batch(api.client("reporting"), api.owner, ref)
        api.post("AddLoans", body, headers={"BatchReference": ref})
        status = wait_batch(api.client("reporting"), api.owner, ref)
        return status["batchStatus"], status["acceptedCount"]
    return _with(reg, "lender-a", go)


def _duplicate_in_second_batch(reg: Running, with_new: bool) -> tuple[str, list[str]]:
    def go(api: Api) -> tuple[str, list[str]]:
        loan = _loan()
        api.add(loan)
        again = dict(loan, reportReference=unique("R"))
        return _first_codes(api.add(again, _loan()) if with_new else api.add(again))
    return _with(reg, "lender-a", go)


def _delay(reg: Running, due: str) -> tuple[str, list[str]]:
    def then(api: Api, loan: dict[str, Any]) -> tuple[str, list[str]]:
        report = {"reportReference": unique("R"), "reportType": "NewReport", "loanNumber": loan["loanNumber"],
                  "isDelay": True, "delayedAmounts": [{"delayedInstalment": 10.0, "originalDueDate": due}],
                  "isForeclosed": False}
        return _first_codes(api.run("DelayedRepayments", "delayedRepayments", [report]))
    return _add_then(reg, then)


def _repayment_balance(reg: Running) -> float:
    def then(api: Api, loan: dict[str, Any]) -> float:
        api.run("Repayments", "repayments", [{
            "reportReference": unique("R"), "reportType": "NewReport", "loanNumber": loan["loanNumber"],
            "loanType": "LumpSumLoan", "reportCreationTimeUtc": "2025-01-02T10:00:00Z",
            "lumpSumLoanRepayment": {"paymentDate": "2025-01-01", "balance": 5000.0}}])
        return api.get_loan(loan["loanNumber"]).json()["loan"]["lumpSumLoan"]["balance"]
    return _add_then(reg, then)


def _restore(reg: Running) -> str:
    def then(api: Api, loan: dict[str, Any]) -> str:
        number = loan["loanNumber"]
        api.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"), "Cancellation")])
        api.run("TerminateLoans", "loanTerminations",
                [termination(number, unique("R"), "ErrorCorrection", terminated=False)])
        return _get_status(api, loan)
    return _add_then(reg, then)


def _extract_after(reg: Running, report_type: str, person: str) -> int:

    def then(api: Api, loan: dict[str, Any]) -> int:
        api.run("TerminateLoans", "loanTerminations", [termination(loan["loanNumber"], unique("R"), report_type)])
        return len([lo for lo in _extract(reg, person)["loans"]])
    return _add_then(reg, then, borrower=person)


def _summary(reg: Running) -> tuple[int, int]:
    person = WHO.active[26]

    def then(api: Api, loan: dict[str, Any]) -> tuple[int, int]:
        extract = _extract(reg, person)
        return extract["creditInformationSummary"]["loanContractsCount"], len(extract["loans"])
    return _add_then(reg, then, borrower=person)


def _log(reg: Running) -> bool:
    def go(api: Api) -> bool:
        ref = api.extract(WHO.active[27]).json()["creditRegisterExtract"]["extractReference"]
        entries = api.post("GetExtractLog", api.envelope(), role="using-data").json()["entries"]
        return ref in [e["extractReference"] for e in entries]
    return _with(reg, "lender-a", go)


def _other_lender(reg: Running, fn: Callable[[Api, dict[str, Any], str], Any]) -> Any:
    def go(api: Api) -> Any:
        loan = _loan()
        ref = api.submit("AddLoans", "loans", [loan])
        wait_batch(api.client("reporting"), api.owner, ref)
        return _with(reg, "lender-b", lambda other: fn(other, loan, ref))
    return _with(reg, "lender-a", go)


def _get_loan_as(reg: Running, org: str, role: str, owner: dict[str, Any]) -> tuple[int, list[str]]:
    return _with(reg, org, lambda api: _answer(api.post(
        "GetLoan", {"targetEnvironment": "Test", "owner": owner, "loanNumber": {"type": "Other", "number": unique("x")}},
        role=role)))


def _business_id_wrong_digit() -> dict[str, Any]:
    owner = owner_of("lender-a")
    return {**owner, "idCode": owner["idCode"][:-1] + str((int(owner["idCode"][-1]) + 1) % 10)}


def _ban(reg: Running, code: str) -> bool:
    return _with(reg, "cic", lambda api: "voluntaryBanOnCredits" in api.post(
        "GetVoluntaryBan", api.envelope(request={"idCodeType": "PersonalIdentityCode", "idCode": code}),
        role="credit-information-company").json())


TODAY = dt.date.today()


def _raw(reg: Running, data: bytes, timeout_s: float = 5) -> tuple[Any, str]:
    """(status or the error, content type) of bytes sent as they are over mutual TLS."""
    answer = Sender(reg.url, reg.data, timeout_s).send(Case("probe", "GetLoan", data))
    return (answer.status or answer.error), answer.content_type.split(";")[0]


def _get_loan_text(reg: Running, loan_number: str) -> tuple[Any, str]:
    """GetLoan with the JSON text of loanNumber given as is."""
    envelope = json.dumps({"targetEnvironment": "Test", "owner": owner_of("lender-a")})
    return _raw(reg, request("POST", "/GetLoan", f'{envelope[:-1]}, "loanNumber": {loan_number}}}'.encode()))


def _duplicate_member(reg: Running) -> tuple[Any, list[str]]:
    number = unique("F")
    text = f'{{"type": "Other", "number": "{number}", "Number": "{number}"}}'
    envelope = json.dumps({"targetEnvironment": "Test", "owner": owner_of("lender-a")})
    with reg.client("lender-a", "reporting") as client:
        resp = client.post("/GetLoan", content=f'{envelope[:-1]}, "loanNumber": {text}}}'.encode(),
                           headers={"Content-Type": "application/json"})
    return _answer(resp)

PROBES: dict[str, Probe] = {
    "accept_invalid_hetu": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(_loan(wrong_check(WHO.active[1]))))),
    "accept_invalid_business_id": lambda r: _get_loan_as(r, "lender-a", "reporting", _business_id_wrong_digit()),
    "skip_d40": lambda r: _get_loan_as(r, "lender-foreign", "reporting",
                                       {"idCodeType": "ForeignBusinessId", "idCode": owner_of("lender-foreign")["idCode"]}),
    "unknown_person_accepted": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(_loan(WHO.unknown)))),
    "wrong_error_code_e21": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(_loan(WHO.not_in_use)))),
    "skip_d02": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(_loan(lumpSumLoan={
        **_loan()["lumpSumLoan"], "amountPaid": 99999.0})))),
    "accept_duplicate_loan_number": lambda r: _duplicate_in_second_batch(r, with_new=False),
    "whole_batch_fails_on_duplicate": lambda r: _duplicate_in_second_batch(r, with_new=True),
    "skip_kela_only_check": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(_loan(
        loanType="GuaranteeReceivable",
        lumpSumLoan={**_loan()["lumpSumLoan"], "purposeOfUse": "GuaranteeReceivableForStudentLoan"})))),
    "restore_not_supported": _restore,
    "repayment_ignored": _repayment_balance,
    "skip_due_date_rule": lambda r: _delay(r, "2023-01-01"),
    "skip_60_day_rule": lambda r: _delay(r, (TODAY - dt.timedelta(days=10)).isoformat()),
    "duplicate_report_reference_accepted": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(
        *(lambda x: [x, _loan(reportReference=x["reportReference"])])(_loan())))),
    "batch_stuck_processing": _stuck,
    "no_partial_success": lambda r: _with(r, "lender-a", lambda a: _first_codes(a.add(
        _loan(), _loan(borrowersCount=1, borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": c}
                                                    for c in WHO.active[:2]])))),
    "batch_reference_not_idempotent": _resubmit,
    "skip_extract_permission": lambda r: _with(r, "lender-noperm", lambda a: _answer(a.extract(WHO.active[0]))),
    "extract_wrong_summary": _summary,
    "extract_includes_ended_loans": lambda r: _extract_after(r, "NewReport", WHO.active[24]),
    "cancelled_loan_on_extract": lambda r: _extract_after(r, "Cancellation", WHO.active[25]),
    "extract_no_ban": lambda r: "voluntaryBanOnCredits" in _extract(r, WHO.banned_consent),
    "extract_income_11_months": lambda r: sum(len(y["months"]) for y in _extract(r, WHO.active[2])["incomeData"]),
    "deceased_as_not_found": lambda r: _extract(r, WHO.deceased)["extractOutcome"],
    "living_person_as_deceased": lambda r: _extract(r, WHO.active[2])["extractOutcome"],
    "no_extract_log": _log,
    "missing_correlation_id": lambda r: "correlationId" in _with(r, "lender-a", lambda a: a.client("reporting").post(
        "/NoSuchOperation", json={}).json()),
    "server_error_on_bad_json": _bad_json,
    "accept_unknown_members": lambda r: _with(r, "lender-a", lambda a: _answer(a.post("GetLoan", a.envelope(
        loanNumber={"type": "Other", "number": unique("x")}, extraMember=True)))),
    "accept_missing_members": lambda r: _with(r, "lender-a", lambda a: _answer(a.post(
        "GetCreditRegisterExtract", a.envelope(request={"idCodeType": "PersonalIdentityCode",
                                                         "creditRegisterExtractPurpose": ["NewConsumerCredit"]}),
        role="using-data"))),
    "schema_drift_extract": lambda r: sorted(_extract(r, WHO.active[3])),
    "ignore_client_cert": _no_cert_get_loan,
    "skip_role_check": lambda r: _get_loan_as(r, "lender-a", "using-data", owner_of("lender-a")),
    "skip_owner_type_check": lambda r: _get_loan_as(r, "lender-a", "reporting", {
        "idCodeType": "ForeignBusinessId", "idCode": owner_of("lender-a")["idCode"], "countryCode": "FI"}),
    "skip_owner_id_check": lambda r: _get_loan_as(r, "lender-a", "reporting", owner_of("lender-b")),
    "leak_other_lenders_loans": lambda r: _other_lender(r, lambda b, loan, ref: b.get_loan(loan["loanNumber"]).status_code),
    "allow_update_other_lender": lambda r: _other_lender(r, lambda b, loan, ref: _first_codes(b.run(
        "TerminateLoans", "loanTerminations", [termination(loan["loanNumber"], unique("R"))]))),
    "batch_status_other_lender": lambda r: _other_lender(r, lambda b, loan, ref: b.post(
        "GetBatchStatus", b.envelope(batchReference=ref)).status_code),
    "authority_sees_all_credits": lambda r: _with(r, "lender-a", lambda a: a.add(_loan(
        WHO.active[28], consumerCredit={"loanConsumerProtectionAct": "OtherThanConsumerCredit",
                                        "isGoodsOrServicesRelatedCredit": False}))) and len(
        _order_distribution(r, "authority-consumer", WHO.active[28])[0]["loans"]) > 0,
    "ban_without_consent": lambda r: _ban(r, WHO.banned_no_consent),
    "lone_surrogate_500": lambda r: _get_loan_text(r, '{"type": "Other", "number": "x\\ud800"}'),
    "header_abuse_plain_text": lambda r: _raw(r, b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nno colon\r\n\r\n"),
    "no_read_deadline": lambda r: _raw(r, request("POST", "/GetLoan", b"", length="10"), timeout_s=4),
    "duplicate_members_last_wins": _duplicate_member,
    "huge_number_500": lambda r: _get_loan_text(r, '{"type": "Other", "number": 1e400}'),
}
PROBES.update(REPORTING_PROBES)  # the IDN, RPT and BAT faults added for issue 13 (tests/fault_probes_reporting.py)

PROBES.update(PROBES_B)  # envelope, security, extract, authorities and voluntary-ban faults (issue 13)
PROBES.update(PROBES_LOAD)  # the service levels under load (PRF-..., tests/fault_probes_load.py)

ENV = {"PCR_REGISTER_ORDER_DELAY_S": "0.1", "PCR_REGISTER_READ_DEADLINE_S": "1"}


def test_every_fault_has_a_probe_and_a_requirement() -> None:
    assert set(PROBES) == set(FAULTS)
    assert len(FAULTS) >= 28
    import re

    assert all(re.fullmatch(r"[A-Z]{3}-\d{3}", req) for req, _ in FAULTS.values())


@pytest.fixture(scope="module")
def observations(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Any, Any]]]:
    """(fault-free observation, faulty observation) per fault."""
    from pcr_conformance import embedded_forks

    baseline = start_register(data_dir, db=tmp_path_factory.mktemp("base") / "db.sqlite3", extra_env=ENV)
    # One fork server for the ~140 faulty registers: each is forked with its own faults instead of importing
    # the register and parsing the specs again (CI time, issue 12); None where it cannot run (not Linux).
    with embedded_forks.running_server(REGISTER_CMD, {**os.environ, **ENV}) as server:

        def run(name: str) -> tuple[Any, Any]:
            faulty = start_register(data_dir, faults=name, db=tmp_path_factory.mktemp(name) / "db.sqlite3",
                                    validate_responses=False, extra_env=ENV, fork_server=server)
            try:
                return PROBES[name](baseline), PROBES[name](faulty)
            except Exception as exc:  # report per fault, not as a fixture error
                return ("error", repr(exc)), ("error", repr(exc))
            finally:
                faulty.stop()

        workers = min(8, (os.cpu_count() or 2) * 2)
        with ThreadPoolExecutor(workers) as pool:
            results = dict(zip(PROBES, pool.map(run, PROBES), strict=True))
    baseline.stop()
    yield results


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_changes_behaviour(fault: str, observations: dict[str, tuple[Any, Any]]) -> None:
    clean, broken = observations[fault]
    assert clean[0] != "error" if isinstance(clean, tuple) else True, clean
    assert clean != broken, f"{fault} ({FAULTS[fault][0]}) did not change the observation: {clean!r}"


# The faults whose broken path is SQL of its own (a different query or parameter): their probes run on the
# PostgreSQL backend too, so that both dialects of that SQL are exercised (the other faults change Python only).
SQL_FAULTS = ("century_sign_ignored", "batch_status_other_lender", "unknown_batch_d11", "batch_reference_not_idempotent",
              "extract_log_of_everyone", "order_visible_to_other_authority", "ban_feed_ignores_consent")


@pytest.fixture(scope="module")
def pg_baseline(data_dir: Path, postgres: Any) -> Iterator[Any]:
    running = start_register(data_dir, db=postgres.create_database(), extra_env=ENV)
    yield running
    running.stop()


@pytest.mark.parametrize("fault", SQL_FAULTS)
def test_sql_fault_changes_behaviour_on_postgresql(fault: str, data_dir: Path, postgres: Any,
                                                   pg_baseline: Any) -> None:
    faulty = start_register(data_dir, faults=fault, db=postgres.create_database(), validate_responses=False,
                            extra_env=ENV)
    try:
        clean, broken = PROBES[fault](pg_baseline), PROBES[fault](faulty)
    finally:
        faulty.stop()
    assert clean != broken, f"{fault} ({FAULTS[fault][0]}) did not change the observation on PostgreSQL: {clean!r}"
