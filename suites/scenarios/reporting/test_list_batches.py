"""ListBatches, an operation contract version 2027.1 adds (BAT-014): the caller's own batches, newest first.

Collected only when the version judged has BAT-014 (the plugin leaves a test of another version's
requirement out of the session instead of failing it)."""

from __future__ import annotations

import datetime as dt

import pytest

from pcr_conformance import expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s

pytestmark = pytest.mark.capability("reporting")


@pytest.mark.verifies("BAT-014")
def test_list_batches_shows_own_batches_newest_first(pcr_clients, pcr_data):
    """Two batches of the lender appear newest first with their operation and state; another lender's batch,
    sent in between, never does."""
    lender, other = pcr_clients.get("lender"), pcr_clients.get("second_lender")
    # A second earlier than now: the register's clock and ours may differ by less than that.
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    person = pcr_data.person("income")
    older = lender.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())])
    expect.status(older.response, 202, "BAT-014", "AddLoans (the older batch)")
    theirs = other.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())])
    expect.status(theirs.response, 202, "BAT-014", "AddLoans of another lender")
    newer = lender.submit("AddLoans", [m.lump_sum_loan(pcr_data.loan_number(), person, pcr_data.report_reference())])
    expect.status(newer.response, 202, "BAT-014", "AddLoans (the newer batch)")
    for batch in (older, newer):
        expect.batch_state(lender.wait_batch(batch.batch_reference), "FinishedSuccess", "BAT-014")

    resp = lender.call("ListBatches", lender.envelope(receivedFromUtc=since))
    expect.status(resp, 200, "BAT-014", "ListBatches")
    listed = [b for b in (expect.body_of(resp) or {}).get("batches") or [] if isinstance(b, dict)]
    references = [b.get("batchReference") for b in listed]
    expect.that(theirs.batch_reference not in references, "BAT-014", "ListBatches",
                "no batch of another lender", references)
    mine = [r for r in references if r in (older.batch_reference, newer.batch_reference)]
    expect.that(mine == [newer.batch_reference, older.batch_reference], "BAT-014", "ListBatches",
                f"both batches, newest first: {[newer.batch_reference, older.batch_reference]}", references)
    entry = next(b for b in listed if b.get("batchReference") == newer.batch_reference)
    mismatch = s.subset_mismatch(entry, {"operation": "AddLoans", "batchStatus": "FinishedSuccess", "reportCount": 1})
    expect.that(mismatch is None, "BAT-014", "ListBatches", "operation, state and report count of the batch",
                mismatch)
