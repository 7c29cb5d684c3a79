"""Batch processing (worker side of the reporting APIs, interfaces.md §2).

The worker applies the business rules per report (partial acceptance, BAT-003) and writes every loan change
and the batch result in one transaction (BAT-001..006, BAT-011).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pcr_register import rules
from pcr_register.clock import now_utc, today
from pcr_register.errors import item
from pcr_register.loans import loan_key
from pcr_register.state import Register
from pcr_register.submission import COLLECTION


class _Batch:
    """In-memory overlay of the loans one batch touches; written in one transaction at the end."""

    def __init__(self, reg: Register, owner: str, owner_json: str, keys: set[str]) -> None:
        self.reg = reg
        self.owner = owner
        self.owner_json = owner_json
        self.now = now_utc()
        self.loans: dict[str, dict[str, Any] | None] = {k: None for k in keys}
        con = reg.storage.conn()
        for row in con.execute(f"SELECT * FROM loans WHERE loan_key IN ({reg.storage.json_values})",
                               (json.dumps(sorted(keys)),)):
            self.loans[row["loan_key"]] = {
                "loan_key": row["loan_key"], "owner": row["owner"], "owner_json": row["owner_json"],
                "status": row["status"], "data": json.loads(row["data"]),
                "delays": json.loads(row["delays"]) if row["delays"] else None,
                "termination": json.loads(row["termination"]) if row["termination"] else None,
                "last_repayment": json.loads(row["last_repayment"]) if row["last_repayment"] else None,
                "created_utc": row["created_utc"], "new": False, "persons": False,
            }
        self.changed: dict[str, None] = {}  # insertion-ordered set
        self.repayment_ops: list[tuple[str, str, str | None, str | None]] = []  # (op, key, date, data)

    def touch(self, key: str, persons: bool = False) -> None:
        loan = self.loans[key]
        assert loan is not None
        loan["last_updated_utc"] = self.now
        if persons:
            loan["persons"] = True
        self.changed[key] = None

    def own_loan(self, key: str, field: str) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
        """The caller's stored loan, or D11 (RPT-016, SEC-008: another lender's loan looks unknown)."""
        loan = self.loans.get(key)
        if loan is None or (loan["owner"] != self.owner and not self.reg.faults.on("allow_update_other_lender")):
            return None, [item("D11", field)]
        return loan, []

    def changeable_loan(self, key: str, field: str) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
        """own_loan, and D13 for a cancelled loan: only a TerminateLoans error correction may restore it
        (RPT-019, RPT-021)."""
        loan, errors = self.own_loan(key, field)
        if loan is not None and loan["status"] == "Cancelled":
            return None, [item("D13", field)]
        return loan, errors

    def write(self, con: Any) -> None:
        rows, person_rows, cleared = [], [], []
        for key in self.changed:
            loan = self.loans[key]
            assert loan is not None
            data = loan["data"]
            rows.append((
                key, loan["owner"], loan["owner_json"], loan["status"], str(data.get("loanType")),
                (data.get("consumerCredit") or {}).get("loanConsumerProtectionAct"),
                json.dumps(data, ensure_ascii=False),
                json.dumps(loan["delays"]) if loan["delays"] else None,
                json.dumps(loan["termination"]) if loan["termination"] else None,
                json.dumps(loan["last_repayment"]) if loan["last_repayment"] else None,
                loan["created_utc"], loan["last_updated_utc"],
            ))
            if loan["persons"]:
                if not loan["new"]:
                    cleared.append((key,))
                for b in data.get("borrowers") or []:
                    person_rows.append((str(b.get("idCode")), "B", key, b.get("businessId")))
                for g in data.get("guarantors") or []:
                    person_rows.append((str(g.get("idCode")), "G", key, None))
        con.executemany(
            "INSERT INTO loans(loan_key, owner, owner_json, status, loan_type, consumer_act, data, delays, termination,"
            " last_repayment, created_utc, last_updated_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(loan_key) DO UPDATE SET owner=excluded.owner, owner_json=excluded.owner_json,"
            " status=excluded.status, loan_type=excluded.loan_type, consumer_act=excluded.consumer_act,"
            " data=excluded.data, delays=excluded.delays, termination=excluded.termination,"
            " last_repayment=excluded.last_repayment, last_updated_utc=excluded.last_updated_utc", rows)
        if cleared:
            con.executemany("DELETE FROM loan_persons WHERE loan_key=?", cleared)
        con.executemany("INSERT INTO loan_persons(id_code, role, loan_key, business_id) VALUES (?,?,?,?)", person_rows)
        for op, key, date, data in self.repayment_ops:
            if op == "insert":
                con.execute("INSERT INTO repayments(loan_key, payment_date, data) VALUES (?,?,?)", (key, date, data))
            else:
                con.execute("DELETE FROM repayments WHERE loan_key=? AND payment_date=?", (key, date))


def _new_loan(batch: _Batch, key: str, report: dict[str, Any]) -> None:
    batch.loans[key] = {
        "loan_key": key, "owner": batch.owner, "owner_json": batch.owner_json, "status": "Active",
        "data": report, "delays": None, "termination": None, "last_repayment": None,
        "created_utc": batch.now, "new": True, "persons": True,
    }
    batch.touch(key, persons=True)


def _first_borrower(data: dict[str, Any]) -> str | None:
    borrowers = data.get("borrowers") or []
    return str(borrowers[0].get("idCode")) if borrowers else None


def _add_loan(batch: _Batch, report: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    key = loan_key(report.get("loanNumber"))
    stored = batch.loans.get(key)
    report_type = report.get("reportType", "NewReport")
    if report_type != "NewReport":
        return _update_loan(batch, report, prefix)
    if stored is None:
        _new_loan(batch, key, report)
        return []
    # RPT-007/RPT-008: the transfer exception to loan-number uniqueness
    transferred_out = stored["status"] == "Ended" and bool((stored["termination"] or {}).get("isTransferredToAnotherLender"))
    if report.get("isTransferredFromAnotherLender"):
        same_borrower = _first_borrower(stored["data"]) == _first_borrower(report)
        if transferred_out and (same_borrower or batch.reg.faults.on("transfer_ignores_borrower")):
            if batch.reg.faults.on("transfer_keeps_old_owner"):  # breaks RPT-007
                stored.update(status="Active", data=report, delays=None, termination=None, last_repayment=None)
                batch.touch(key, persons=True)
                return []
            stored.update(owner=batch.owner, owner_json=batch.owner_json, status="Active", data=report,
                          delays=None, termination=None, last_repayment=None)
            batch.touch(key, persons=True)
            return []
        return [item("D12", f"{prefix}/isTransferredFromAnotherLender")]
    if batch.reg.faults.on("accept_duplicate_loan_number"):  # breaks RPT-005: overwrites the stored loan
        stored.update(owner=batch.owner, owner_json=batch.owner_json, status="Active", data=report)
        batch.touch(key, persons=True)
        return []
    return [item("D10", f"{prefix}/loanNumber")]  # RPT-005


def _update_loan(batch: _Batch, report: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    key = loan_key(report.get("loanNumber"))
    faults = batch.reg.faults
    if faults.on("cancelled_loan_updatable"):  # breaks RPT-021: the D13 check skipped
        loan, errors = batch.own_loan(key, f"{prefix}/loanNumber")
    else:
        loan, errors = batch.changeable_loan(key, f"{prefix}/loanNumber")
    if loan is None:
        return errors
    if report.get("reportType") == "Cancellation":  # RPT-018
        loan["status"] = "Cancelled"
        batch.touch(key)
        return []
    # RPT-015 / RPT-017: an ordinary change or an error correction replaces the loan data
    kept = "update_keeps_old_data" if report.get("reportType", "NewReport") == "NewReport" else "error_correction_ignored"
    if faults.on(kept):  # breaks RPT-015 (NewReport) or RPT-017 (ErrorCorrection): accepted, nothing stored
        batch.touch(key)
        return []
    if "currencyCode" not in report and "currencyCode" in loan["data"]:
        report = {**report, "currencyCode": loan["data"]["currencyCode"]}
    loan["data"] = report
    batch.touch(key, persons=True)
    return []


def _repayment(batch: _Batch, report: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    key = loan_key(report.get("loanNumber"))
    loan, errors = batch.changeable_loan(key, f"{prefix}/loanNumber")
    if loan is None:
        return errors
    data = loan["data"]
    errors = rules.repayment_errors(report, prefix, data.get("contractDate"), str(data.get("loanType")), batch.reg.faults)
    if errors:
        return errors
    lump = report.get("lumpSumLoanRepayment")
    running = report.get("runningAccountLoanRepayment")
    payment = lump or running or {}
    date = payment.get("paymentDate") or payment.get("balanceDate")
    if report.get("reportType") == "Cancellation":
        batch.repayment_ops.append(("delete", key, date, None))
        batch.touch(key)
        return []
    parts = [payment.get(n) for n in ("amortizationPaid", "interestPaid", "otherExpenses")]
    parts = [p for p in parts if isinstance(p, int | float)]
    faults = batch.reg.faults
    ignored = (faults.on("repayment_ignored") or (faults.on("balance_only_repayment_ignored") and not parts)
               or (faults.on("running_balance_ignored") and running is not None))
    if not ignored:  # RPT-022/023/024: the repayment updates the balance
        if lump is not None and isinstance(data.get("lumpSumLoan"), dict):
            data["lumpSumLoan"] = {**data["lumpSumLoan"], "balance": lump.get("balance")}
        elif running is not None and isinstance(data.get("runningAccountLoan"), dict):
            data["runningAccountLoan"] = {**data["runningAccountLoan"], "balance": running.get("balance"),
                                          "balanceDate": running.get("balanceDate")}
    if parts:  # a balance-only report is no payment transaction (RPT-023)
        loan["last_repayment"] = {"paymentDate": date, "amount": round(sum(parts), 2),
                                  "currencyCode": data.get("currencyCode", "EUR")}
    stored = {"reportReference": report.get("reportReference"), **payment}  # GetLoan's StoredRepayment
    batch.repayment_ops.append(("insert", key, date, json.dumps(stored, ensure_ascii=False)))
    batch.touch(key)
    return []


def _delay(batch: _Batch, report: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    key = loan_key(report.get("loanNumber"))
    loan, errors = batch.changeable_loan(key, f"{prefix}/loanNumber")
    faults = batch.reg.faults
    if loan is None:
        return [] if faults.on("unknown_loan_accepted_by_delays") and batch.loans.get(key) is None else errors
    if report.get("reportType") == "Cancellation":
        loan["delays"] = None
        batch.touch(key)
        return []
    errors = rules.delay_errors(report, prefix, loan["data"].get("contractDate"), batch.reg.faults, today())
    if errors:
        return errors
    # RPT-026/030/031: each report replaces the delay state; isDelay false clears it
    amounts = report.get("delayedAmounts") or [] if report.get("isDelay") else []
    if faults.on("second_delayed_amount_dropped"):  # breaks RPT-026: the first list item only
        amounts = amounts[:1]
    if faults.on("delay_not_cleared") and not report.get("isDelay") and loan["delays"]:  # breaks RPT-030
        amounts = loan["delays"].get("delayedAmounts") or []
    loan["delays"] = {
        "isDelay": bool(report.get("isDelay")),
        "delayedAmounts": amounts,
        "isForeclosed": bool(report.get("isForeclosed")),
        # A zone-less date-time (2026-11-02T00:00:00, as a public client sends it) counts by its date part.
        "foreclosureDate": str(report["foreclosureDate"])[:10] if report.get("isForeclosed")
        and report.get("foreclosureDate") and not faults.on("foreclosure_date_dropped") else None,
    }
    batch.touch(key)
    return []


def _terminate(batch: _Batch, report: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    key = loan_key(report.get("loanNumber"))
    loan, errors = batch.own_loan(key, f"{prefix}/loanNumber")
    if loan is None:
        return errors
    report_type = report.get("reportType", "NewReport")
    termination = report.get("termination") or {}
    if report_type == "Cancellation":  # RPT-018: cancelled loans are hidden everywhere but GetLoan
        if batch.reg.faults.on("cancellation_by_termination_ignored"):  # breaks RPT-018 on TerminateLoans only
            return []
        loan["status"] = "Cancelled"
        batch.touch(key)
        return []
    errors = rules.termination_errors(report, prefix, loan["data"].get("contractDate"), batch.reg.faults)
    if errors:
        return errors
    if loan["status"] == "Cancelled":
        if report_type != "ErrorCorrection" or batch.reg.faults.on("restore_not_supported"):
            return [item("D13", f"{prefix}/loanNumber")]
        # RPT-019: an error correction restores a cancelled loan (Ended when it says terminated)
        loan["status"] = "Ended" if termination.get("isTerminated") else "Active"
        loan["termination"] = termination if termination.get("isTerminated") else None
        batch.touch(key)
        return []
    if report_type == "ErrorCorrection" and not termination.get("isTerminated"):
        loan["status"] = "Active"  # RPT-020: the correction says the loan has not ended
        loan["termination"] = None
    elif termination.get("isTerminated", True):
        if loan["status"] == "Ended" and report_type == "ErrorCorrection" and batch.reg.faults.on(
                "end_date_correction_ignored"):  # breaks RPT-020
            return []
        loan["status"] = "Ended"  # RPT-032 (NewReport), RPT-020 (corrected end date)
        loan["termination"] = termination
        if report_type == "NewReport" and batch.reg.faults.on("end_date_shifted") and rules.date_of(
                termination.get("endDate")):  # breaks RPT-032: a time-zone slip of one day
            shifted = rules.date_of(termination.get("endDate")) + dt.timedelta(days=1)
            loan["termination"] = {**termination, "endDate": shifted.isoformat()}
    batch.touch(key)
    return []


HANDLERS = {
    "AddLoans": _add_loan,
    "UpdateLoans": _update_loan,
    "Repayments": _repayment,
    "DelayedRepayments": _delay,
    "TerminateLoans": _terminate,
}


def process_batch(reg: Register, batch_id: int) -> None:
    """Apply one stored batch: per-report rules, partial acceptance, one transaction (BAT-001..006)."""
    con = reg.storage.conn()
    row = con.execute("SELECT * FROM batches WHERE id=?", (batch_id,)).fetchone()
    if row is None or row["status"] != "Processing":
        return
    operation = row["operation"]
    collection = COLLECTION[operation]
    reports: list[dict[str, Any]] = json.loads(row["body"]).get(collection) or []
    org = reg.org_for_owner(row["owner"])
    is_kela = bool(org and org.is_kela)
    faults = reg.faults
    now_day = today()

    references: dict[Any, int] = {}
    for report in reports:
        ref = report.get("reportReference")
        references[ref] = references.get(ref, 0) + 1

    batch = _Batch(reg, row["owner"], row["owner_json"], {loan_key(r.get("loanNumber")) for r in reports})
    handler = HANDLERS[operation]
    results: list[dict[str, Any]] = []
    for i, report in enumerate(reports):
        prefix = f"/{collection}/{i}"
        errors: list[dict[str, str]] = []
        ref = report.get("reportReference")
        if references.get(ref, 0) > 1 and not faults.on("duplicate_report_reference_accepted"):
            errors.append(item("D50", f"{prefix}/reportReference"))  # RPT-034: every repeat is rejected
        if operation in ("AddLoans", "UpdateLoans") and report.get("reportType") != "Cancellation":
            errors.extend(rules.loan_errors(report, prefix, operation=operation, is_kela=is_kela, persons=reg.persons,
                                            faults=faults, today=now_day))
        if not errors and i >= 500 and faults.on("large_batch_truncated"):  # breaks BAT-013
            errors = [item("H50", prefix)]
        if not errors:
            errors = handler(batch, report, prefix)
        if len(errors) > 1 and faults.on("later_errors_without_field_name"):  # breaks BAT-006
            errors = errors[:1] + [{**e, "fieldName": ""} for e in errors[1:]]
        results.append({"reportReference": ref, "status": "Rejected" if errors else "Accepted",
                        "errorResponses": errors})

    rejected = sum(1 for r in results if r["status"] == "Rejected")
    discard = False
    if faults.on("whole_batch_fails_on_duplicate") and any(
        e["errorCode"] == "D10" for r in results for e in r["errorResponses"]
    ):  # breaks RPT-006: the 2026 defect
        for r in results:
            r["status"] = "Rejected"
            r["errorResponses"] = r["errorResponses"] or [item("D10", "/loans")]
        discard = True
    elif faults.on("no_partial_success") and 0 < rejected < len(results):  # breaks BAT-003
        for r in results:
            if r["status"] == "Accepted":
                r["status"] = "Rejected"
                r["errorResponses"] = [item("D01", "", "Rejected with the rest of the batch.")]
        discard = True
    rejected = sum(1 for r in results if r["status"] == "Rejected")
    accepted = len(results) - rejected
    for r in results:
        reg.specs.describe(r["errorResponses"])
    status = "FinishedSuccess" if rejected == 0 else "FinishedFailed" if accepted == 0 else "FinishedPartialSuccess"
    if len(results) >= 2 and (faults.on("success_reported_as_partial") and rejected == 0
                              or faults.on("all_rejected_reported_as_partial") and accepted == 0):
        status = "FinishedPartialSuccess"  # breaks BAT-002 or BAT-004
    with reg.storage.write() as wcon:
        still = wcon.execute("SELECT status FROM batches WHERE id=?", (batch_id,)).fetchone()
        if still is None or still[0] != "Processing":
            return
        if not discard:
            batch.write(wcon)
        wcon.execute("INSERT INTO batch_results(batch_id, results) VALUES (?,?)"
                     " ON CONFLICT(batch_id) DO UPDATE SET results=excluded.results",
                     (batch_id, json.dumps(results, ensure_ascii=False)))
        # The body is kept only until the batch is applied; idempotency (BAT-008/009) needs only its hash.
        wcon.execute("UPDATE batches SET status=?, accepted=?, rejected=?, finished_utc=?, body='' WHERE id=?",
                     (status, accepted, rejected, now_utc(), batch_id))


def pending_batches(reg: Register) -> list[int]:
    return [r[0] for r in reg.storage.conn().execute(
        "SELECT id FROM batches WHERE status='Processing' ORDER BY id")]


__all__ = ["pending_batches", "process_batch"]
