"""Batches as a whole: partial acceptance, duplicates inside and across batches, idempotent resubmission,
reference reuse, the processing states and a large batch."""

from __future__ import annotations

import time

import pytest

from pcr_conformance import contract, expect, judging
from pcr_conformance import messages as m
from pcr_conformance import suite as s
from pcr_conformance.client import FINAL_BATCH_STATES

pytestmark = pytest.mark.capability("reporting")

LARGE_BATCH = 1000


def _absent(client, number, requirement: str, why: str) -> None:
    resp = client.get_loan(number)
    expect.status(resp, 404, requirement, f"GetLoan of {number['number']} ({why})")


@pytest.mark.verifies("ENV-014", "ENV-023")
def test_batch_status_answer_matches_its_schema(pcr_clients, pcr_data):
    """The GetBatchStatus answer of a finished batch matches its documented schema, modelled parts included."""
    lender = pcr_clients.get("lender")
    sub = lender.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), pcr_data.person("income"),
                                                     pcr_data.report_reference())])
    expect.status(sub.response, 202, "BAT-002", "AddLoans")
    lender.wait_batch(sub.batch_reference)
    contract.conforms(lender.batch_status(sub.batch_reference), "GetBatchStatus")


@pytest.mark.verifies("BAT-003", "BAT-005", "BAT-006")
def test_partially_accepted_batch(pcr_clients, pcr_data):
    """A batch with valid and invalid reports ends FinishedPartialSuccess and stores only the valid ones."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    good = [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference()) for _ in range(2)]
    bad = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), amount_issued=1000,
                          amount_paid=2000, balance=1000)
    status = lender.submit_and_wait("AddLoans", [good[0], bad, good[1]])
    expect.batch_state(status, "FinishedPartialSuccess", "BAT-003")
    expect.that(status.get("reportCount") == 3 and len(status.get("reportResults") or []) == 3, "BAT-005",
                "GetBatchStatus", "reportCount 3 and 3 results",
                f"reportCount {status.get('reportCount')} with {len(status.get('reportResults') or [])} results")
    counts = (status.get("acceptedCount"), status.get("rejectedCount"))  # modelled members (ENV-023)
    s.modelled_value(counts == (2, 1), "GetBatchStatus", "acceptedCount 2, rejectedCount 1", counts)
    for report in good:
        expect.report_accepted(status, report["reportReference"], "BAT-003")
    expect.report_rejected(status, bad["reportReference"], "D02", "BAT-003")
    for error in expect.report_result(status, bad["reportReference"]).get("errorResponses") or []:
        ok = contract.error_item_problem(error, non_empty=True) is None
        expect.that(ok, "BAT-006", "GetBatchStatus", "each error with fieldName, errorCode and errorDescription", error)
    for report in good:
        s.loan_of(lender, report["loanNumber"], "BAT-003")
    _absent(lender, bad["loanNumber"], "BAT-003", "the rejected report must not be stored")


@pytest.mark.verifies("BAT-004", "BAT-006")
def test_fully_rejected_batch(pcr_clients, pcr_data):
    """A batch whose reports are all rejected ends FinishedFailed and stores nothing; every error is complete."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    two_borrowers = [m.borrower(person), m.borrower(pcr_data.person("income"))]
    reports = [
        m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), contractDate=m.days_ahead(5)),
        m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), borrowersCount=1,
                        borrowers=two_borrowers),
        # BAT-006 on the second and later errors of one report: a future contract date and borrowersCount 1
        m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(), contractDate=m.days_ahead(5),
                        borrowersCount=1, borrowers=two_borrowers),
    ]
    status = lender.submit_and_wait("AddLoans", reports)
    expect.batch_state(status, "FinishedFailed", "BAT-004")
    expect.report_rejected(status, reports[0]["reportReference"], "D36", "BAT-004")
    expect.report_rejected(status, reports[1]["reportReference"], "D23", "BAT-004")
    for report in reports:
        for error in expect.report_result(status, report["reportReference"]).get("errorResponses") or []:
            ok = contract.error_item_problem(error, non_empty=True) is None
            expect.that(ok, "BAT-006", "GetBatchStatus", "each error with fieldName, errorCode and errorDescription",
                        error)
    for report in reports:
        _absent(lender, report["loanNumber"], "BAT-004", "a FinishedFailed batch stores nothing")


