"""The client requirements (CLI-..., side: client in specs/requirements.yaml) as plain checks over recorded
traffic (traffic.Exchange), one function per requirement (docs/client-testing.md).

`judge(state, exchange)` runs every check on the next exchange, looking back only through `ClientState`
(what the earlier exchanges showed: batch references, polls, partial successes, accepted loans, the last 429 or
503 per API family), so the proxy judges each exchange as it happens in constant time, and the client suite
replays a whole recording through the same functions (`replay`). `finish(state)` adds what only the end of a
recording shows (CLI-004: a batch never polled to a final state).

A requirement is *exercised* when the recording held what it is about (a submission for CLI-002, a 429 or 503
for CLI-010, a partial success for CLI-006, ...): a requirement with no finding that was not exercised is not
shown by the recording, never passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pcr_conformance import catalogue, readings
from pcr_conformance.identifiers import ARTIFICIAL_INDIVIDUALS, hetu_individual
from pcr_conformance.traffic import Exchange
from pcr_conformance.validate import validate_body
from pcr_conformance.validate_model import ERROR
from pcr_conformance.validate_traffic import by_reading

BATCH_REFERENCE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")  # CLI-002, as the register checks it (RPT-001)
MIN_POLL_INTERVAL_S = 1.0  # CLI-005 (modelled): polls of one batch at least this far apart
BACKOFF_TOLERANCE = 0.8  # CLI-005: an interval may shrink to 80 % of the one before (jitter), not more
DEFAULT_RETRY_AFTER_S = 1.0  # CLI-010: a 429 / 503 without Retry-After
CLOCK_SLACK_S = 0.05  # timestamps are the proxy's; allow for its own scheduling
FINAL_STATES = ("FinishedSuccess", "FinishedPartialSuccess", "FinishedFailed")


@dataclasses.dataclass(frozen=True)
class Finding:
    requirement: str
    index: int  # 1-based number of the exchange in the recording (0: the recording as a whole)
    operation: str
    message: str
    fix: str

    def line(self) -> str:
        where = f"#{self.index} {self.operation}" if self.index else "end of recording"
        return f"{self.requirement} {where}: {self.message} (fix: {self.fix})"


@dataclasses.dataclass
class ClientState:
    """What the exchanges so far showed (mutable: the judge's memory, never configuration)."""

    reading: str = "reference"
    count: int = 0
    exercised: set[str] = dataclasses.field(default_factory=set)
    findings: list[Finding] = dataclasses.field(default_factory=list)
    body_of_reference: dict[str, str] = dataclasses.field(default_factory=dict)  # batch ref -> body digest
    reports_of_batch: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)  # ref -> rr -> report
    open_batches: dict[str, int] = dataclasses.field(default_factory=dict)  # accepted, not final: ref -> exchange no.
    polls: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # ref -> poll times
    # After FinishedPartialSuccess: loan key -> (batch ref, "Accepted" | "Rejected")
    partial: dict[tuple[str, str, str], tuple[str, str]] = dataclasses.field(default_factory=dict)
    accepted_loans: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    blocked_until: dict[str, tuple[float, int, int]] = dataclasses.field(default_factory=dict)  # family -> (t, status, no.)


Check = Callable[[ClientState, Exchange, int], Iterator[Finding]]


