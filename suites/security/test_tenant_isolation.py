"""Tenant isolation: another lender replays every operation that names a loan or a batch of the owner and
neither learns nor changes anything (SEC-007, SEC-008, SEC-009)."""

from __future__ import annotations

import pytest

from pcr_conformance import expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s

pytestmark = pytest.mark.capability("reporting")


@pytest.mark.verifies("SEC-007", "SEC-008", "SEC-009")
def test_other_lender_cannot_read_or_change_a_loan(pcr_clients, pcr_data):
    """Another lender's GetLoan, changes, payments, delays, termination and batch status all miss the owner's loan."""
    owner, intruder = pcr_clients.get("lender"), pcr_clients.get("second_lender")
    person = pcr_data.person("income")
    number = pcr_data.loan_number()
    loan = m.lump_sum_loan(number, person, pcr_data.report_reference(),
                           lenderMarketingName=s.unique_name(pcr_data, "Owned"))
    sub = owner.submit("AddLoans", [loan])
    expect.status(sub.response, 202, "RPT-002", "AddLoans")
    expect.batch_state(owner.wait_batch(sub.batch_reference), "FinishedSuccess", "BAT-002")
    before = s.loan_of(owner, number, "SEC-008")

    # SEC-007: reading it answers exactly as an unknown loan does.
    theirs = intruder.get_loan(number)
    unknown = intruder.get_loan(pcr_data.loan_number())
    expect.status(theirs, 404, "SEC-007", "GetLoan of another lender's loan")
    expect.error_code(theirs, "D11", "SEC-007", "GetLoan of another lender's loan")
    expect.that(expect.error_codes(theirs) == expect.error_codes(unknown), "SEC-007", "GetLoan",
                f"the same answer as for an unknown loan ({expect.error_codes(unknown)})", expect.error_codes(theirs))
    expect.that(person not in theirs.text and loan["lenderMarketingName"] not in theirs.text, "SEC-007", "GetLoan",
                "nothing of the loan in the answer", theirs.text[:300])

    # SEC-008: every changing operation, replayed by the intruder, is rejected per report with D11.
    attempts = {
        "UpdateLoans": [m.lump_sum_loan(number, person, pcr_data.report_reference(), amount_issued=1,
                                        amount_paid=1, balance=1, lenderMarketingName="Hijacked")],
        "Repayments": [m.repayment(number, pcr_data.report_reference(), balance=0)],
        "DelayedRepayments": [m.delayed_repayment(number, pcr_data.report_reference(), is_foreclosed=True)],
        "TerminateLoans": [m.termination(number, pcr_data.report_reference())],
    }
    attempts["UpdateLoans"].append(m.lump_sum_loan(number, person, pcr_data.report_reference(),
                                                   report_type="Cancellation"))
    attempts["TerminateLoans"].append(m.termination(number, pcr_data.report_reference(), report_type="Cancellation"))
    for operation, reports in attempts.items():
        status = intruder.submit_and_wait(operation, reports)
        for report in reports:
            expect.report_rejected(status, report["reportReference"], "D11", "SEC-008")
    after = s.loan_of(owner, number, "SEC-008")
    mismatch = s.subset_mismatch(after, before)
    expect.that(mismatch is None and after == before, "SEC-008", "GetLoan by the owner",
                "the loan unchanged by the other lender's reports", mismatch or "members added")

    # SEC-009: the owner's batch is unknown to the intruder.
    resp = intruder.batch_status(sub.batch_reference)
    expect.status(resp, 404, "SEC-009", "GetBatchStatus of another lender's batch")
    expect.error_code(resp, "D60", "SEC-009", "GetBatchStatus of another lender's batch")
    expect.that(number["number"] not in resp.text and loan["reportReference"] not in resp.text, "SEC-009",
                "GetBatchStatus", "nothing of the batch in the answer", resp.text[:300])


@pytest.mark.verifies("SEC-009")
def test_same_batch_reference_for_two_lenders(pcr_clients, pcr_data):
    """Batch references are per owner: another lender using the same reference neither sees nor clashes with it."""
    owner, other = pcr_clients.get("lender"), pcr_clients.get("second_lender")
    reference = pcr_data.batch_reference("shared")
    mine = m.lump_sum_loan(pcr_data.loan_number(), pcr_data.person("income"), pcr_data.report_reference())
    theirs = m.lump_sum_loan(pcr_data.loan_number(), pcr_data.person("income"), pcr_data.report_reference())
    s.report_all_accepted(owner, "AddLoans", [mine], "SEC-009", batch_reference=reference)
    status = other.submit_and_wait("AddLoans", [theirs], batch_reference=reference)
    expect.batch_state(status, "FinishedSuccess", "SEC-009")
    refs = [r.get("reportReference") for r in status.get("reportResults") or []]
    expect.that(refs == [theirs["reportReference"]], "SEC-009", "GetBatchStatus",
                f"only the caller's own report {theirs['reportReference']}", refs)
    own = owner.wait_batch(reference)
    refs = [r.get("reportReference") for r in own.get("reportResults") or []]
    expect.that(refs == [mine["reportReference"]], "SEC-009", "GetBatchStatus",
                f"only the owner's report {mine['reportReference']}", refs)
