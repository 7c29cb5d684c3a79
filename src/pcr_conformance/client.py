"""API clients of the suites (docs/interfaces.md §10): one ApiClient per identity slot.

Each ApiClient speaks mutual TLS with its slot's certificate, applies the target's timeout and rate limit,
and records every call into the test's CallLog (attached to the Allure report by the plugin). Network
failures raise TargetUnreachable, never AssertionError: they are *broken*, not *failed* (docs/concepts.md#outcomes).
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from pcr_conformance import catalogue, deadline, judging
from pcr_conformance.calllog import Call, CallLog, headers_dict
from pcr_conformance.cleanup import LoanLedger
from pcr_conformance.errors import HarnessError, RequirementFailure, TargetUnreachable
from pcr_conformance.messages import apply_overrides
from pcr_conformance.target import Target

FINAL_BATCH_STATES = ("FinishedSuccess", "FinishedPartialSuccess", "FinishedFailed")

# After this many batches in a row missed batch_deadline_s, a batch is polled once, not waited for: a register
# whose batches never finish fails BAT-010 test by test in moments instead of batch_deadline_s each.
STALLED_BATCHES = 3

# Bodies recorded for attachments are cut here: ENV-008 sends 5 MiB, which no report should hold.
_MAX_RECORDED = 64 * 1024


def family_of(operation: str) -> str:
    """The API family of an operation (the key of the target's [base_urls]); an operation the specs do not
    define goes to the reporting base URL (ENV-016 probes an unknown path)."""
    return catalogue.family_of(operation) or "reporting"


@dataclasses.dataclass(frozen=True)
class Submission:
    batch_reference: str
    response: httpx.Response


class RateLimiter:
    """At most `rate_per_s` requests per second over the whole session (0 = unlimited)."""

    def __init__(self, rate_per_s: float) -> None:
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


def ssl_context(ca_bundle: str, cert: str = "", key: str = "") -> ssl.SSLContext:
    """A client TLS context. httpx 0.28 keeps the client certificate only when it sits in the context
    given as `verify=` (`cert=` beside a `verify=` path silently drops it)."""
    try:
        if ca_bundle:
            ctx = ssl.create_default_context(cafile=ca_bundle)
        else:
            import certifi  # httpx's own trust store dependency

            ctx = ssl.create_default_context(cafile=certifi.where())
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as e:
        raise HarnessError(f"cannot load TLS material (ca_bundle={ca_bundle!r}, cert={cert!r}, key={key!r}): {e}; "
                           f"check the [tls] and [identities] paths of the target") from e
    return ctx


class TargetDead(TargetUnreachable):
    """The circuit breaker is open: the target gave no answer to BREAKER_LIMIT requests in a row."""


class CircuitBreaker:
    """Counts requests in a row, across tests, that got no usable answer. It opens when DEAD_LIMIT of them got
    no answer at all (a timeout or a refused connection), or UNUSABLE_LIMIT got none that could be read (also
    a broken or reset connection, a garbled answer, one over max_answer_bytes): `tripped` names the cause,
    every later request fails at once with TargetDead, and the plugin stops the kit with that line instead
    of every test waiting its timeout. An answer, or a test that passes, closes it again; a refused TLS
    handshake counts neither way (the security tests expect it)."""

    DEAD_KINDS = ("timeout", "connect")
    UNUSABLE_KINDS = ("timeout", "connect", "network", "too-large")
    DEAD_LIMIT = 3
    UNUSABLE_LIMIT = 5

    def __init__(self) -> None:
        self.dead = 0
        self.unusable = 0
        self.tripped = ""
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.tripped:
            raise TargetDead(self.tripped, kind="timeout")

    def answered(self) -> None:
        with self._lock:
            self.dead = self.unusable = 0

    def missed(self, kind: str, what: str) -> None:
        """A request that got no usable answer (`what`: its one-line error)."""
        if kind not in self.UNUSABLE_KINDS:
            return
        with self._lock:
            self.unusable += 1
            self.dead = self.dead + 1 if kind in self.DEAD_KINDS else 0
            if self.tripped:
                return
            if self.dead >= self.DEAD_LIMIT:
                how = "timeout" if kind == "timeout" else "connection refused"
                self.tripped = f"target plainly dead: {self.dead} requests in a row got no answer ({how}); last: {what}"
            elif self.unusable >= self.UNUSABLE_LIMIT:
                self.tripped = (f"target gives no usable answer: {self.unusable} requests in a row got none "
                                f"that could be read ({kind}); last: {what}")


class HttpPool:
    """Session-wide httpx clients, one per certificate, so connections are reused across tests."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.limiter = RateLimiter(target.rate_limit_per_s)
        self.breaker = CircuitBreaker()
        # Batches in a row that missed batch_deadline_s: from STALLED_BATCHES on, wait_batch stops waiting.
        self.stalled_batches = 0
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._lock = threading.Lock()

    def client(self, cert: str, key: str) -> httpx.Client:
        with self._lock:
            c = self._clients.get((cert, key))
            if c is None:
                c = httpx.Client(
                    verify=ssl_context(self.target.tls.ca_bundle, cert, key),
                    timeout=httpx.Timeout(self.target.timeout_s),
                    follow_redirects=False,
                    # Proxies from the environment must not capture the embedded register on 127.0.0.1.
                    trust_env=not self.target.embedded,
                )
                deadline.install(c)  # timeout_s bounds the whole request, not each read
                self._clients[(cert, key)] = c
            return c

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()


class ApiClient:
    """Calls the register as one identity. Create through Clients.get(slot)."""

    def __init__(self, *, slot: str, owner: Mapping[str, str], cert: str, key: str, target: Target,
                 pool: HttpPool, log: CallLog, new_batch_reference: Callable[[str], str],
                 ledger: LoanLedger | None = None) -> None:
        self.slot = slot
        self._ledger = ledger  # loans this run reported, cancelled at session end (cleanup.py)
        self._owner = dict(owner)
        self.cert = cert
        self.key = key
        self.target = target
        self._pool = pool
        self._log = log
        self._new_batch_reference = new_batch_reference

    @property
    def owner(self) -> dict[str, str]:
        return dict(self._owner)

    @property
    def breaker(self) -> CircuitBreaker:
        """The session's circuit breaker: requests made outside `call()` (the fuzz engine's) report to it too."""
        return self._pool.breaker

    def record(self, call: Call) -> None:
        """Add a call made outside `call()` (the fuzz engine's schemathesis requests) to this test's CallLog."""
        self._log.add(call)

    def envelope(self, **members: Any) -> dict[str, Any]:
        """targetEnvironment + owner + the given members (interfaces.md §1)."""
        return {"targetEnvironment": self.target.environment, "owner": self.owner, **members}

    def url(self, operation: str) -> str:
        return f"{self.target.base_url(family_of(operation))}/{operation}"

    def call(self, operation: str, body: Any = None, *, headers: Mapping[str, str] | None = None,
             content: bytes | str | None = None, content_type: str | None = "application/json",
             method: str = "POST") -> httpx.Response:
        """One request to /<operation>. `content` sends raw bytes instead of the JSON of `body`."""
        if content is None and body is not None:
            content = json.dumps(body, ensure_ascii=False)
        if isinstance(content, str):
            content = content.encode("utf-8")
        hdrs: dict[str, str] = {}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        url = self.url(operation)
        record = Call(slot=self.slot, operation=operation, method=method, url=url, request_headers=hdrs,
                      request_body=_text(content), cacert=self.target.tls.ca_bundle, cert=self.cert,
                      key=self.key)
        self._log.add(record)
        self._pool.breaker.check()
        self._pool.limiter.wait()
        started = time.monotonic()
        client = self._pool.client(self.cert, self.key)
        limit = self.target.timeout_s
        try:
            with deadline.bounded(limit):
                request = client.build_request(method, url, content=content, headers=hdrs)
                resp = client.send(request, stream=True)
                try:
                    deadline.read_body(resp, self.target.max_answer_bytes)
                finally:
                    resp.close()
        except httpx.TransportError as e:
            record.duration_s = time.monotonic() - started
            kind = _kind(e)
            why = f"{type(e).__name__}: {e}"
            if kind == "timeout":
                why = (f"no complete answer within timeout_s = {limit:g} s (connect, first byte and whole body; "
                       f"{type(e).__name__}: {e})")
            record.error = why
            self._pool.breaker.missed(kind, f"{operation}: {why}")
            raise TargetUnreachable(f"{operation}: {url} did not answer ({kind}): {why}", kind=kind) from e
        except (deadline.AnswerTooLarge, httpx.DecodingError) as e:
            record.duration_s = time.monotonic() - started
            record.error = f"{type(e).__name__}: {e}"
            self._pool.breaker.missed("too-large" if isinstance(e, deadline.AnswerTooLarge) else "network",
                                      f"{operation}: {record.error}")
            if isinstance(e, httpx.DecodingError):
                raise HarnessError(f"{operation}: {url}: the answer's body could not be decoded "
                                   f"(Content-Encoding): {e}") from e
            raise deadline.AnswerTooLarge(f"{operation}: {url}: {e}") from e
        self._pool.breaker.answered()
        record.duration_s = time.monotonic() - started
        record.status = resp.status_code
        record.response_headers = headers_dict(resp.headers)
        record.response_body = _text(resp.content)
        return resp

    # ---- reporting ------------------------------------------------------------------------------------

    def submit(self, operation: str, reports: Iterable[Mapping[str, Any]], *, batch_reference: str | None = None,
               body_overrides: Mapping[str, Any] | None = None) -> Submission:
        """Envelope + the operation's collection + the BatchReference header (interfaces.md §2)."""
        collection = catalogue.collection_of(operation)
        if collection is None:
            raise HarnessError(f"submit: {operation} is not a submitting operation; "
                               f"use one of {list(catalogue.submit_operations())}")
        ref = batch_reference or self._new_batch_reference(operation)
        body = self.envelope(**{collection: [dict(r) for r in reports]})
        body = apply_overrides(body, body_overrides or {})
        resp = self.call(operation, body, headers={catalogue.BATCH_REFERENCE_HEADER: ref})
        if self._ledger is not None and operation == "AddLoans" and resp.status_code == 202:
            self._ledger.record(self.slot, body.get(collection) or [])
        return Submission(batch_reference=ref, response=resp)

    def batch_status(self, batch_reference: str) -> httpx.Response:
        return self.call("GetBatchStatus", self.envelope(batchReference=batch_reference))

    def batch_deadline_s(self) -> float:
        """The time within which a batch must be final (BAT-010): the implementation profile's batch deadline
        when it states one (ENV-024), else the target's."""
        return float(judging.value("batch_deadline_s", self.target.batch_deadline_s)[0])

    def wait_batch(self, batch_reference: str, *, accepted_at: float | None = None) -> dict[str, Any]:
        """Polls GetBatchStatus with backoff until a final state; past batch_deadline_s: RequirementFailure BAT-010.

        The deadline counts from `accepted_at` (time.monotonic() when the register's 202 had come) when given, so
        a test that polled the batch itself first does not grant it the deadline twice; else from now."""
        limit = self.batch_deadline_s()
        stalled = self._pool.stalled_batches >= STALLED_BATCHES
        deadline_at = (time.monotonic() if accepted_at is None else accepted_at) + (0.0 if stalled else limit)
        delay = 0.05
        last = "no answer yet"
        while True:
            resp = self.batch_status(batch_reference)
            if resp.status_code != 200:
                raise RequirementFailure("BAT-001", "GetBatchStatus", f"200 for accepted batch {batch_reference}",
                                         f"{resp.status_code}: {resp.text[:500]}")
            status = _json(resp, "BAT-001", "GetBatchStatus")
            last = str(status.get("batchStatus"))
            if last not in FINAL_BATCH_STATES:
                judging.observe("processing_literal", last, "GetBatchStatus")  # any other literal: still processing
            if last in FINAL_BATCH_STATES:
                self._pool.stalled_batches = 0
                return status
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                self._pool.stalled_batches += 1
                note = (f" (not waited: {self._pool.stalled_batches - 1} batches in a row missed the deadline "
                        f"before this one)" if stalled else "")
                raise RequirementFailure("BAT-010", "GetBatchStatus", f"a final state of batch {batch_reference} "
                                         f"within {limit:g} s", repr(last) + note)
            # Fast first, then backing off; a register that says when to ask again (Retry-After) is believed,
            # within the deadline (BAT-010 is judged at the deadline, not at the hint).
            hint = deadline.retry_after_s(resp.headers.get("retry-after", ""))
            time.sleep(min(hint if hint is not None else delay, remaining))
            delay = min(delay * 2, 1.0)

    def submit_and_wait(self, operation: str, reports: Iterable[Mapping[str, Any]], *,
                        batch_reference: str | None = None,
                        body_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """submit, require 202 (RPT-002), then wait for the final batch status and return it."""
        sub = self.submit(operation, reports, batch_reference=batch_reference, body_overrides=body_overrides)
        if sub.response.status_code != 202:
            raise RequirementFailure("RPT-002", operation, f"202 Accepted for batch {sub.batch_reference}",
                                     f"{sub.response.status_code}: {sub.response.text[:500]}")
        return self.wait_batch(sub.batch_reference)

    def get_loan(self, loan_number: Mapping[str, str]) -> httpx.Response:
        return self.call("GetLoan", self.envelope(loanNumber=dict(loan_number)))

    # ---- extract --------------------------------------------------------------------------------------

    def extract(self, id_code: str, purposes: Iterable[str] = ("NewConsumerCredit",)) -> httpx.Response:
        return self.call("GetCreditRegisterExtract", self.envelope(request={
            "idCodeType": "PersonalIdentityCode", "idCode": id_code,
            "creditRegisterExtractPurpose": list(purposes)}))


class IdentityRefused(HarnessError):
    """An identity slot whose certificate cannot connect (tlsprobe found it at session start): the test that
    asks for it is broken, never failed, with the one line naming the slot and the cause. Not a
    TargetUnreachable: the security tests read a TargetUnreachable of kind "tls" as the expected refusal."""

    def __init__(self, slot: str, line: str) -> None:
        super().__init__(line)
        self.slot = slot


class Clients:
    """The pcr_clients fixture: ApiClients by identity slot, all recording into one test's CallLog.

    `problems` ({slot: line}, from tlsprobe at session start) names the slots that cannot connect; asking for
    one raises IdentityRefused."""

    def __init__(self, target: Target, pool: HttpPool, log: CallLog,
                 new_batch_reference: Callable[[str], str], ledger: LoanLedger | None = None,
                 problems: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.log = log
        self.problems = dict(problems or {})
        self._ledger = ledger
        self._pool = pool
        self._new_batch_reference = new_batch_reference
        self._cache: dict[str, ApiClient] = {}

    def has(self, slot: str) -> bool:
        return slot in self.target.identities

    def get(self, slot: str) -> ApiClient:
        """The client of an identity slot; the test is skipped (not claimed) when the slot is not configured,
        broken (IdentityRefused) when its certificate cannot connect."""
        if slot in self.problems:
            raise IdentityRefused(slot, self.problems[slot])
        if slot not in self._cache:
            identity = self.target.identities.get(slot)
            if identity is None:
                import pytest

                pytest.skip(f"not claimed: identity slot {slot!r} is not configured in target {self.target.name!r}")
            self._cache[slot] = self._client(slot, identity.owner, identity.cert, identity.key, ledger=self._ledger)
        return self._cache[slot]

    def with_certificate(self, cert: str, key: str, *, owner: Mapping[str, str], label: str) -> ApiClient:
        """A client with any certificate (security tests: another CA, expired, another role)."""
        return self._client(label, owner, cert, key)

    def without_certificate(self, *, owner: Mapping[str, str], label: str = "no-certificate") -> ApiClient:
        """A client that presents no client certificate (SEC-001)."""
        return self._client(label, owner, "", "")

    def extra(self, kind: str, *, owner: Mapping[str, str] | None = None) -> ApiClient:
        """A client with the target's `extra_certificates.<kind>` ("expired", "foreign"); skipped when absent.
        The owner defaults to the lender slot's."""
        pair = self.target.extra_certificates.get(kind)
        if pair is None:
            import pytest

            pytest.skip(f"not claimed: extra_certificates.{kind} is not configured in target {self.target.name!r}")
        if owner is None:
            owner = self.get("lender").owner
        return self._client(kind, owner, pair.cert, pair.key)

    def _client(self, slot: str, owner: Mapping[str, str], cert: str, key: str,
                ledger: LoanLedger | None = None) -> ApiClient:
        # Only configured identity slots record into the ledger: cleanup can call again as them.
        return ApiClient(slot=slot, owner=owner, cert=cert, key=key, target=self.target, pool=self._pool,
                         log=self.log, new_batch_reference=self._new_batch_reference, ledger=ledger)


def _kind(e: httpx.TransportError) -> str:
    text = f"{type(e).__name__} {e}".lower()
    if isinstance(e, httpx.TimeoutException):
        return "timeout"
    if any(w in text for w in ("ssl", "tls", "certificate", "handshake", "alert")):
        return "tls"
    if isinstance(e, httpx.ConnectError) and ("refused" in text or "errno 111" in text):
        return "connect"
    return "network"


def _text(content: bytes | None) -> str:
    if not content:
        return ""
    if len(content) > _MAX_RECORDED:
        return content[:_MAX_RECORDED].decode("utf-8", "replace") + f"\n... ({len(content)} bytes in all)"
    return content.decode("utf-8", "replace")


def _json(resp: httpx.Response, requirement: str, operation: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise RequirementFailure(requirement, operation, "a JSON body", repr(resp.text[:300])) from None
    if not isinstance(data, dict):
        raise RequirementFailure(requirement, operation, "a JSON object", f"{data!r:.300}")
    return data
