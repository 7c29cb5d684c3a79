"""The reporting lender's flows over one loan's life: report, check, change, pay, delay, end, cancel, restore.

Each test reuses its loans across the checks of one flow; GetLoan is the lender's view of what was stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from pcr_conformance import contract, expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s

pytestmark = pytest.mark.capability("reporting")


def _same(stored: dict[str, Any], sent: dict[str, Any], members: tuple[str, ...], requirement: str, what: str) -> None:
    for member in members:
        mismatch = s.subset_mismatch(stored.get(member), sent.get(member), f"/{member}")
        expect.that(mismatch is None, requirement, "GetLoan", f"{what}: {member} as reported {sent.get(member)!r}",
                    mismatch)


@pytest.mark.verifies("RPT-003", "RPT-013", "RPT-002", "BAT-002", "BAT-005")
def test_new_loan_of_each_type_is_stored(pcr_clients, pcr_data):
    """A lump-sum loan (two borrowers), a running-account loan and a leasing contract reported in one batch are
    stored as reported."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    # RPT-003: every list position is read back, so the lump-sum loan has a second borrower.
    reports = [
        m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), borrowersCount=2,
                        borrowers=[m.borrower(person), m.borrower(pcr_data.person("income"))]),
        m.running_account_loan(pcr_data.loan_number(), person, pcr_data.report_reference()),
        m.leasing_loan(pcr_data.loan_number(), person, pcr_data.report_reference()),
    ]
    sub = lender.submit("AddLoans", reports)
    expect.status(sub.response, 202, "RPT-002", "AddLoans")
    accepted = contract.json_of(sub.response, "RPT-002", "AddLoans")
    # The 202 answer's members are modelled (BatchAccepted): checked as such (ENV-023).
    s.modelled_value(accepted.get("batchReference") == sub.batch_reference, "AddLoans",
                     f"batchReference {sub.batch_reference}", accepted.get("batchReference"))
    leaked = [k for k in ("batchStatus", "reportResults", "acceptedCount", "rejectedCount") if k in accepted]
    expect.that(not leaked, "RPT-002", "AddLoans", "no processing result in the 202 answer", leaked)

    status = lender.wait_batch(sub.batch_reference)
    for report in reports:  # RPT-013 first: a rejected type is a gap of RPT-013, not only of the batch state
        expect.report_accepted(status, report["reportReference"], "RPT-013")
    expect.batch_state(status, "FinishedSuccess", "BAT-002")
    expect.that(status.get("reportCount") == 3 and len(status.get("reportResults") or []) == 3, "BAT-005",
                "GetBatchStatus", "reportCount 3 and 3 report results",
                f"reportCount {status.get('reportCount')}, {len(status.get('reportResults') or [])} results")
    for report in reports:
        expect.report_accepted(status, report["reportReference"], "BAT-002")

    type_objects = {"LumpSumLoan": "lumpSumLoan", "RunningAccountLoan": "runningAccountLoan",
                    "Leasing": "leasingContract"}
    for report in reports:
        loan = s.loan_of(lender, report["loanNumber"], "RPT-003")
        expect.that(loan.get("status") == "Active", "RPT-003", "GetLoan", "status Active", loan.get("status"))
        _same(loan, report, ("loanNumber", "loanType", "contractDate", "borrowers", "borrowersCount",
                             "consumerCredit", "interest", "lenderMarketingName",
                             type_objects[report["loanType"]]), "RPT-003", report["loanType"])


@pytest.mark.verifies("RPT-013", "RPT-009", "RPT-003")
def test_kela_guarantee_receivable_is_stored(pcr_clients, pcr_data):
    """Kela's guarantee receivable for a student loan is accepted and stored with its loan type and purpose."""
    kela = pcr_clients.get("kela")
    report = m.guarantee_receivable_loan(pcr_data.loan_number(), pcr_data.person("income"),
                                         pcr_data.report_reference())
    s.report_all_accepted(kela, "AddLoans", [report], "RPT-013")
    loan = s.loan_of(kela, report["loanNumber"], "RPT-003")
    _same(loan, report, ("loanType", "lumpSumLoan"), "RPT-003", "guarantee receivable")


@pytest.mark.verifies("RPT-015", "RPT-017")
def test_change_and_error_correction_replace_loan_data(pcr_clients, pcr_data):
    """An ordinary change and then an error correction each replace the stored loan data."""
    lender = pcr_clients.get("lender")
    number, person = pcr_data.loan_number(), pcr_data.person("income")
    s.report_all_accepted(lender, "AddLoans", [m.lump_sum_loan(number, person, pcr_data.report_reference())],
                          "RPT-015")

    change = m.lump_sum_loan(number, person, pcr_data.report_reference(), amount_issued=12000, balance=11500,
                             lenderMarketingName=s.unique_name(pcr_data, "Changed"))
    s.report_all_accepted(lender, "UpdateLoans", [change], "RPT-015")
    loan = s.loan_of(lender, number, "RPT-015")
    _same(loan, change, ("lenderMarketingName", "lumpSumLoan"), "RPT-015", "after an ordinary change")

    correction = m.lump_sum_loan(number, person, pcr_data.report_reference(), report_type="ErrorCorrection",
                                 amount_issued=11000, balance=10800, contractDate=m.days_ago(190),
                                 lenderMarketingName=s.unique_name(pcr_data, "Corrected"))
    s.report_all_accepted(lender, "UpdateLoans", [correction], "RPT-017")
    loan = s.loan_of(lender, number, "RPT-017")
    _same(loan, correction, ("lenderMarketingName", "lumpSumLoan", "contractDate"), "RPT-017",
          "after an error correction")
    expect.that(loan.get("status") == "Active", "RPT-017", "GetLoan", "status Active", loan.get("status"))


