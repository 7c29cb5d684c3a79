"""Transfer of a loan to another lender: the old lender ends it as transferred, the new one reports it again."""

from __future__ import annotations

import pytest

from pcr_conformance import expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s

pytestmark = [pytest.mark.capability("reporting"), pytest.mark.capability("transfer")]


@pytest.mark.verifies("RPT-007", "RPT-008")
def test_loan_transferred_to_another_lender(pcr_clients, pcr_data):
    """A loan ended as transferred is re-activated by the new lender's transfer report; failed conditions give D12."""
    old, new = pcr_clients.get("lender"), pcr_clients.get("second_lender")
    person = pcr_data.person("income")
    number = pcr_data.loan_number()
    s.report_all_accepted(old, "AddLoans", [m.lump_sum_loan(number, person, pcr_data.report_reference())], "RPT-007")

    # Before the old lender ends it, a transfer report is refused (condition: stored loan ended as transferred).
    early = m.lump_sum_loan(number, person, pcr_data.report_reference(), isTransferredFromAnotherLender=True)
    status = new.submit_and_wait("AddLoans", [early])
    expect.report_rejected(status, early["reportReference"], "D12", "RPT-008")

    s.report_all_accepted(old, "TerminateLoans", [m.termination(number, pcr_data.report_reference(),
                                                                transferred=True)], "RPT-007")

    # Another first borrower, then a report without the transfer flag: both refused.
    other_borrower = m.lump_sum_loan(number, pcr_data.person("income"), pcr_data.report_reference(),
                                     isTransferredFromAnotherLender=True)
    status = new.submit_and_wait("AddLoans", [other_borrower])
    expect.report_rejected(status, other_borrower["reportReference"], "D12", "RPT-008")
    unflagged = m.lump_sum_loan(number, person, pcr_data.report_reference())
    status = new.submit_and_wait("AddLoans", [unflagged])
    expect.batch_state(status, "FinishedFailed", "RPT-008")
    expect.report_rejected(status, unflagged["reportReference"], "D10", "RPT-008")

    name = s.unique_name(pcr_data, "Transferred")
    transfer = m.lump_sum_loan(number, person, pcr_data.report_reference(), isTransferredFromAnotherLender=True,
                               lenderMarketingName=name, amount_issued=8000, balance=7000)
    s.report_all_accepted(new, "AddLoans", [transfer], "RPT-007")
    loan = s.loan_of(new, number, "RPT-007")
    expect.that(loan.get("status") == "Active" and loan.get("lenderMarketingName") == name
                and loan.get("owner") == new.owner, "RPT-007", "GetLoan",
                f"the loan Active with the new lender's data and owner {new.owner}",
                f"status {loan.get('status')}, name {loan.get('lenderMarketingName')}, owner {loan.get('owner')}")
    resp = old.get_loan(number)
    expect.status(resp, 404, "RPT-007", "GetLoan by the old lender after the transfer")
