"""Probes of the fault switches of the identifier, reporting and batch families (IDN, RPT, BAT).

Each probe sends the requests its fault is meant to break and returns an observation; test_register_faults.py
requires the fault-free register to observe something else. The loans come from the register's own test
fixtures and from the harness's message builders (the tests may import both).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from register_fixtures import (
    Api,
    Running,
    codes,
    lump_sum_loan,
    people,
    termination,
    unique,
    wait_batch,
    with_api,
)

from pcr_conformance import messages as m

WHO = people()
Probe = Callable[[Running], Any]
TODAY = dt.date.today()


_with = with_api  # register_fixtures: one helper for the three probe modules


def _loan(borrower: str | None = None, **overrides: Any) -> dict[str, Any]:
    return lump_sum_loan(unique("F"), borrower or WHO.active[0], unique("R"), **overrides)


def _number() -> dict[str, str]:
    return {"type": "Other", "number": unique("F")}


def _state_codes(status: dict[str, Any]) -> tuple[str, list[str]]:
    return status["batchStatus"], codes(status)


def _add(reg: Running, *loans: dict[str, Any]) -> tuple[str, list[str]]:
    return _with(reg, "lender-a", lambda api: _state_codes(api.add(*loans)))


def _update(reg: Running, *loans: dict[str, Any]) -> tuple[str, list[str]]:
    return _with(reg, "lender-a", lambda api: _state_codes(api.run("UpdateLoans", "loans", list(loans))))


def _after_add(reg: Running, loan: dict[str, Any], then: Callable[[Api, dict[str, Any]], Any],
               org: str = "lender-a") -> Any:
    def go(api: Api) -> Any:
        status = api.add(loan)
        assert status["batchStatus"] == "FinishedSuccess", status
        return then(api, loan)
    return _with(reg, org, go)


def _stored(api: Api, loan: dict[str, Any]) -> dict[str, Any]:
    return api.get_loan(loan["loanNumber"]).json()["loan"]


def _status_code(resp: Any) -> tuple[int, list[str]]:
    return resp.status_code, codes(resp) if resp.status_code >= 400 else []


def _submit_raw(reg: Running, operation: str, collection: str, reports: list[dict[str, Any]],
                reference: str) -> tuple[int, list[str]]:
    return _with(reg, "lender-a", lambda api: _status_code(api.post(
        operation, api.envelope(**{collection: reports}), headers={"BatchReference": reference})))


def _report(api: Api, operation: str, collection: str, report: dict[str, Any]) -> tuple[str, list[str]]:
    return _state_codes(api.run(operation, collection, [report]))


def _century_twins(reg: Running) -> int:
    """A loan of a code with sign '-' on the extract of the same digits with sign 'Y' (IDN-007)."""
    person, twin = WHO.active[30], WHO.century_twin

    def then(api: Api, loan: dict[str, Any]) -> int:
        resp = api.extract(twin)
        return len(resp.json().get("creditRegisterExtract", {}).get("loans", [])) if resp.status_code == 200 else -1
    return _after_add(reg, _loan(person), then)


def _transfer(reg: Running, first_borrower: str) -> tuple[Any, ...]:
    """lender-a ends a loan as transferred, lender-b reports it again with the given first borrower."""
    loan = _loan(WHO.active[31])

    def then(api: Api, stored: dict[str, Any]) -> tuple[Any, ...]:
        api.run("TerminateLoans", "loanTerminations", [termination(loan["loanNumber"], unique("R"), transferred=True)])
        again = dict(loan, reportReference=unique("R"), isTransferredFromAnotherLender=True,
                     borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": first_borrower}])
        new = Api(reg, "lender-b")
        try:
            state = _state_codes(new.add(again))
            return state, new.get_loan(loan["loanNumber"]).status_code, api.get_loan(loan["loanNumber"]).status_code
        finally:
            new.close()
    return _after_add(reg, loan, then)


def _replaced(reg: Running, report_type: str) -> str:
    loan = _loan()

    def then(api: Api, _: dict[str, Any]) -> str:
        api.run("UpdateLoans", "loans", [dict(loan, reportReference=unique("R"), reportType=report_type,
                                              lenderMarketingName="Replaced")])
        return _stored(api, loan)["lenderMarketingName"]
    return _after_add(reg, loan, then)


def _terminate_then(reg: Running, reports: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> tuple[str, Any]:
    loan = _loan()

    def then(api: Api, _: dict[str, Any]) -> tuple[str, Any]:
        for report in reports(loan["loanNumber"]):
            api.run("TerminateLoans", "loanTerminations", [report])
        stored = _stored(api, loan)
        return stored["status"], (stored.get("termination") or {}).get("endDate")
    return _after_add(reg, loan, then)


def _cancelled_update(reg: Running) -> tuple[str, list[str]]:
    loan = _loan()

    def then(api: Api, _: dict[str, Any]) -> tuple[str, list[str]]:
        api.run("UpdateLoans", "loans", [dict(loan, reportReference=unique("R"), reportType="Cancellation")])
        return _report(api, "UpdateLoans", "loans", dict(loan, reportReference=unique("R")))
    return _after_add(reg, loan, then)


def _repaid_balance(reg: Running, running: bool, report: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    number = _number()
    loan = (m.running_account_loan(number, WHO.active[0], unique("R"), balance=1200) if running
            else m.lump_sum_loan(number, WHO.active[0], unique("R")))

    def then(api: Api, _: dict[str, Any]) -> Any:
        api.run("Repayments", "repayments", [report(number)])
        return _stored(api, loan)["runningAccountLoan" if running else "lumpSumLoan"]["balance"]
    return _after_add(reg, loan, then)


def _delay_state(reg: Running, *reports: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    number = _number()
    loan = m.lump_sum_loan(number, WHO.active[0], unique("R"))

    def then(api: Api, _: dict[str, Any]) -> Any:
        results = [_report(api, "DelayedRepayments", "delayedRepayments", r(number)) for r in reports]
        stored = _stored(api, loan)
        return results, stored["delayedAmounts"], stored.get("foreclosureDate")
    return _after_add(reg, loan, then)


def _two_amounts(number: dict[str, Any]) -> dict[str, Any]:
    return m.delayed_repayment(number, unique("R"), delayedAmounts=[
        {"delayedInstalment": 100.0, "originalDueDate": m.days_ago(120)},
        {"delayedInstalment": 200.0, "originalDueDate": m.days_ago(90)}])


def _balance_date_before_contract(reg: Running) -> tuple[str, list[str]]:
    number = _number()
    loan = m.running_account_loan(number, WHO.active[0], unique("R"))
    return _after_add(reg, loan, lambda api, _: _report(api, "Repayments", "repayments", m.running_account_repayment(
        number, unique("R"), balance_date=m.days_ago(m.CONTRACT_DAYS_AGO + 30))))


def _repaid_on_contract_date(reg: Running) -> tuple[str, list[str]]:
    loan = _loan(contractDate="2024-03-01")
    return _after_add(reg, loan, lambda api, _: _report(api, "Repayments", "repayments", m.repayment(
        loan["loanNumber"], unique("R"), payment_date="2024-03-01")))


def _end_day_before_contract(reg: Running) -> tuple[str, list[str]]:
    loan = _loan(contractDate="2024-03-01")
    return _after_add(reg, loan, lambda api, _: _report(api, "TerminateLoans", "loanTerminations", termination(
        loan["loanNumber"], unique("R"), end="2024-02-29")))


def _get_unknown_loan(reg: Running) -> tuple[int, list[str]]:
    return _with(reg, "lender-a", lambda api: _status_code(api.get_loan(_number())))


def _empty_batch(reg: Running, operation: str, collection: str) -> tuple[int, list[str]]:
    return _submit_raw(reg, operation, collection, [], unique("B"))


def _batch_while_processing(reg: Running) -> list[Any]:
    """What GetBatchStatus shows before a batch of 300 reports is final (BAT-001)."""
    def go(api: Api) -> list[Any]:
        ref = api.submit("AddLoans", "loans", [_loan() for _ in range(300)])
        seen: list[Any] = []
        end = time.monotonic() + 20
        while time.monotonic() < end:
            body = api.post("GetBatchStatus", api.envelope(batchReference=ref)).json()
            if body["batchStatus"] != "Processing":
                break
            seen.append(len(body["reportResults"]))
        return sorted(set(seen))
    return _with(reg, "lender-a", go)


def _two_errors(reg: Running) -> list[str]:
    """fieldName of each error of a report with two errors (future contract date, borrowersCount too small)."""
    loan = _loan(contractDate=(TODAY + dt.timedelta(days=5)).isoformat(), borrowersCount=1,
                 borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": c} for c in WHO.active[:2]])

    def go(api: Api) -> list[str]:
        return [e["fieldName"] for r in api.add(loan)["reportResults"] for e in r["errorResponses"]]
    return _with(reg, "lender-a", go)


def _unknown_batch(reg: Running) -> tuple[int, list[str]]:
    return _with(reg, "lender-a", lambda api: _status_code(api.post(
        "GetBatchStatus", api.envelope(batchReference=unique("never")))))


def _reused_reference(reg: Running) -> tuple[int, list[str]]:
    ref = unique("B")
    _submit_raw(reg, "AddLoans", "loans", [_loan()], ref)
    return _submit_raw(reg, "AddLoans", "loans", [_loan()], ref)


def _over_limit(reg: Running) -> tuple[int, list[str]]:
    number = _number()
    reports = [{"reportReference": f"R{i}", "reportType": "NewReport", "loanNumber": number, "isDelay": False,
                "isForeclosed": False} for i in range(10_001)]
    return _submit_raw(reg, "DelayedRepayments", "delayedRepayments", reports, unique("B"))


def _large_batch(reg: Running) -> tuple[str, list[str]]:
    return _add(reg, *[_loan() for _ in range(501)])


def _report_count(reg: Running) -> Any:
    def go(api: Api) -> Any:
        ref = api.submit("AddLoans", "loans", [_loan(), _loan(lumpSumLoan={
            **_loan()["lumpSumLoan"], "amountPaid": 99999.0})])
        return wait_batch(api.client("reporting"), api.owner, ref)["reportCount"]
    return _with(reg, "lender-a", go)


def _accepted_answer(reg: Running) -> list[str]:
    return _with(reg, "lender-a", lambda api: sorted(api.post(
        "AddLoans", api.envelope(loans=[_loan()]), headers={"BatchReference": unique("B")}).json()))


def _borrowers_on_get_loan(reg: Running) -> int:
    loan = _loan(borrowersCount=2, borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": c}
                                              for c in WHO.active[32:34]])
    return _after_add(reg, loan, lambda api, _: len(_stored(api, loan)["borrowers"]))


def _plus_sign_borrower() -> str:
    # An artificial 1800s code (sign '+') that the fixtures' population does not hold: E20 without the fault.
    from register_fixtures import hetu
    return hetu(dt.date(1899, 5, 5), 951, "+")


def _business_borrower() -> dict[str, Any]:
    from register_fixtures import business_id
    return _loan(consumerCredit={"loanConsumerProtectionAct": "OtherThanConsumerCredit",
                                 "isGoodsOrServicesRelatedCredit": False},
                 lumpSumLoan={**_loan()["lumpSumLoan"], "purposeOfUse": "LoanForBusinessActivities"},
                 borrowers=[{"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[0],
                             "businessId": business_id("9900119")}])


PROBES: dict[str, Probe] = {
    # identifiers
    "century_sign_plus_rejected": lambda r: _add(r, _loan(_plus_sign_borrower())),
    "century_sign_ignored": _century_twins,
    # reporting
    "batch_reference_101_chars": lambda r: _submit_raw(r, "AddLoans", "loans", [_loan()], "B" * 101),
    "accepted_answer_with_state": _accepted_answer,
    "get_loan_first_borrower_only": _borrowers_on_get_loan,
    "transfer_keeps_old_owner": lambda r: _transfer(r, WHO.active[31]),
    "transfer_ignores_borrower": lambda r: _transfer(r, WHO.active[32]),
    "guarantee_purpose_on_other_types": lambda r: _add(r, _loan(lumpSumLoan={
        **_loan()["lumpSumLoan"], "purposeOfUse": "GuaranteeReceivableForStudentLoan"})),
    "second_type_object_accepted": lambda r: _add(r, _loan(runningAccountLoan={"creditLimit": 1000.0,
                                                                                "balance": 100.0})),
    "borrowers_count_unchecked_on_update": lambda r: _after_add(r, _loan(), lambda api, loan: _report(
        api, "UpdateLoans", "loans", dict(loan, reportReference=unique("R"), borrowersCount=1, borrowers=[
            {"idCodeType": "PersonalIdentityCode", "idCode": c} for c in WHO.active[:2]]))),
    "leasing_rejected": lambda r: _add(r, m.leasing_loan(_number(), WHO.active[0], unique("R"))),
    "business_borrower_rejected": lambda r: _add(r, _business_borrower()),
    "update_keeps_old_data": lambda r: _replaced(r, "NewReport"),
    "unknown_loan_accepted_by_delays": lambda r: _with(r, "lender-a", lambda api: _report(
        api, "DelayedRepayments", "delayedRepayments", m.delayed_repayment(_number(), unique("R")))),
    "error_correction_ignored": lambda r: _replaced(r, "ErrorCorrection"),
    "cancellation_by_termination_ignored": lambda r: _terminate_then(r, lambda n: [
        termination(n, unique("R"), "Cancellation")]),
    "end_date_correction_ignored": lambda r: _terminate_then(r, lambda n: [
        termination(n, unique("R"), end="2025-06-30"), termination(n, unique("R"), "ErrorCorrection", end="2025-05-31")]),
    "cancelled_loan_updatable": _cancelled_update,
    "balance_only_repayment_ignored": lambda r: _repaid_balance(r, False, lambda n: m.balance_only_repayment(
        n, unique("R"), balance=4321.0)),
    "running_balance_ignored": lambda r: _repaid_balance(r, True, lambda n: m.running_account_repayment(
        n, unique("R"), balance=777.0)),
    "balance_date_before_contract_accepted": _balance_date_before_contract,
    "repayment_on_contract_date_rejected": _repaid_on_contract_date,
    "second_delayed_amount_dropped": lambda r: _delay_state(r, _two_amounts),
    "amounts_without_delay_accepted": lambda r: _delay_state(r, lambda n: m.delayed_repayment(
        n, unique("R"), isDelay=False)),
    "delay_not_cleared": lambda r: _delay_state(r, lambda n: m.delayed_repayment(n, unique("R")),
                                                lambda n: m.clear_delay(n, unique("R"))),
    "foreclosure_date_dropped": lambda r: _delay_state(r, lambda n: m.delayed_repayment(
        n, unique("R"), is_foreclosed=True, foreclosure_date=m.days_ago(3))),
    "end_date_shifted": lambda r: _terminate_then(r, lambda n: [termination(n, unique("R"), end="2025-06-30")]),
    "end_date_day_before_contract_accepted": _end_day_before_contract,
    "contract_date_tomorrow_accepted": lambda r: _add(r, _loan(contractDate=(TODAY + dt.timedelta(days=1)).isoformat())),
    "second_deferment_period_unchecked": lambda r: _add(r, _loan(defermentPeriods=[
        {"startDate": "2024-04-01", "endDate": "2024-05-01"}, {"startDate": "2024-08-01", "endDate": "2024-07-01"}])),
    "negative_amount_accepted": lambda r: _with(r, "lender-a", lambda api: _status_code(api.post(
        "AddLoans", api.envelope(loans=[_loan(lumpSumLoan={**_loan()["lumpSumLoan"], "amountIssued": -5.0})]),
        headers={"BatchReference": unique("B")}))),
    "zero_credit_limit_rejected": lambda r: _add(r, m.running_account_loan(_number(), WHO.active[0], unique("R"),
                                                                           credit_limit=0, balance=0)),
    "unknown_loan_number_400": _get_unknown_loan,
    "empty_repayments_batch_accepted": lambda r: _empty_batch(r, "Repayments", "repayments"),
    # batches
    "results_shown_while_processing": _batch_while_processing,
    "success_reported_as_partial": lambda r: _add(r, _loan(), _loan()),
    "all_rejected_reported_as_partial": lambda r: _add(r, _loan(WHO.unknown), _loan(WHO.unknown)),
    "report_count_counts_accepted": _report_count,
    "later_errors_without_field_name": _two_errors,
    "unknown_batch_d11": _unknown_batch,
    "reused_reference_answered_202": _reused_reference,
    "batch_limit_off_by_one": _over_limit,
    "large_batch_truncated": _large_batch,
}
