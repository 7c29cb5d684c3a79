"""Cancelling what a run created (docs/concepts.md#shared-environment): the real test environment is shared and cannot be reset, so
at the end of a session every loan that this run's AddLoans batches were accepted for is cancelled with a
TerminateLoans `Cancellation` report (RPT-018), by the identity that reported it.

Cleanup never decides a verdict: a loan it cannot cancel (already cancelled by a scenario, transferred to
another lender, rejected in the first place) is counted, not failed, and network errors end it with a note.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pcr_conformance.errors import HarnessError
from pcr_conformance.messages import termination

CLEANUP_MODES = ("auto", "always", "never")
CHUNK = 1000  # reports per cancellation batch, well under the 10 000 limit (BAT-012)


class LoanLedger:
    """Loan numbers this run submitted through AddLoans, per identity slot (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_slot: dict[str, dict[str, dict[str, str]]] = {}

    def record(self, slot: str, reports: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            loans = self._by_slot.setdefault(slot, {})
            for report in reports:
                number = report.get("loanNumber") if isinstance(report, Mapping) else None
                if isinstance(number, Mapping):
                    loans[json.dumps(dict(number), sort_keys=True)] = dict(number)

    def by_slot(self) -> dict[str, list[dict[str, str]]]:
        with self._lock:
            return {slot: list(loans.values()) for slot, loans in self._by_slot.items()}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_slot.values())


def should_clean(mode: str, *, embedded: bool, read_only: bool) -> bool:
    """auto: only a remote, writable target (an embedded register's data is thrown away with it)."""
    if mode == "never" or read_only:
        return False
    return mode == "always" or not embedded


@dataclass(frozen=True)
class CleanupResult:
    submitted: int
    cancelled: int
    rejected: int
    note: str = ""

    def line(self) -> str:
        text = (f"cleanup: cancelled {self.cancelled} of {self.submitted} loans this run reported "
                f"({self.rejected} not cancellable: already cancelled, transferred or never accepted)")
        return f"{text}; {self.note}" if self.note else text


def cancel_all(ledger: LoanLedger, client_for: Callable[[str], Any], new_reference: Callable[[], str]) -> CleanupResult:
    """Send Cancellation reports for every recorded loan, batch by batch, and count the outcome."""
    submitted = cancelled = rejected = 0
    note = ""
    for slot, loans in ledger.by_slot().items():
        client = client_for(slot)
        for start in range(0, len(loans), CHUNK):
            chunk = loans[start:start + CHUNK]
            submitted += len(chunk)
            reports = [termination(number, new_reference(), report_type="Cancellation") for number in chunk]
            try:
                status = client.submit_and_wait("TerminateLoans", reports)
            except (HarnessError, AssertionError) as e:
                note = f"stopped early: {str(e).splitlines()[0][:200]}"
                return CleanupResult(submitted, cancelled, rejected + len(chunk), note)
            accepted = int(status.get("acceptedCount") or 0)
            cancelled += accepted
            rejected += len(chunk) - accepted
    return CleanupResult(submitted, cancelled, rejected, note)
