"""Cleanup (docs/concepts.md#shared-environment): the loans a run reported are cancelled at the end, by the identity that reported
them, and only when the target calls for it."""

from __future__ import annotations

import pytest

from pcr_conformance import embedded
from pcr_conformance import messages as m
from pcr_conformance.calllog import CallLog
from pcr_conformance.cleanup import LoanLedger, cancel_all, should_clean
from pcr_conformance.client import Clients, HttpPool
from pcr_conformance.target import load_target
from pcr_conformance.testdata import TestData, load_pool


@pytest.mark.parametrize(("mode", "embedded_target", "read_only", "expected"), [
    ("auto", False, False, True),
    ("auto", True, False, False),
    ("auto", False, True, False),
    ("always", True, False, True),
    ("always", False, True, False),
    ("never", False, False, False),
])
def test_should_clean(mode: str, embedded_target: bool, read_only: bool, expected: bool) -> None:
    """Only a writable target is cleaned; auto leaves the throw-away embedded register alone."""
    assert should_clean(mode, embedded=embedded_target, read_only=read_only) is expected


def test_ledger_records_loan_numbers_once() -> None:
    """The same loan reported twice is cancelled once."""
    ledger = LoanLedger()
    number = {"type": "Other", "number": "PCR-x-1"}
    ledger.record("lender", [{"loanNumber": number}, {"loanNumber": dict(number)}, {"no": "loan"}])
    assert ledger.by_slot() == {"lender": [number]}


@pytest.mark.slow
def test_cancel_all_cancels_every_reported_loan() -> None:
    """Loans accepted through AddLoans are cancelled (GetLoan shows Cancelled); one already cancelled is counted."""
    reg = embedded.start(load_target("reference"))
    pool = HttpPool(reg.target)
    try:
        data = TestData(load_pool(reg.target.pool), run_id="cleanup-test")
        ledger = LoanLedger()
        clients = Clients(reg.target, pool, CallLog(), data.batch_reference, ledger=ledger)
        lender = clients.get("lender")
        first, second = data.loan_number(), data.loan_number()
        loans = [m.lump_sum_loan(n, data.person("income"), data.report_reference()) for n in (first, second)]
        assert lender.submit_and_wait("AddLoans", loans)["batchStatus"] == "FinishedSuccess"
        cancel_first = m.termination(first, data.report_reference(), report_type="Cancellation")
        assert lender.submit_and_wait("TerminateLoans", [cancel_first])["batchStatus"] == "FinishedSuccess"
        assert len(ledger) == 2

        result = cancel_all(ledger, Clients(reg.target, pool, CallLog(), data.batch_reference).get,
                            data.report_reference)

        assert result.submitted == 2 and result.cancelled + result.rejected == 2 and result.cancelled >= 1
        for number in (first, second):
            assert lender.get_loan(number).json()["loan"]["status"] == "Cancelled"
        assert "cancelled" in result.line()
    finally:
        pool.close()
        reg.stop()
