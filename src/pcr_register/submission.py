"""Reporting operations, synchronous part (interfaces.md §2): submission of a batch and GetBatchStatus.

Submission stores the batch durably and answers 202 (RPT-002); a repeated BatchReference with the same
content is the same batch (BAT-008), with other content D61 (BAT-009). processing.py applies the stored
batch; GetBatchStatus reads its result.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pcr_register import identifiers, load_faults
from pcr_register.clock import normalise_ts, now_utc
from pcr_register.errors import ApiError, fail, item
from pcr_register.identity import Caller
from pcr_register.state import Register

COLLECTION = {
    "AddLoans": "loans",
    "UpdateLoans": "loans",
    "Repayments": "repayments",
    "DelayedRepayments": "delayedRepayments",
    "TerminateLoans": "loanTerminations",
}
BATCH_REFERENCE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
BATCH_REFERENCE_101 = re.compile(r"^[A-Za-z0-9_.:-]{1,101}$")  # fault batch_reference_101_chars (RPT-001)
FINAL = ("FinishedSuccess", "FinishedPartialSuccess", "FinishedFailed")


def submit(reg: Register, caller: Caller, operation: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict]:
    """Store a batch and answer 202 once it is durable (RPT-002, BAT-008, BAT-009, BAT-011)."""
    reference = headers.get("batchreference")
    pattern = BATCH_REFERENCE_101 if reg.faults.on("batch_reference_101_chars") else BATCH_REFERENCE
    if reference is None or not pattern.match(reference):  # RPT-001
        raise fail(400, "D06", "BatchReference")
    reports = body.get(COLLECTION[operation])
    empty_allowed = operation == "Repayments" and reg.faults.on("empty_repayments_batch_accepted")  # breaks RPT-040
    if not isinstance(reports, list) or (not reports and not empty_allowed):  # RPT-040
        raise fail(400, "D01", f"/{COLLECTION[operation]}", "A batch has at least one report.")
    if operation in ("AddLoans", "UpdateLoans"):
        _check_person_layouts(reports)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{operation}\n{canonical}".encode()).hexdigest()
    owner = caller.org.key
    received = now_utc()
    if load_faults.lose_batch(reg.faults, operation):  # breaks PRF-004: acknowledged, never stored
        return 202, {"batchReference": reference, "statusMessage": "Accepted", "receivedTimeUtc": received}
    find = "SELECT id, body_hash, received_utc FROM batches WHERE owner=? AND reference=?"
    with reg.storage.write() as con:
        row = con.execute(find, (owner, reference)).fetchone()
        if row is None:
            # DO NOTHING: on PostgreSQL another process may insert the same reference between the SELECT and
            # here; then its committed row is the one this submission is compared with (BAT-008/009).
            inserted = con.execute(
                "INSERT INTO batches(owner, reference, operation, body_hash, body, owner_json, report_count,"
                " received_utc, status) VALUES (?,?,?,?,?,?,?,?, 'Processing') ON CONFLICT(owner, reference) DO NOTHING",
                (owner, reference, operation, digest, canonical, json.dumps(body.get("owner")), len(reports), received),
            ).rowcount
            if not inserted:
                row = con.execute(find, (owner, reference)).fetchone()
        if row is not None:
            if row["body_hash"] != digest and not reg.faults.on("reused_reference_answered_202"):  # BAT-009
                raise fail(409, "D61", "BatchReference")
            if reg.faults.on("batch_reference_not_idempotent") and row["body_hash"] == digest:  # breaks BAT-008
                con.execute("UPDATE batches SET status='Processing', accepted=0, rejected=0, finished_utc=NULL, "
                            "body=? WHERE id=?", (canonical, row["id"]))
                con.execute("DELETE FROM batch_results WHERE batch_id=?", (row["id"],))
            received = row["received_utc"]
    reg.wake.set()
    answer = {"batchReference": reference, "statusMessage": "Accepted", "receivedTimeUtc": received}
    if reg.faults.on("accepted_answer_with_state"):  # breaks RPT-002: a processing result in the 202
        answer["batchStatus"] = "Processing"
    return 202, answer


def _check_person_layouts(loans: list[Any]) -> None:
    """IDN-001: a malformed code or impossible birth date of a borrower or guarantor is 400 D04 for the whole
    request; only a wrong check character is a per-report rejection."""
    errors = []
    for i, loan in enumerate(loans):
        if not isinstance(loan, dict):
            continue
        for group in ("borrowers", "guarantors"):
            for j, person in enumerate(loan.get(group) or []):
                if isinstance(person, dict) and not identifiers.has_valid_hetu_layout(str(person.get("idCode", ""))):
                    errors.append(item("D04", f"/loans/{i}/{group}/{j}/idCode"))
    if errors:
        raise ApiError(400, errors[:50])


def get_batch_status(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    reference = body.get("batchReference")
    con = reg.storage.conn()
    if reg.faults.on("batch_status_other_lender"):  # breaks SEC-009
        row = con.execute("SELECT * FROM batches WHERE reference=? ORDER BY owner=? DESC LIMIT 1",
                          (reference, caller.org.key)).fetchone()
    else:
        row = con.execute("SELECT * FROM batches WHERE owner=? AND reference=?", (caller.org.key, reference)).fetchone()
    if row is None:  # BAT-007, SEC-009: another owner's batch looks unknown
        if reg.faults.on("unknown_batch_d11") and con.execute(
                "SELECT 1 FROM batches WHERE reference=?", (reference,)).fetchone() is None:  # breaks BAT-007
            raise fail(404, "D11", "batchReference")
        raise fail(404, "D60", "batchReference")
    out: dict[str, Any] = {
        "batchReference": row["reference"],
        "batchStatus": row["status"],
        "reportCount": row["report_count"],
        "acceptedCount": row["accepted"],
        "rejectedCount": row["rejected"],
        "receivedTimeUtc": row["received_utc"],
    }
    results: list[Any] = []
    if row["status"] in FINAL and load_faults.held_back(reg.faults, row["received_utc"]):  # breaks PRF-002
        out.update(batchStatus="Processing", acceptedCount=0, rejectedCount=0)
    elif row["status"] in FINAL:
        out["finishedTimeUtc"] = row["finished_utc"]
        res = con.execute("SELECT results FROM batch_results WHERE batch_id=?", (row["id"],)).fetchone()
        results = json.loads(res[0]) if res else []
        if reg.faults.on("report_count_counts_accepted"):  # breaks BAT-005
            out["reportCount"] = row["accepted"]
    elif reg.faults.on("results_shown_while_processing") and row["body"]:  # breaks BAT-001: an optimistic answer
        reports = json.loads(row["body"]).get(COLLECTION[row["operation"]]) or []
        results = [{"reportReference": r.get("reportReference"), "status": "Accepted", "errorResponses": []}
                   for r in reports if isinstance(r, dict)]
    out["reportResults"] = results
    return 200, out


# BAT-014 (contract version 2027.1): at most this many batches in one ListBatches answer, newest first.
LIST_BATCHES_MAX = 1000


def list_batches(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    """ListBatches (2027.1, BAT-014): the caller's own batches, newest first, received at or after
    receivedFromUtc when given; never another owner's (SEC-009)."""
    since = normalise_ts(str(body.get("receivedFromUtc") or ""))
    rows = reg.storage.conn().execute(
        "SELECT reference, operation, status, report_count, received_utc FROM batches WHERE owner=? AND received_utc>=?"
        " ORDER BY id DESC LIMIT ?", (caller.org.key, since, LIST_BATCHES_MAX)).fetchall()
    return 200, {"batches": [{"batchReference": r["reference"], "operation": r["operation"], "batchStatus": r["status"],
                              "reportCount": r["report_count"], "receivedTimeUtc": r["received_utc"]} for r in rows]}


__all__ = ["COLLECTION", "FINAL", "LIST_BATCHES_MAX", "get_batch_status", "list_batches", "submit"]
