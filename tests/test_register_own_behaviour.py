"""What the reference register does where the contract is silent: its own choices, which no suite may check
(a register that chose otherwise is not wrong), checked here so that a change of them is seen.

benchmarks/mutation.py runs this file against a mutant of a module named in its REGISTER_TESTS when the
suites' tests leave the mutant alive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from register_fixtures import Api, Running, lump_sum_loan, people, start_register, termination, unique

WHO = people()


@pytest.fixture(scope="module")
def api(data_dir: Path) -> Iterator[Api]:
    running: Running = start_register(data_dir, db=data_dir / f"{unique('own')}.sqlite3")
    a = Api(running, "lender-a")
    yield a
    a.close()
    running.stop()


def _delay(number: dict, report_type: str = "NewReport") -> dict:
    due = (dt.date.today() - dt.timedelta(days=70)).isoformat()
    return {"reportReference": unique("R"), "reportType": report_type, "loanNumber": number, "isDelay": True,
            "delayedAmounts": [{"delayedInstalment": 300.0, "originalDueDate": due}], "isForeclosed": False}


def test_delay_cancellation_clears_the_delay(api: Api) -> None:
    """A Cancellation report to DelayedRepayments withdraws the loan's delay, even when it repeats the amounts.

    The public material leaves open what a cancellation means on this API (docs/register-facts.md, open
    questions); our register takes it as "the delay report was wrong": GetLoan then shows no delayed amounts."""
    loan = lump_sum_loan(unique("OWN"), WHO.active[1], unique("R"))
    assert api.add(loan)["batchStatus"] == "FinishedSuccess"
    number = loan["loanNumber"]
    api.run("DelayedRepayments", "delayedRepayments", [_delay(number)])
    assert api.get_loan(number).json()["loan"]["delayedAmounts"], "the delay to cancel was not recorded"
    status = api.run("DelayedRepayments", "delayedRepayments", [_delay(number, "Cancellation")])
    assert status["batchStatus"] == "FinishedSuccess", status
    stored = api.get_loan(number).json()["loan"]
    assert stored["delayedAmounts"] == [], f"a cancelled delay report left {stored['delayedAmounts']}"


def test_error_correction_saying_not_terminated_reactivates_an_ended_loan(api: Api) -> None:
    """A TerminateLoans ErrorCorrection with isTerminated false makes an ended loan Active again, without its
    termination: our reading of "the termination was an error" (RPT-020 names only the corrected end date)."""
    loan = lump_sum_loan(unique("OWN"), WHO.active[3], unique("R"))
    assert api.add(loan)["batchStatus"] == "FinishedSuccess"
    number = loan["loanNumber"]
    api.run("TerminateLoans", "loanTerminations", [termination(number, unique("R"))])
    assert api.get_loan(number).json()["loan"]["status"] == "Ended"
    status = api.run("TerminateLoans", "loanTerminations",
                     [termination(number, unique("R"), "ErrorCorrection", terminated=False)])
    assert status["batchStatus"] == "FinishedSuccess", status
    stored = api.get_loan(number).json()["loan"]
    assert (stored["status"], stored.get("termination")) == ("Active", None), stored


def test_extract_loans_are_never_disputed(api: Api) -> None:
    """accuracyIsDenied is false on every extract loan: the register has no way to record a borrower's dispute."""
    loan = lump_sum_loan(unique("OWN"), WHO.active[4], unique("R"))
    assert api.add(loan)["batchStatus"] == "FinishedSuccess"
    resp = api.extract(WHO.active[4])
    assert resp.status_code == 200, resp.text
    loans = resp.json()["creditRegisterExtract"]["loans"]
    assert loans and all(lo["accuracyIsDenied"] is False for lo in loans), loans


def test_repayment_cancellation_withdraws_the_payment(api: Api) -> None:
    """A Cancellation report to Repayments withdraws the payment of that date from GetLoan's repayments (our
    reading: the payment report was wrong; the public material leaves the meaning open)."""
    loan = lump_sum_loan(unique("OWN"), WHO.active[5], unique("R"))
    assert api.add(loan)["batchStatus"] == "FinishedSuccess"
    number = loan["loanNumber"]
    payment = {"reportReference": unique("R"), "reportType": "NewReport", "loanNumber": number,
               "loanType": "LumpSumLoan", "reportCreationTimeUtc": "2025-01-02T08:00:00Z",
               "lumpSumLoanRepayment": {"amortizationPaid": 500.0, "interestPaid": 40.0, "otherExpenses": 0.0,
                                        "paymentDate": "2025-01-01", "balance": 8500.0}}
    api.run("Repayments", "repayments", [payment])
    assert len(api.get_loan(number).json()["loan"]["repayments"]) == 1, "the payment to cancel was not recorded"
    status = api.run("Repayments", "repayments", [{**payment, "reportReference": unique("R"), "reportType": "Cancellation"}])
    assert status["batchStatus"] == "FinishedSuccess", status
    assert api.get_loan(number).json()["loan"]["repayments"] == []
