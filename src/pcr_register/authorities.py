"""Authorities' data ordering and distribution (modelled, interfaces.md §4)."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from pcr_register import identifiers, views
from pcr_register.clock import now_utc, seconds_ago_utc, seconds_since_utc
from pcr_register.errors import fail
from pcr_register.identity import Caller
from pcr_register.state import Register

ORDER_DELAY_ENV = "PCR_REGISTER_ORDER_DELAY_S"
# Long enough for a client to see Processing and the D72 answer (its first poll comes within milliseconds),
# short enough that the order scenarios do not idle a test worker (issue 12: three orders of 1 s each were the
# last second of a run's critical path).
ORDER_DELAY_S = 0.25


def order_delay_s() -> float:
    """How long an order stays Processing: $PCR_REGISTER_ORDER_DELAY_S (default 0.25 s), read when asked, so a
    register forked by the fork server reads its own environment's."""
    try:
        return float(os.environ.get(ORDER_DELAY_ENV, ORDER_DELAY_S))
    except ValueError:
        return ORDER_DELAY_S


def order_data(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    order = body.get("order") or {}
    basis = str(order.get("legalBasis") or "")
    if not (basis if reg.faults.on("legal_basis_blank_accepted") else basis.strip()):  # AUT-003
        raise fail(400, "D70", "/order/legalBasis")
    subjects = order.get("subjects") or []
    for i, subject in enumerate(subjects[:1] if reg.faults.on("second_subject_not_validated") else subjects):  # AUT-009
        if subject.get("idCodeType", "PersonalIdentityCode") == "PersonalIdentityCode" and not identifiers.is_valid_hetu(
            str(subject.get("idCode", ""))
        ):
            raise fail(400, "D04", f"/order/subjects/{i}/idCode")
    reference = str(uuid.uuid4())
    with reg.storage.write() as con:  # AUT-002: durable before the 202
        con.execute(
            "INSERT INTO orders(reference, owner, scope, status, subject_count, body, created_utc)"
            " VALUES (?,?,?,?,?,?,?)",
            (reference, caller.org.key, caller.scope, "Processing", len(subjects), json.dumps(order), now_utc()),
        )
    reg.wake.set()
    return 200 if reg.faults.on("order_answered_200") else 202, {"orderReference": reference, "statusMessage": "Accepted"}


def _own_order(reg: Register, caller: Caller, body: dict[str, Any]) -> Any:
    everyone = reg.faults.on("order_visible_to_other_authority")  # breaks AUT-007
    row = reg.storage.conn().execute(
        "SELECT * FROM orders WHERE reference=? AND (owner=? OR ?)", (str(body.get("orderReference")), caller.org.key,
                                                                      everyone)
    ).fetchone()
    if row is None:  # AUT-007: another authority's order looks unknown
        raise fail(404, "D71", "orderReference")
    return row


def get_order_status(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    row = _own_order(reg, caller, body)
    status = "Finished" if reg.faults.on("order_status_finished_at_once") else row["status"]  # the fault: AUT-004
    return 200, {"orderReference": row["reference"], "orderStatus": status, "subjectCount": row["subject_count"]}


def get_distribution(reg: Register, caller: Caller, body: dict[str, Any]) -> tuple[int, dict]:
    row = _own_order(reg, caller, body)
    if row["status"] != "Finished" and not reg.faults.on("distribution_before_finished"):  # AUT-008
        raise fail(409, "D72", "orderReference")
    return 200, {"orderReference": row["reference"], "persons": json.loads(row["distribution"] or "[]")}


def pending_orders(reg: Register) -> list[str]:
    """Orders due for processing: each stays Processing for order_delay_s() so that clients can observe the
    Processing state and the D72 answer (AUT-004, AUT-008)."""
    due = seconds_ago_utc(order_delay_s())
    return [r[0] for r in reg.storage.conn().execute(
        "SELECT reference FROM orders WHERE status='Processing' AND created_utc <= ? ORDER BY created_utc", (due,))]


def next_order_due_s(reg: Register) -> float | None:
    """Seconds until the oldest Processing order is due (0 when it is), None when no order is waiting: the
    worker sleeps until then instead of a fixed round, so an order is Finished order_delay_s() after it came."""
    row = reg.storage.conn().execute(
        "SELECT MIN(created_utc) FROM orders WHERE status='Processing'").fetchone()
    if row is None or row[0] is None:
        return None
    return max(0.0, order_delay_s() - seconds_since_utc(row[0]))


def process_order(reg: Register, reference: str) -> None:
    """AUT-004/005/006: gather the subjects' active loans of every lender, filtered by the order's scope."""
    row = reg.storage.conn().execute("SELECT * FROM orders WHERE reference=?", (reference,)).fetchone()
    if row is None or row["status"] != "Processing":
        return
    order = json.loads(row["body"])
    consumer_only = row["scope"] == "consumer-credit-only" and not reg.faults.on("authority_sees_all_credits")
    persons = []
    subjects = order.get("subjects") or []
    for subject in subjects[:1] if reg.faults.on("distribution_first_subject_only") else subjects:  # AUT-005
        id_code = str(subject.get("idCode"))
        outcome, _person, _notices = views.outcome_for(reg, id_code)
        loans: list[dict[str, Any]] = []
        if outcome in ("", "PersonDeceased"):
            borrowed, _ = views.person_loans(reg, id_code, ("Active",))
            for loan_row in borrowed:
                if consumer_only and loan_row["consumer_act"] == "OtherThanConsumerCredit":
                    continue
                loans.append(views.extract_loan(reg, loan_row, loan_row["person_business_id"]))
            outcome = outcome or ("LoansFound" if loans else "NoLoans")
        persons.append({"idCode": id_code, "extractOutcome": outcome, "loans": loans})
    with reg.storage.write() as con:
        con.execute("UPDATE orders SET status='Finished', distribution=? WHERE reference=? AND status='Processing'",
                    (json.dumps(persons), reference))
