"""The fuzzing engine shared by test_<api>.py: schemathesis cases from the spec, sent with the identity
allowed on the API, every answer judged by suites/fuzz/checks.py.

Why not `schemathesis.pytest.from_fixture`: with pytest 9.2 it fails (`Function` has no `_nodeid`) and runs
each operation as a subtest whose failure message is "contains N failed subtests", which names no requirement.
So each operation is its own pytest item (stable id `test_fuzz[<operationId>]`) that builds a Hypothesis test
from the lazily loaded schema of the session's target.

Profiles: the plugin loads the Hypothesis profile named by --profile (`certification`: derandomized, fixed
budget; `regression`: random, longer). The schema's generation settings are derived from that profile, so a
certification run sends the same inputs every time.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import hypothesis
from hypothesis import strategies as st

from pcr_conformance import catalogue, specs

from . import _replay, checks

# Upper bound of generated cases per operation in a derandomized (certification) run: keeps the fuzz kit short.
CERTIFICATION_MAX_EXAMPLES = 20
# A fuzz test's `cost` mark: it sends the spec's examples and up to CERTIFICATION_MAX_EXAMPLES generated cases, and
# on a first run (no cached cases, _replay.py) draws them: 0.3-5 s, AddLoans the longest, against 10-20 ms for
# a plain test (2026-12-03, `--durations` of a cold run). So a worker starts the fuzz modules early.
COST = 100
CERTIFICATION_SEED = 20261121


def operation_ids(family: str) -> list[str]:
    return list(catalogue.operation_ids(family))


@functools.lru_cache(maxsize=8)
def _bundled(family: str) -> dict[str, Any]:
    return specs.load_spec(family)


def schema_for(target: Any, family: str, client: Any) -> Any:
    """A schemathesis schema of the family's spec, aimed at the target with the client's certificate."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(copy.deepcopy(_bundled(family)))
    schema.config.update(base_url=target.base_url(family), tls_verify=target.tls.ca_bundle or True,
                         request_cert=client.cert, request_cert_key=client.key, request_timeout=target.timeout_s)
    profile = hypothesis.settings.default
    if profile.derandomize:
        schema.config.generation.update(deterministic=True,
                                        max_examples=min(profile.max_examples, CERTIFICATION_MAX_EXAMPLES))
        schema.config.seed = CERTIFICATION_SEED
    else:
        schema.config.generation.update(deterministic=False, max_examples=profile.max_examples)
    return schema


def _own_envelope(case: Any, client: Any) -> None:
    """Positive cases are sent as the caller's own organisation, so they reach the business logic instead of
    stopping at the owner check (which the security suite covers)."""
    if isinstance(case.body, dict):
        case.body["targetEnvironment"] = client.target.environment
        case.body["owner"] = client.owner


class FuzzLog:
    """Which of a fuzz test's calls become its attachments (one per call, as for every test): the
    first FIRST passing cases, every EVERY-th after them, and the failing case. Hypothesis replays the minimal
    failing example last, so the last failing call is the one the failure message describes."""

    FIRST = 5
    EVERY = 10

    def __init__(self, client: Any, operation_id: str) -> None:
        self.client = client
        self.operation_id = operation_id
        self.passing = 0
        self.sampled: list[Any] = []
        self.failing: Any = None
        self.replayed = False  # the generated cases came from the cache of the last passing run (_replay.py)

    def call(self, case: Any, response: Any = None, error: str = "") -> Any:
        """A calllog.Call of one schemathesis request and its answer (or the error instead of an answer)."""
        from pcr_conformance.calllog import Call

        request = getattr(response, "request", None) if response is not None else None
        method = str(getattr(request, "method", None) or case.method).upper()
        url = str(getattr(request, "url", None) or case.formatted_path)
        headers = {str(k): str(v) for k, v in (getattr(request, "headers", None) or case.headers or {}).items()}
        body = getattr(request, "body", None) if request is not None else None
        if body is None and case.body is not None and not isinstance(case.body, (bytes, str)):
            import json

            body = json.dumps(case.body, ensure_ascii=False, default=str)
        record = Call(slot=self.client.slot, operation=self.operation_id, method=method, url=url,
                      request_headers=headers, request_body=_text(body), cacert=self.client.target.tls.ca_bundle,
                      cert=self.client.cert, key=self.client.key, error=error)
        if response is not None:
            record.status = response.status_code
            record.duration_s = float(getattr(response, "elapsed", 0.0) or 0.0)
            record.response_headers = {k: ", ".join(v) if isinstance(v, list) else str(v)
                                       for k, v in (response.headers or {}).items()}
            record.response_body = _text(response.content)
        return record

    def passed(self, record: Any) -> None:
        self.passing += 1
        n = self.passing
        if n <= self.FIRST or n % self.EVERY == 0:
            record.note = f"passing case {n}{' (replayed)' if self.replayed else ''}"
            self.sampled.append(record)

    def failed(self, record: Any, reason: str) -> None:
        record.note = f"failing case: {reason.splitlines()[0][:200]}"
        self.failing = record

    def flush(self) -> None:
        """Into the test's CallLog: the sample of passing cases, then the failing one."""
        for record in self.sampled + ([self.failing] if self.failing is not None else []):
            self.client.record(record)
        self.sampled, self.failing = [], None


def _text(body: Any, limit: int = 64 * 1024) -> str:
    if not body:
        return ""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    text = bytes(body[:limit]).decode("utf-8", "replace")
    return text + (f"\n... ({len(body)} bytes in all)" if len(body) > limit else "")


