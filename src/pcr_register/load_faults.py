"""The fault switches of the service levels under load (PRF-..., docs/load.md): what a register gets wrong
only when many callers use it at once. Each breaks exactly one service level and leaves every answer's
content as it was, so the functional suites stay green and only a load run sees the fault.

State is per process (the register is one process behind one database); the counters are guarded by a lock,
since handlers run in uvicorn's worker threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from pcr_register.clock import now_utc
from pcr_register.faults import Faults

EXTRACT_DELAY_S = 1.5  # slow_extract: above the reference profile's extract_p95_ms (1000 ms) at every percentile
FINAL_HOLD_S = 17.0  # slow_batch_final: above the reference profile's batch_final_s (15 s), below its deadline (30 s)
BUSY_WINDOW_S = 1.0  # server_error_under_load: "under load" = more than BUSY_REQUESTS requests in this window
BUSY_REQUESTS = 6
ERROR_EVERY = 5  # ... then every fifth request is answered 500
LOSE_EVERY = 3  # batch_lost_under_load: every third accepted AddLoans batch is forgotten

_lock = threading.Lock()
_arrivals: deque[float] = deque()
_busy_count = 0
_add_loans_count = 0


def slow_extract(faults: Faults) -> None:
    """PRF-001: the extract is right but answered EXTRACT_DELAY_S late (a full table scan per person)."""
    if faults.on("slow_extract"):
        time.sleep(EXTRACT_DELAY_S)


def server_error_now(faults: Faults) -> bool:
    """PRF-003: true for every ERROR_EVERY-th request while more than BUSY_REQUESTS arrived within
    BUSY_WINDOW_S (a connection pool exhausted under concurrency); never at the pace of one test."""
    global _busy_count
    if not faults.on("server_error_under_load"):
        return False
    now = time.monotonic()
    with _lock:
        _arrivals.append(now)
        while _arrivals and _arrivals[0] < now - BUSY_WINDOW_S:
            _arrivals.popleft()
        if len(_arrivals) <= BUSY_REQUESTS:
            return False
        _busy_count += 1
        return _busy_count % ERROR_EVERY == 0


def lose_batch(faults: Faults, operation: str) -> bool:
    """PRF-004: every LOSE_EVERY-th AddLoans batch is answered 202 and never stored (a queue that drops
    messages when full)."""
    global _add_loans_count
    if operation != "AddLoans" or not faults.on("batch_lost_under_load"):
        return False
    with _lock:
        _add_loans_count += 1
        return _add_loans_count % LOSE_EVERY == 0


def held_back(faults: Faults, received_utc: str) -> bool:
    """PRF-002: GetBatchStatus says the batch is still processing until FINAL_HOLD_S after it was received
    (the results are there, their publication lags)."""
    if not faults.on("slow_batch_final"):
        return False
    return _age_s(received_utc) < FINAL_HOLD_S


def _age_s(received_utc: str) -> float:
    from datetime import datetime

    def parse(ts: str) -> datetime:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))

    try:
        return (parse(now_utc()) - parse(received_utc)).total_seconds()
    except ValueError:
        return FINAL_HOLD_S
