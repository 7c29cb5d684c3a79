"""The service levels under load (PRF-..., docs/load.md): one plain function per requirement, judging a load
run's results (load_results.LoadRun).

The public material states no response-time target, batch deadline or volume, so each level is modelled and
its threshold is a value of the target's implementation profile (impl_profile.VALUES), else the default below.
A function answers a `Judgement`: passed, failed (expected and actual, for `expect.fail`) or not shown (the
load never exercised it: no extract identity, no batch sent), which the suite turns into a skip with the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pcr_conformance import judging
from pcr_conformance.load_results import LoadRun

# The thresholds when the target's profile states none (modelled: no public figure exists). A lender asks for
# an extract while its customer waits: a second at the 95th percentile. A batch is processed asynchronously;
# a minute for up to 1 000 reports is far inside the next-day reporting deadlines.
DEFAULTS: dict[str, float] = {"extract_p95_ms": 1000.0, "batch_final_s": 60.0}
BATCH_SIZE_LIMIT = 1000  # PRF-002 judges batches of up to this many reports
EXTRACT = "GetCreditRegisterExtract"


@dataclasses.dataclass(frozen=True)
class Judgement:
    status: str  # "passed" | "failed" | "not-shown"
    operation: str
    expected: str = ""
    actual: str = ""


def threshold(key: str) -> tuple[float, str]:
    """(the threshold, its basis): the profile's value when it states one, else DEFAULTS ("default")."""
    value, basis = judging.value(key, DEFAULTS[key])
    return float(value), ("profile" if basis == "profile" else "default")


def _basis(key: str) -> str:
    value, basis = threshold(key)
    return f"{key} = {value:g} ({'the implementation profile' if basis == 'profile' else 'the default'})"


def extract_p95(run: LoadRun) -> Judgement:
    """PRF-001: the 95th percentile of the extract's response times under load (Locust's statistics)."""
    stats = run.requests.get(EXTRACT) or {}
    if not stats.get("count"):
        return Judgement("not-shown", EXTRACT, actual="the load run sent no extract (it needs the identity slot "
                                                      "lender_extract and the extract capability)")
    limit, _ = threshold("extract_p95_ms")
    p95 = float(stats.get("p95_ms") or 0)
    expected = f"95th percentile at most {limit:g} ms ({_basis('extract_p95_ms')})"
    actual = f"{p95:g} ms over {stats['count']} extracts (p50 {stats.get('p50_ms')} ms, max {stats.get('max_ms')} ms; {run.describe()})"
    return Judgement("passed" if p95 <= limit else "failed", EXTRACT, expected, actual)


def batch_final(run: LoadRun) -> Judgement:
    """PRF-002: every batch of up to BATCH_SIZE_LIMIT reports final within batch_final_s."""
    times = [(int(n), float(s)) for n, s in run.tally.get("final_times") or [] if int(n) <= BATCH_SIZE_LIMIT]
    if not times:
        return Judgement("not-shown", "AddLoans", actual="no batch of the load run reached a final state (it needs "
                                                         "the identity slot lender and the reporting capability)")
    limit, _ = threshold("batch_final_s")
    late = [(n, s) for n, s in times if s > limit]
    worst = max(times, key=lambda t: t[1])
    expected = f"every batch of up to {BATCH_SIZE_LIMIT} reports final within {limit:g} s ({_basis('batch_final_s')})"
    if late:
        actual = (f"{len(late)} of {len(times)} batches later, the slowest {worst[1]:.1f} s for {worst[0]} reports "
                  f"({run.describe()})")
        return Judgement("failed", "GetBatchStatus", expected, actual)
    largest = max(n for n, _ in times)
    return Judgement("passed", "GetBatchStatus", expected,
                     f"{len(times)} batches, the slowest {worst[1]:.1f} s for {worst[0]} reports, the largest "
                     f"{largest} reports ({run.describe()})")


def no_server_error(run: LoadRun) -> Judgement:
    """PRF-003: no 5xx answer and no request without an answer within the target's timeout."""
    total = run.total_requests()
    if not total:
        return Judgement("not-shown", "all", actual="the load run sent no request")
    errors: dict[str, int] = dict(run.tally.get("server_errors") or {})
    unanswered: dict[str, int] = dict(run.tally.get("unanswered") or {})
    expected = "no 5xx answer and an answer to every request within timeout_s"
    if errors or unanswered:
        parts = [f"{count} x {key}" for key, count in sorted(errors.items())]
        parts += [f"{count} x {op} unanswered" for op, count in sorted(unanswered.items())]
        example = _first_line(run, "server_errors") or _first_line(run, "unanswered")
        operation = next(iter(sorted(errors or unanswered))).split(" ")[0]
        return Judgement("failed", operation, expected,
                         f"{', '.join(parts)} of {total} requests ({run.describe()})" + (f"; e.g. {example}" if example else ""))
    return Judgement("passed", "all", expected, f"{total} requests, none a server error or unanswered ({run.describe()})")


def no_batch_lost(run: LoadRun) -> Judgement:
    """PRF-004: every acknowledged batch final, and the loans it accepted found by GetLoan."""
    accepted = int(run.tally.get("batches_accepted") or 0)
    if not accepted:
        return Judgement("not-shown", "AddLoans", actual="the load run had no batch acknowledged (it needs the "
                                                         "identity slot lender and the reporting capability)")
    lost = int(run.tally.get("batches_lost") or 0)
    missing = int(run.tally.get("loans_missing") or 0)
    checked = int(run.tally.get("loans_checked") or 0)
    expected = "every batch answered 202 final, and GetLoan finding the loans it accepted"
    if lost or missing:
        example = _first_line(run, "batches_lost") or _first_line(run, "loans_missing")
        operation = "GetBatchStatus" if lost else "GetLoan"
        return Judgement("failed", operation, expected,
                         f"{lost} of {accepted} acknowledged batches lost, {missing} of {checked} checked loans "
                         f"missing ({run.describe()})" + (f"; e.g. {example}" if example else ""))
    return Judgement("passed", "GetBatchStatus", expected,
                     f"{accepted} batches acknowledged, all final; {checked} loans checked, all found ({run.describe()})")


def _first_line(run: LoadRun, kind: str) -> str:
    lines: Any = (run.tally.get("lines") or {}).get(kind) or []
    return str(lines[0]) if lines else ""


# requirement -> its check, in the register's order (suites/load/ runs one test per entry).
CHECKS: dict[str, Callable[[LoadRun], Judgement]] = {
    "PRF-001": extract_p95,
    "PRF-002": batch_final,
    "PRF-003": no_server_error,
    "PRF-004": no_batch_lost,
}