@pytest.mark.verifies("RPT-022", "RPT-023", "RPT-024")
def test_repayments_update_balances(pcr_clients, pcr_data):
    """A repayment, a balance-only repayment and a running-account balance each update the stored balance."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    lump_no, running_no = pcr_data.loan_number(), pcr_data.loan_number()
    s.report_all_accepted(lender, "AddLoans", [
        m.lump_sum_loan(lump_no, person, pcr_data.report_reference(), amount_issued=10000, balance=10000),
        m.running_account_loan(running_no, person, pcr_data.report_reference(), balance=1200),
    ], "RPT-022")

    payment = m.repayment(lump_no, pcr_data.report_reference(), balance=9321.5)
    s.report_all_accepted(lender, "Repayments", [payment], "RPT-022")
    loan = s.loan_of(lender, lump_no, "RPT-022")
    balance = (loan.get("lumpSumLoan") or {}).get("balance")
    expect.that(balance == 9321.5, "RPT-022", "GetLoan", "lumpSumLoan.balance 9321.5 after the repayment", balance)
    refs = [r.get("reportReference") for r in loan.get("repayments") or []]
    expect.that(payment["reportReference"] in refs, "RPT-022", "GetLoan",
                f"the repayment {payment['reportReference']} among the loan's repayments", refs)

    balance_only = m.balance_only_repayment(lump_no, pcr_data.report_reference(), balance=9000.25)
    s.report_all_accepted(lender, "Repayments", [balance_only], "RPT-023")
    loan = s.loan_of(lender, lump_no, "RPT-023")
    balance = (loan.get("lumpSumLoan") or {}).get("balance")
    expect.that(balance == 9000.25, "RPT-023", "GetLoan", "lumpSumLoan.balance 9000.25 after the balance-only report",
                balance)

    running = m.running_account_repayment(running_no, pcr_data.report_reference(), balance=777.77)
    s.report_all_accepted(lender, "Repayments", [running], "RPT-024")
    loan = s.loan_of(lender, running_no, "RPT-024")
    balance = (loan.get("runningAccountLoan") or {}).get("balance")
    expect.that(balance == 777.77, "RPT-024", "GetLoan", "runningAccountLoan.balance 777.77", balance)


@pytest.mark.verifies("RPT-026", "RPT-030", "RPT-031")
def test_delay_clearing_and_acceleration(pcr_clients, pcr_data):
    """A delay is recorded, cleared by isDelay false, and an acceleration is recorded with its date."""
    lender = pcr_clients.get("lender")
    number = pcr_data.loan_number()
    s.report_all_accepted(lender, "AddLoans", [m.lump_sum_loan(number, pcr_data.person("income"),
                                                               pcr_data.report_reference())], "RPT-026")
    # RPT-026: two instalments, so that the second and later items of the list are checked too
    amounts = [{"delayedInstalment": 321.0, "originalDueDate": m.days_ago(105)},
               {"delayedInstalment": 123.0, "originalDueDate": m.days_ago(75)}]
    s.report_all_accepted(lender, "DelayedRepayments", [
        m.delayed_repayment(number, pcr_data.report_reference(), delayedAmounts=amounts)], "RPT-026")
    loan = s.loan_of(lender, number, "RPT-026")
    stored = loan.get("delayedAmounts") or []
    mismatch = s.subset_mismatch(stored, amounts)
    expect.that(mismatch is None and len(stored) == len(amounts), "RPT-026", "GetLoan",
                f"the delayed instalments {amounts}", mismatch or stored)

    s.report_all_accepted(lender, "DelayedRepayments", [m.clear_delay(number, pcr_data.report_reference())],
                          "RPT-030")
    loan = s.loan_of(lender, number, "RPT-030")
    expect.that(not loan.get("delayedAmounts"), "RPT-030", "GetLoan", "no delayed amounts after clearing",
                loan.get("delayedAmounts"))

    foreclosed_on = m.days_ago(3)
    s.report_all_accepted(lender, "DelayedRepayments", [
        m.delayed_repayment(number, pcr_data.report_reference(), is_foreclosed=True, foreclosure_date=foreclosed_on)],
        "RPT-031")
    loan = s.loan_of(lender, number, "RPT-031")
    expect.that(loan.get("isForeclosed") is True and loan.get("foreclosureDate") == foreclosed_on, "RPT-031",
                "GetLoan", f"isForeclosed true with foreclosureDate {foreclosed_on}",
                f"isForeclosed {loan.get('isForeclosed')}, foreclosureDate {loan.get('foreclosureDate')}")

    # The date-time form without a zone (as a public client sends it) is recorded by its date part.
    again_on = m.days_ago(2)
    s.report_all_accepted(lender, "DelayedRepayments", [
        m.delayed_repayment(number, pcr_data.report_reference(), is_foreclosed=True,
                            foreclosure_date=f"{again_on}T00:00:00")], "RPT-031")
    loan = s.loan_of(lender, number, "RPT-031")
    expect.that(loan.get("foreclosureDate") == again_on, "RPT-031", "GetLoan",
                f"foreclosureDate {again_on} from {again_on}T00:00:00", loan.get("foreclosureDate"))


@pytest.mark.verifies("RPT-032", "RPT-020")
def test_termination_and_end_date_correction(pcr_clients, pcr_data):
    """A termination ends the loan, and an error correction to TerminateLoans corrects its end date."""
    lender = pcr_clients.get("lender")
    number = pcr_data.loan_number()
    s.report_all_accepted(lender, "AddLoans", [m.lump_sum_loan(number, pcr_data.person("income"),
                                                               pcr_data.report_reference())], "RPT-032")
    first_end = m.days_ago(2)
    s.report_all_accepted(lender, "TerminateLoans", [m.termination(number, pcr_data.report_reference(),
                                                                   end_date=first_end)], "RPT-032")
    loan = s.loan_of(lender, number, "RPT-032")
    end = (loan.get("termination") or {}).get("endDate")
    expect.that(loan.get("status") == "Ended" and end == first_end, "RPT-032", "GetLoan",
                f"status Ended with endDate {first_end}", f"status {loan.get('status')}, endDate {end}")

    corrected_end = m.days_ago(9)
    s.report_all_accepted(lender, "TerminateLoans", [
        m.termination(number, pcr_data.report_reference(), end_date=corrected_end, report_type="ErrorCorrection")],
        "RPT-020")
    loan = s.loan_of(lender, number, "RPT-020")
    end = (loan.get("termination") or {}).get("endDate")
    expect.that(loan.get("status") == "Ended" and end == corrected_end, "RPT-020", "GetLoan",
                f"status Ended with the corrected endDate {corrected_end}", f"status {loan.get('status')}, endDate {end}")


@pytest.mark.verifies("RPT-018", "RPT-019", "RPT-021")
def test_cancellation_and_restore_by_error_correction(pcr_clients, pcr_data):
    """A cancelled loan cannot be changed and is restored by an error correction to TerminateLoans."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    by_update, by_terminate = pcr_data.loan_number(), pcr_data.loan_number()
    s.report_all_accepted(lender, "AddLoans", [m.lump_sum_loan(by_update, person, pcr_data.report_reference()),
                                               m.lump_sum_loan(by_terminate, person, pcr_data.report_reference())],
                          "RPT-018")

    # Cancellation through UpdateLoans and through TerminateLoans, in one batch each.
    s.report_all_accepted(lender, "UpdateLoans", [
        m.lump_sum_loan(by_update, person, pcr_data.report_reference(), report_type="Cancellation")], "RPT-018")
    s.report_all_accepted(lender, "TerminateLoans", [
        m.termination(by_terminate, pcr_data.report_reference(), report_type="Cancellation")], "RPT-018")
    for number in (by_update, by_terminate):
        loan = s.loan_of(lender, number, "RPT-018")
        expect.that(loan.get("status") == "Cancelled", "RPT-018", "GetLoan", f"loan {number['number']} Cancelled",
                    loan.get("status"))

    change = m.lump_sum_loan(by_update, person, pcr_data.report_reference(),
                             lenderMarketingName=s.unique_name(pcr_data, "After cancel"))
    status = lender.submit_and_wait("UpdateLoans", [change])
    expect.report_rejected(status, change["reportReference"], "D13", "RPT-021")
    loan = s.loan_of(lender, by_update, "RPT-021")
    expect.that(loan.get("status") == "Cancelled" and loan.get("lenderMarketingName") != change["lenderMarketingName"],
                "RPT-021", "GetLoan", "the cancelled loan unchanged",
                f"status {loan.get('status')}, lenderMarketingName {loan.get('lenderMarketingName')}")

    # Restore: to Active (isTerminated false) and to Ended (isTerminated true).
    s.report_all_accepted(lender, "TerminateLoans", [
        m.termination(by_update, pcr_data.report_reference(), report_type="ErrorCorrection", is_terminated=False),
        m.termination(by_terminate, pcr_data.report_reference(), report_type="ErrorCorrection", is_terminated=True),
    ], "RPT-019")
    restored = s.loan_of(lender, by_update, "RPT-019")
    expect.that(restored.get("status") == "Active", "RPT-019", "GetLoan", "status Active after the restore",
                restored.get("status"))
    ended = s.loan_of(lender, by_terminate, "RPT-019")
    expect.that(ended.get("status") == "Ended", "RPT-019", "GetLoan", "status Ended after a restore with isTerminated",
                ended.get("status"))