@pytest.mark.verifies("RPT-006", "RPT-005")
def test_duplicate_loan_number_rejects_only_its_report(pcr_clients, pcr_data):
    """A report with a loan number already in the register is rejected; the rest of its batch is processed."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    existing = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference(),
                               lenderMarketingName=s.unique_name(pcr_data, "Original"))
    s.report_all_accepted(lender, "AddLoans", [existing], "RPT-005")

    duplicate = m.lump_sum_loan(existing["loanNumber"], person, pcr_data.report_reference(), amount_issued=99000,
                                lenderMarketingName=s.unique_name(pcr_data, "Duplicate"))
    fresh = [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference()) for _ in range(2)]
    status = lender.submit_and_wait("AddLoans", [fresh[0], duplicate, fresh[1]])
    expect.report_rejected(status, duplicate["reportReference"], "D10", "RPT-005")
    for report in fresh:
        expect.report_accepted(status, report["reportReference"], "RPT-006")
    expect.batch_state(status, "FinishedPartialSuccess", "RPT-006")
    for report in fresh:
        s.loan_of(lender, report["loanNumber"], "RPT-006")
    stored = s.loan_of(lender, existing["loanNumber"], "RPT-005")
    expect.that(stored.get("lenderMarketingName") == existing["lenderMarketingName"], "RPT-005", "GetLoan",
                "the first loan unchanged by the duplicate", stored.get("lenderMarketingName"))


@pytest.mark.verifies("RPT-034")
def test_duplicate_report_reference_in_batch(pcr_clients, pcr_data):
    """Reports repeating a reportReference within a batch are rejected with D50; the other report is processed."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    shared = pcr_data.report_reference()
    twins = [m.lump_sum_loan(pcr_data.loan_number(), person, shared) for _ in range(2)]
    other = m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())
    status = lender.submit_and_wait("AddLoans", [twins[0], other, twins[1]])
    results = [r for r in status.get("reportResults") or [] if r.get("reportReference") == shared]
    expect.that(len(results) == 2 and all(expect.is_rejected(r) and
                                          expect.carries_code(s.codes_of(r), "D50", "RPT-034", "GetBatchStatus")
                                          for r in results),
                "RPT-034", "GetBatchStatus", f"both reports {shared} Rejected (D50 in the model)",
                [(r.get("status"), s.codes_of(r)) for r in results])
    expect.report_accepted(status, other["reportReference"], "RPT-034")
    for twin in twins:
        _absent(lender, twin["loanNumber"], "RPT-034", "a report with a repeated reference is not stored")


@pytest.mark.verifies("BAT-008")
def test_resubmitting_a_batch_is_idempotent(pcr_clients, pcr_data):
    """The same batch reference with the same content is answered 202 again and processed only once."""
    lender = pcr_clients.get("lender")
    number = pcr_data.loan_number()
    loan = m.lump_sum_loan(number, pcr_data.person("income"), pcr_data.report_reference())
    first = lender.submit("AddLoans", [loan])
    expect.status(first.response, 202, "BAT-008", "AddLoans")
    before = lender.wait_batch(first.batch_reference)
    expect.batch_state(before, "FinishedSuccess", "BAT-008")

    again = lender.submit("AddLoans", [loan], batch_reference=first.batch_reference)
    expect.status(again.response, 202, "BAT-008", "AddLoans (resubmitted)")
    after = lender.wait_batch(first.batch_reference)
    # Processed again, the loan number would now be a duplicate (D10) and the batch would fail.
    expect.batch_state(after, "FinishedSuccess", "BAT-008")
    for member in ("receivedTimeUtc", "reportCount", "acceptedCount"):  # those the register shows
        expect.that(after.get(member) == before.get(member), "BAT-008", "GetBatchStatus",
                    f"{member} {before.get(member)!r} unchanged by the resubmission", after.get(member))

    payment = m.repayment(number, pcr_data.report_reference())
    sub = lender.submit("Repayments", [payment])
    lender.wait_batch(sub.batch_reference)
    lender.submit("Repayments", [payment], batch_reference=sub.batch_reference)
    lender.wait_batch(sub.batch_reference)
    stored = s.loan_of(lender, number, "BAT-008")
    refs = [r.get("reportReference") for r in stored.get("repayments") or []]
    expect.that(refs.count(payment["reportReference"]) == 1, "BAT-008", "GetLoan",
                "the resubmitted repayment recorded once", refs)