def _digest(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _loan_key(op: str, report: Mapping[str, Any]) -> tuple[str, str, str] | None:
    n = report.get("loanNumber")
    return (op, str(n.get("type")), str(n.get("number"))) if isinstance(n, Mapping) else None


def _reports(ex: Exchange) -> list[dict[str, Any]]:
    body, member = ex.request_json(), catalogue.collection_of(ex.operation)
    items = body.get(member) if isinstance(body, Mapping) and member else None
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def _is_submission(ex: Exchange) -> bool:
    return ex.operation in catalogue.submit_operations()


# ---- one check per requirement -------------------------------------------------------------------------


def check_valid_request(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-001: the request passes the offline validator (schema and offline rules), under the reading."""
    if not ex.operation or ex.method != "POST":
        return
    state.exercised.add("CLI-001")
    body = ex.request_json()
    if body is None:
        yield Finding("CLI-001", i, ex.operation, "the request body is not JSON", "send an application/json body")
        return
    today = dt.datetime.fromtimestamp(ex.started, dt.UTC).date()
    problems = by_reading(validate_body(body, ex.operation, today=today), state.reading)
    for p in problems:
        if p.severity == ERROR:
            yield Finding("CLI-001", i, ex.operation, f"{p.pointer or '/'} {p.requirement} {p.code} {p.message}".strip(),
                          p.fix)


def check_batch_reference(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-002: a submission carries a well-formed BatchReference header."""
    if not _is_submission(ex):
        return
    state.exercised.add("CLI-002")
    ref = ex.request_header("BatchReference")
    if ref is None:
        yield Finding("CLI-002", i, ex.operation, "no BatchReference header",
                      "send a unique BatchReference header (^[A-Za-z0-9_.:-]{1,100}$) with every submission")
    elif not BATCH_REFERENCE_RE.match(ref):
        yield Finding("CLI-002", i, ex.operation, f"BatchReference {ref!r} does not match ^[A-Za-z0-9_.:-]{{1,100}}$",
                      "use only letters, digits and _.:- (at most 100)")


def check_reference_reuse(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-003: a used batch reference comes again only with the byte-identical body (a retry)."""
    ref = ex.request_header("BatchReference") if _is_submission(ex) else None
    if not ref:
        return
    state.exercised.add("CLI-003")
    digest = _digest(ex.request_text)
    before = state.body_of_reference.setdefault(ref, digest)
    if before != digest:
        yield Finding("CLI-003", i, ex.operation, f"BatchReference {ref!r} was used before with other content",
                      "give every new batch a new reference; re-send a reference only with the same body")


def check_polled_to_final(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-004 (bookkeeping; the finding comes from finish): accepted batches and the final states seen."""
    if _is_submission(ex) and ex.status == 202:
        ref = ex.request_header("BatchReference")
        if ref:
            state.exercised.add("CLI-004")
            state.open_batches.setdefault(ref, i)
            state.reports_of_batch.setdefault(ref, {}).update(
                {str(r.get("reportReference")): {**r, "_operation": ex.operation} for r in _reports(ex)})
    if ex.operation == "GetBatchStatus" and ex.status == 200:
        answer = ex.response_json() or {}
        if isinstance(answer, Mapping) and answer.get("batchStatus") in FINAL_STATES:
            state.open_batches.pop(str(answer.get("batchReference")), None)
    return iter(())


def check_poll_rate(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-005: polls of one batch at least MIN_POLL_INTERVAL_S apart, and backing off."""
    if ex.operation != "GetBatchStatus" or ex.status in (429, 503):
        return  # a poll the register did not serve is CLI-010's; the retry after it is the next poll
    body = ex.request_json()
    ref = str(body.get("batchReference")) if isinstance(body, Mapping) else ""
    times = state.polls.setdefault(ref, [])
    times.append(ex.started)
    if len(times) < 2:
        return
    state.exercised.add("CLI-005")
    gap = times[-1] - times[-2]
    if gap + CLOCK_SLACK_S < MIN_POLL_INTERVAL_S:
        yield Finding("CLI-005", i, ex.operation, f"batch {ref!r} polled again after {gap:.3f} s",
                      f"wait at least {MIN_POLL_INTERVAL_S:g} s between polls of one batch and back off")
    elif len(times) >= 3 and gap + CLOCK_SLACK_S < BACKOFF_TOLERANCE * (times[-2] - times[-3]):
        yield Finding("CLI-005", i, ex.operation,
                      f"batch {ref!r}: poll interval shrank from {times[-2] - times[-3]:.2f} s to {gap:.2f} s",
                      "back off: keep or lengthen the interval between polls of one batch")


def check_partial_success(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-006: after FinishedPartialSuccess, accepted reports are not re-sent, rejected ones only corrected."""
    if ex.operation == "GetBatchStatus" and ex.status == 200:
        answer = ex.response_json() or {}
        if isinstance(answer, Mapping) and answer.get("batchStatus") == "FinishedPartialSuccess":
            ref = str(answer.get("batchReference"))
            state.exercised.add("CLI-006")
            sent = state.reports_of_batch.get(ref, {})
            for result in answer.get("reportResults") or ():
                report = sent.get(str(result.get("reportReference")))
                key = _loan_key(report.get("_operation", ""), report) if report else None
                if key:
                    state.partial[key] = (ref, str(result.get("status")))
        return
    if not _is_submission(ex) or not state.partial:
        return
    ref = ex.request_header("BatchReference") or ""
    for report in _reports(ex):
        key = _loan_key(ex.operation, report)
        seen = state.partial.get(key) if key else None
        if seen is None or seen[0] == ref:
            continue
        batch, status = seen[0], seen[1]
        if status == "Accepted" and report.get("reportType") == "NewReport":
            yield Finding("CLI-006", i, ex.operation,
                          f"loan {key[2]!r} was accepted in partly successful batch {batch!r} and is sent again",
                          "after FinishedPartialSuccess re-send only the rejected reports, corrected")


def check_no_re_add(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-008: an AddLoans NewReport for a loan the register already accepted."""
    if ex.operation == "GetBatchStatus" and ex.status == 200:
        answer = ex.response_json() or {}
        if isinstance(answer, Mapping):
            sent = state.reports_of_batch.get(str(answer.get("batchReference")), {})
            for result in answer.get("reportResults") or ():
                report = sent.get(str(result.get("reportReference")))
                if report and result.get("status") == "Accepted" and report.get("_operation") == "AddLoans":
                    key = _loan_key("AddLoans", report)
                    if key:
                        state.accepted_loans.add(key[1:])
        return
    if ex.operation != "AddLoans":
        return
    state.exercised.add("CLI-008")
    for report in _reports(ex):
        key = _loan_key("AddLoans", report)
        if key and key[1:] in state.accepted_loans and report.get("reportType") == "NewReport":
            yield Finding("CLI-008", i, ex.operation, f"loan {key[2]!r} is already in the register and is added again",
                          "change a reported loan with UpdateLoans or an ErrorCorrection, withdraw it with a Cancellation")


def check_new_loan_deadline(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-009: a NewReport of AddLoans by the calendar day after its contractDate (the date the proxy saw)."""
    if ex.operation != "AddLoans":
        return
    sent_on = dt.datetime.fromtimestamp(ex.started, dt.UTC).date()
    for report in _reports(ex):
        if report.get("reportType") != "NewReport" or report.get("isTransferredFromAnotherLender"):
            continue
        try:
            contract = dt.date.fromisoformat(str(report.get("contractDate")))
        except ValueError:
            continue  # CLI-001 names the malformed date
        state.exercised.add("CLI-009")
        if sent_on > contract + dt.timedelta(days=1):
            yield Finding("CLI-009", i, ex.operation,
                          f"loan {report.get('loanNumber', {}).get('number')!r} of {contract} reported on {sent_on}",
                          "report a new loan by the calendar day after its contract date")


def check_owner(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-007: the envelope's owner is the organisation of the client certificate."""
    body = ex.request_json()
    if not ex.operation or not ex.client_owner or not isinstance(body, Mapping):
        return
    state.exercised.add("CLI-007")
    owner = body.get("owner") if isinstance(body.get("owner"), Mapping) else {}
    if str(owner.get("idCode", "")).upper() != str(ex.client_owner.get("idCode", "")).upper():
        yield Finding("CLI-007", i, ex.operation,
                      f"owner {owner.get('idCode')!r} is not the certificate's organisation "
                      f"{ex.client_owner.get('idCode')!r} (identity {ex.client_slot})",
                      "send the owner of the organisation whose certificate the system uses")


def check_retry_after(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-010: nothing to an API family before the Retry-After of its last 429 / 503 has passed."""
    family = ex.family
    if not family:
        return
    blocked = state.blocked_until.get(family)
    if blocked is not None:
        until, status, at = blocked
        if ex.started + CLOCK_SLACK_S < until:
            yield Finding("CLI-010", i, ex.operation,
                          f"sent {until - ex.started:.2f} s before the Retry-After of the HTTP {status} of #{at} ended",
                          "after 429 or 503 wait the Retry-After seconds before the next request to that API")
        else:
            state.exercised.add("CLI-010")
            del state.blocked_until[family]
    if ex.status in (429, 503):
        raw = ex.response_header("Retry-After") or ""
        wait = float(raw) if raw.strip().isdigit() else DEFAULT_RETRY_AFTER_S
        state.blocked_until[family] = (ex.ended + wait, ex.status, i)


def check_extract_purpose(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-011: an extract request names at least one purpose."""
    if ex.operation != "GetCreditRegisterExtract":
        return
    state.exercised.add("CLI-011")
    body = ex.request_json()
    found = list(_values(body, "creditRegisterExtractPurpose"))
    if not any(isinstance(v, list) and v for v in found):
        yield Finding("CLI-011", i, ex.operation, "the extract request names no creditRegisterExtractPurpose",
                      "say why the extract is requested: creditRegisterExtractPurpose with at least one purpose")


def check_artificial_codes(state: ClientState, ex: Exchange, i: int) -> Iterator[Finding]:
    """CLI-012: only artificial personal identity codes (individual number 900-999) towards a Test register."""
    body = ex.request_json()
    if not ex.operation or not isinstance(body, Mapping) or body.get("targetEnvironment") != "Test":
        return
    state.exercised.add("CLI-012")
    for code in sorted(set(_strings(body))):
        individual = hetu_individual(code)
        if individual is not None and individual not in ARTIFICIAL_INDIVIDUALS:
            yield Finding("CLI-012", i, ex.operation,
                          f"identity code ending {code[-4:]!r} is outside the artificial range (individual number "
                          f"{individual:03d}): possibly a real person", "use only the test codes the register gave you")


def _values(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v, key)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node.strip().upper()
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


CHECKS: dict[str, Check] = {
    "CLI-001": check_valid_request, "CLI-002": check_batch_reference, "CLI-003": check_reference_reuse,
    "CLI-004": check_polled_to_final, "CLI-005": check_poll_rate, "CLI-006": check_partial_success,
    "CLI-007": check_owner, "CLI-008": check_no_re_add, "CLI-009": check_new_loan_deadline,
    "CLI-010": check_retry_after, "CLI-011": check_extract_purpose, "CLI-012": check_artificial_codes,
}

# What a recording must hold for a requirement to be shown (the skip reason when it did not).
NEEDS = {
    "CLI-001": "a request to an operation", "CLI-002": "a submission", "CLI-003": "a submission with a reference",
    "CLI-004": "a submission answered 202", "CLI-005": "two polls of one batch",
    "CLI-006": "a FinishedPartialSuccess batch (scenario partial_every)", "CLI-007": "a request whose client "
    "certificate maps to a target identity (through the proxy)", "CLI-008": "an AddLoans request",
    "CLI-009": "a NewReport with a contractDate", "CLI-010": "a request after a 429 or 503 answer "
    "(scenario rate_limit or outage)", "CLI-011": "an extract request", "CLI-012": "a request to a Test register",
}


def judge(state: ClientState, ex: Exchange) -> list[Finding]:
    """Every check on the next exchange; the new findings (also kept in state.findings)."""
    state.count += 1
    new = [f for check in CHECKS.values() for f in check(state, ex, state.count)]
    state.findings += new
    return new


def finish(state: ClientState) -> list[Finding]:
    """CLI-004: every accepted batch left without a final state is abandoned."""
    new = [Finding("CLI-004", at, "GetBatchStatus", f"batch {ref!r} was never polled to a final state",
                   "poll GetBatchStatus (with back-off) until FinishedSuccess, FinishedPartialSuccess or FinishedFailed")
           for ref, at in sorted(state.open_batches.items(), key=lambda kv: kv[1])]
    state.open_batches.clear()
    state.findings += new
    return new


def replay(exchanges: Iterable[Exchange], reading: str = "reference") -> ClientState:
    """The judgement of a whole recording, as the proxy made it live."""
    state = ClientState(reading=readings.check_reading(reading))
    for ex in exchanges:
        judge(state, ex)
    finish(state)
    return state
