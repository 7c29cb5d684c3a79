"""Background processing of stored batches and authority orders, in arrival order.

On start-up the worker picks up every batch still marked Processing: the body was committed before the 202
and the result is committed together with the loan changes, so a kill -9 at any moment loses no
acknowledged batch and applies none twice (BAT-011).
"""

from __future__ import annotations

import json
import logging
import threading

from pcr_register import authorities, processing
from pcr_register.clock import now_utc
from pcr_register.errors import item
from pcr_register.state import Register
from pcr_register.submission import COLLECTION

log = logging.getLogger("pcr_register.worker")
IDLE_ROUND_S = 0.5  # the longest the worker sleeps when nothing wakes it
RETRY_S = 0.05


def _fail_batch(reg: Register, batch_id: int) -> None:
    """A batch whose processing raised: reject it as a whole instead of retrying it forever."""
    with reg.storage.write() as con:
        row = con.execute("SELECT report_count, operation, body FROM batches WHERE id=?", (batch_id,)).fetchone()
        try:
            reports = json.loads(row["body"]).get(COLLECTION[row["operation"]]) or []
        except ValueError:
            reports = [{}] * row["report_count"]
        results = [{"reportReference": r.get("reportReference") if isinstance(r, dict) else None,
                    "status": "Rejected", "errorResponses": reg.specs.describe([item("H50", "")])} for r in reports]
        con.execute("INSERT INTO batch_results(batch_id, results) VALUES (?,?)"
                    " ON CONFLICT(batch_id) DO UPDATE SET results=excluded.results", (batch_id, json.dumps(results)))
        con.execute("UPDATE batches SET status='FinishedFailed', accepted=0, rejected=?, finished_utc=?, body='' "
                    "WHERE id=?",
                    (len(results), now_utc(), batch_id))


def run_once(reg: Register) -> int:
    """Process everything pending; return how many batches and orders were handled."""
    done = 0
    if not reg.faults.on("batch_stuck_processing"):  # the fault breaks BAT-010: nothing ever finishes
        # Several processes on one PostgreSQL database: the one holding the batch lock processes them all, in
        # arrival order; the others skip this round (storage_pg.py).
        with reg.storage.batch_processor() as mine:
            for batch_id in processing.pending_batches(reg) if mine else []:
                try:
                    processing.process_batch(reg, batch_id)
                except Exception:
                    log.exception("batch %s failed", batch_id)
                    _fail_batch(reg, batch_id)
                done += 1
    for reference in authorities.pending_orders(reg):
        authorities.process_order(reg, reference)
        done += 1
    return done


def start(reg: Register, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            reg.wake.clear()
            wait_s = IDLE_ROUND_S
            try:
                if run_once(reg):
                    continue
                # A new batch or order wakes the worker at once; an order still Processing, when it is due
                # (AUT-004). One already due here is one whose processing failed: retried after RETRY_S.
                due = authorities.next_order_due_s(reg)
                if due is not None:
                    wait_s = min(IDLE_ROUND_S, max(due + 0.005, RETRY_S))
            except Exception:  # keep the worker alive; the next round retries
                log.exception("worker round failed")
            reg.wake.wait(wait_s)

    thread = threading.Thread(target=loop, name="pcr-register-worker", daemon=True)
    thread.start()
    return thread