@pytest.mark.verifies("BAT-009")
def test_reusing_a_batch_reference_with_other_content(pcr_clients, pcr_data):
    """A batch reference reused with other content is refused with 409 D61."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    sub = lender.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())])
    expect.status(sub.response, 202, "BAT-009", "AddLoans")
    other = lender.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())],
                          batch_reference=sub.batch_reference)
    expect.status(other.response, 409, "BAT-009", "AddLoans (reference reused)")
    expect.error_code(other.response, "D61", "BAT-009", "AddLoans (reference reused)")
    contract.error_shape(other.response, "AddLoans")


@pytest.mark.verifies("BAT-013", "BAT-005", "BAT-001", "BAT-010")
def test_large_batch(pcr_clients, pcr_data):
    """A batch of 1 000 reports is processed completely, and GetBatchStatus moves from Processing to final."""
    lender = pcr_clients.get("lender")
    person = pcr_data.person("income")
    reports = [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())
               for _ in range(LARGE_BATCH)]
    sub = lender.submit("AddLoans", reports)
    accepted_at = time.monotonic()  # BAT-010's deadline runs from here, once for the polling below and wait_batch
    expect.status(sub.response, 202, "BAT-013", "AddLoans")

    # BAT-001: every state seen is Processing (with no results yet) until a final state, which then stays.
    seen: list[str] = []
    polling_ends = accepted_at + lender.batch_deadline_s()
    waits = s.backoff(most_s=0.05)  # often enough to see Processing (BAT-001) while the 1 000 reports are processed
    while True:
        resp = lender.batch_status(sub.batch_reference)
        expect.status(resp, 200, "BAT-001", "GetBatchStatus")
        body = contract.json_of(resp, "BAT-001", "GetBatchStatus")
        state = body.get("batchStatus")
        seen.append(state)
        if state != "Processing":
            break
        expect.that(not body.get("reportResults"), "BAT-001", "GetBatchStatus", "no report results while Processing",
                    f"{len(body.get('reportResults') or [])} results")
        if len(seen) > 2000 or time.monotonic() > polling_ends:
            break  # wait_batch below applies the deadline (BAT-010)
        time.sleep(next(waits))
    # The processing literal is implementation-defined (ENV-024); any string is "still processing" publicly.
    expect.that(isinstance(seen[-1], str) and seen[-1], "BAT-001", "GetBatchStatus", "a batchStatus", seen[-1])
    literal, _basis = judging.value("processing_literal", "Processing")
    s.modelled_value(seen[-1] in (literal, *FINAL_BATCH_STATES), "GetBatchStatus", f"{literal} or a final state",
                     seen[-1])
    status = lender.wait_batch(sub.batch_reference, accepted_at=accepted_at)
    expect.batch_state(status, "FinishedSuccess", "BAT-013")
    results = status.get("reportResults") or []
    counts = (status.get("reportCount"), len(results))
    expect.that(counts == (LARGE_BATCH, LARGE_BATCH), "BAT-005", "GetBatchStatus",
                f"reportCount, results = {LARGE_BATCH}, {LARGE_BATCH}", counts)
    modelled = (status.get("acceptedCount"), status.get("rejectedCount"))
    s.modelled_value(modelled == (LARGE_BATCH, 0), "GetBatchStatus",
                     f"acceptedCount, rejectedCount = {LARGE_BATCH}, 0", modelled)
    refs = {r.get("reportReference") for r in results if expect.is_accepted(r)}
    expect.that(refs == {r["reportReference"] for r in reports}, "BAT-013", "GetBatchStatus",
                "every report of the batch Accepted", f"{len(refs)} distinct accepted references")
    for report in (reports[0], reports[LARGE_BATCH // 2], reports[-1]):
        s.loan_of(lender, report["loanNumber"], "BAT-013")


@pytest.mark.verifies("BAT-012")
def test_batch_over_the_report_limit(pcr_clients, pcr_data):
    """A batch of more than 10 000 reports is refused with 413 D62."""
    lender = pcr_clients.get("lender")
    number = pcr_data.loan_number()
    # Small reports (a cleared delay, ~200 bytes) keep the body under the 5 MiB body limit (H13).
    reports = [m.clear_delay(number, f"R{i}") for i in range(10_001)]
    sub = lender.submit("DelayedRepayments", reports)
    expect.status(sub.response, 413, "BAT-012", "DelayedRepayments")
    expect.error_code(sub.response, "D62", "BAT-012", "DelayedRepayments")
