"""GetLoan (interfaces.md §2): a lender reads back its own loan as stored (RPT-003, RPT-039)."""

from __future__ import annotations

import json
from typing import Any

from pcr_register.errors import ApiError, fail, item
from pcr_register.identity import Caller
from pcr_register.state import Register


def loan_key(loan_number: Any) -> str:
    """The storage key of a loanNumber object."""
    if not isinstance(loan_number, dict):
        return "?"
    return f"{loan_number.get('type')}:{loan_number.get('number')}"


def stored_loan(row: Any, repayments: list[dict[str, Any]], first_borrower_only: bool = False) -> dict[str, Any]:
    """GetLoan's loan: the loan as last reported plus its state (RPT-003)."""
    loan = json.loads(row["data"])
    if first_borrower_only and loan.get("borrowers"):  # fault get_loan_first_borrower_only (RPT-003)
        loan["borrowers"] = loan["borrowers"][:1]
    loan.pop("reportType", None)  # StoredLoan: the members of LoanReport except reportType
    delays = json.loads(row["delays"]) if row["delays"] else {}
    loan["status"] = row["status"]
    loan["owner"] = json.loads(row["owner_json"])
    loan["lastUpdatedUtc"] = row["last_updated_utc"]
    loan["repayments"] = repayments
    loan["delayedAmounts"] = delays.get("delayedAmounts") or []
    loan["isForeclosed"] = bool(delays.get("isForeclosed"))
    if delays.get("foreclosureDate"):
        loan["foreclosureDate"] = delays["foreclosureDate"]
    if row["termination"]:
        loan["termination"] = json.loads(row["termination"])
    return loan


def get_loan(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    key = loan_key(body.get("loanNumber"))
    con = reg.storage.conn()
    row = con.execute("SELECT * FROM loans WHERE loan_key=?", (key,)).fetchone()
    # RPT-039 / SEC-007: another lender's loan is answered exactly like an unknown one
    if row is None and reg.faults.on("unknown_loan_number_400"):  # breaks RPT-039 (another lender's stays 404)
        # Built by hand: fail() is for the answers errors.yaml states (tests/test_register_errors.py checks them).
        raise ApiError(400, [item("D11", "/loanNumber")])
    if row is None or (row["owner"] != caller.org.key and not reg.faults.on("leak_other_lenders_loans")):
        raise fail(404, "D11", "/loanNumber")
    repayments = [json.loads(r[0]) for r in con.execute(
        "SELECT data FROM repayments WHERE loan_key=? ORDER BY id", (key,))]
    return 200, {"loan": stored_loan(row, repayments, reg.faults.on("get_loan_first_borrower_only"))}