def fuzz_operation(target: Any, family: str, operation_id: str, client: Any, data: Any) -> None:
    """Send the spec's request examples and then generated cases; every answer must pass every check.
    The failing case and a sample of the passing ones are attached to the test (FuzzLog)."""
    log = FuzzLog(client, operation_id)
    try:
        _fuzz(target, family, operation_id, client, data, log)
    finally:
        log.flush()


def _fuzz(target: Any, family: str, operation_id: str, client: Any, data: Any, log: FuzzLog) -> None:
    from schemathesis import GenerationMode

    schema = schema_for(target, family, client)
    operation = schema.find_operation_by_id(operation_id)
    timeout = target.timeout_s

    # 1. The documented examples, as the caller (deterministic: the same bodies on every run).
    for _name, body in sorted(specs.request_examples(operation_id).items()):
        headers = ({"BatchReference": data.batch_reference(f"fuzz_{operation_id}")}
                   if operation_id in catalogue.submit_operations() else None)
        case = operation.Case(body=copy.deepcopy(body), headers=headers)
        _own_envelope(case, client)
        _check(case, timeout, log)

    # 2. Generated cases: schema-valid ones sent as the caller, schema-invalid ones as generated.
    settings = schema.config.get_hypothesis_settings(operation=operation, phase="fuzzing")
    # A derandomized run draws the same cases every time: the last passing run's cases are sent again without
    # drawing them (_replay.py says why that is the same run).
    cache_key = _replay.key(operation_id, _bundled(family), settings, schema.config) if settings.derandomize else ""
    cached = _replay.load(cache_key) if cache_key else None
    if cached is not None:
        log.replayed = True
        for rec in cached:
            case = _replay.rebuild(operation, rec)
            if rec["own"]:
                _own_envelope(case, client)
            _check(case, timeout, log)
        return
    records: list[Any] = []
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)  # ~50 ms for AddLoans: not on a replay
    negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    # schemathesis' settings do not carry the profile's suppressed health checks: without them a busy machine
    # (slow input generation, HealthCheck.too_slow) made a fuzz test broken, which says nothing of the register.
    suppressed = {*settings.suppress_health_check, *hypothesis.settings.default.suppress_health_check}

    @hypothesis.settings(settings, report_multiple_bugs=False, database=None,
                         suppress_health_check=sorted(suppressed, key=lambda check: check.value))
    @hypothesis.given(case=st.one_of(positive, negative), own=st.booleans())
    def run(case: Any, own: bool) -> None:
        mode = getattr(getattr(case.meta, "generation", None), "mode", None)
        own = own and mode == GenerationMode.POSITIVE
        records.append(_replay.record(case, own) if cache_key else None)
        if own:
            _own_envelope(case, client)
        _check(case, timeout, log)

    if settings.derandomize:
        run = hypothesis.seed(CERTIFICATION_SEED)(run)
    run()
    if cache_key and records and None not in records:  # every case passed (a failure raised above)
        _replay.store(cache_key, records)


def _check(case: Any, timeout: float, log: FuzzLog) -> None:
    """One request, recorded, and every check on its answer."""
    response = _call(case, timeout, log)
    record = log.call(case, response)
    try:
        checks.run_all(response, case)
    except AssertionError as exc:
        log.failed(record, str(exc))
        raise
    log.passed(record)


@functools.lru_cache(maxsize=4)
def _session(timeout: float, max_bytes: int) -> Any:
    """A requests session whose requests end at `timeout` as a whole (connect, first byte, body) and whose
    bodies stop at max_bytes after decompression (pcr_conformance.deadline); schemathesis's own session class,
    so redirects are followed only within the host, as without it."""
    from pcr_conformance import deadline

    try:
        from schemathesis.transport.requests import SameHostRedirectsSession as base
    except ImportError:  # pragma: no cover - another schemathesis layout
        base = None
    return deadline.session(timeout, max_bytes, base)


def _call(case: Any, timeout: float, log: FuzzLog) -> Any:
    """One request under the target's deadline; a network failure is the harness's problem (broken), never a
    check failure, and counts for the circuit breaker like any other request of the session."""
    import requests

    from pcr_conformance.deadline import AnswerTooLarge
    from pcr_conformance.errors import TargetUnreachable

    client = log.client
    breaker = client.breaker
    breaker.check()
    try:
        # Redirects are not followed, as by the harness's own clients: a 3xx is the answer the checks judge.
        response = case.call(timeout=timeout, session=_session(timeout, client.target.max_answer_bytes),
                             allow_redirects=False)
    except AnswerTooLarge as exc:
        breaker.missed("too-large", f"{case.operation.label}: {exc}")
        log.failed(log.call(case, error=f"{type(exc).__name__}: {exc}"), "answer too large")
        raise AnswerTooLarge(f"{case.operation.label}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        if isinstance(exc, requests.exceptions.Timeout):
            kind = "timeout"
        elif "SSL" in str(exc):
            kind = "tls"
        elif isinstance(exc, requests.exceptions.ConnectionError) and "refused" in str(exc).lower():
            kind = "connect"
        else:
            kind = "network"
        why = f"{type(exc).__name__}: {exc}"
        breaker.missed(kind, f"{case.operation.label}: {why}")
        log.failed(log.call(case, error=why), f"no answer: {type(exc).__name__}")
        raise TargetUnreachable(f"{case.operation.label}: no answer ({kind}): {why}", kind=kind) from exc
    breaker.answered()
    return response
