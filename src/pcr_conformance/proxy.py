"""The validating proxy (`pcr-conformance proxy`, docs/client-testing.md): a stakeholder's system talks to it
instead of the register; it forwards every request, records the exchange, judges it against the client
requirements as it goes (client_rules.judge: a live line per finding) and plays the scripted register behaviour
of a scenario (scenario.py).

Engine: a plain ASGI callable on uvicorn, with a pool of kept-alive h11 connections per upstream identity
(upstream.py). The reference register is an ASGI app on uvicorn too, so mutual TLS on both sides is the same
ssl.SSLContext code as the rest of the kit, the peer certificate reaches the app the way it reaches the
register (a small h11 protocol subclass), and nothing new is installed. mitmproxy would
bring its own CA handling, an addon API and a large dependency tree for what is here a reverse proxy to one
known upstream; it cannot be used as a library without its event loop and options machinery either.

Identity: the certificate the client presents is matched (DER) against the target's identities; the request
goes upstream with that identity's certificate, so against the real test environment the stakeholder's own
certificate is used on both legs. A certificate no identity has goes upstream with the identity whose role the
operation's family needs (`fallback`), and CLI-007 is not judged for it.

The request path does only what the answer needs: read the body, play the scenario, forward it over a kept-alive
connection (upstream.py), answer. Judging (client_rules.judge: every check, CLI-001 validating the whole
request) runs after the answer has gone (LiveJudge), in the order the exchanges ended, with its live lines; so
the latency the proxy adds is the forwarding alone (benchmarks/proxy.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import queue
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from pcr_conformance import catalogue, client_rules, specs
from pcr_conformance.client import ssl_context
from pcr_conformance.scenario import NO_SCENARIO, Scenario
from pcr_conformance.target import Identity, Target
from pcr_conformance.testdata import load_pool
from pcr_conformance.traffic import Exchange, Headers
from pcr_conformance.upstream import Pool, UpstreamError, origin_and_target

PEER_KEY = "pcr.proxy.peer"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a request beyond it is refused (413), never buffered without bound
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "host", "content-length", "content-encoding"}
# The proxy judges the answer's text, so it asks the register for it uncompressed (upstream.py still decodes
# gzip and deflate); the client's own Accept-Encoding stays in the recording.
NOT_FORWARDED = HOP_BY_HOP | {"accept-encoding"}
IDENTITY_CODING = ("accept-encoding", "identity")


class PeerCertProtocol(H11Protocol):
    """uvicorn's h11 protocol with the verified client certificate (DER) in scope["state"] (the handshake is
    complete when the connection is made); the reference register does the same in its own server.py."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Headers and body leave as separate TLS records: without TCP_NODELAY, Nagle plus the client's
            # delayed ACK add ~40 ms to every answer (the register does the same).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app_state = {**self.app_state, PEER_KEY: der}


def server_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """Mutual TLS towards the client: TLS >= 1.2, a client certificate of `client_ca` required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _der(pem_file: str) -> bytes | None:
    try:
        return ssl.PEM_cert_to_DER_cert(Path(pem_file).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


JSON_TYPE = (("content-type", "application/json"),)


def error_answer(code: str, *, retry_after_s: int | None = None, detail: str = "") -> tuple[int, Headers, bytes]:
    """An answer the proxy gives itself: the error object (ENV-005 shape) with the code's HTTP status and
    errorDescription from specs/errors.yaml (H13, H29, H52, H53), so the client sees only what the contract
    defines; `detail` (the cause of a 502) follows the description."""
    entry = specs.load_errors()[code]
    description = f"{entry['description']} {detail}".strip()
    body = json.dumps({"statusMessage": "Failed to process the request.", "correlationId": str(uuid.uuid4()),
                       "errorResponses": [{"fieldName": "", "errorCode": code, "errorDescription": description}]})
    headers = JSON_TYPE if retry_after_s is None else (*JSON_TYPE, ("retry-after", str(retry_after_s)))
    return int(entry["http_status"]), headers, body.encode()


@dataclasses.dataclass
class LiveJudge:
    """The client requirements judged off the request path: an exchange queues up once its answer has gone, and
    one thread of its own judges the queue in that order (the checks look back through one ClientState, so the
    order is the order the exchanges ended), printing a live line per finding. A thread rather than the event
    loop: measured under load (benchmarks/proxy.py, alternating runs), judging in the loop added more latency to
    the next request than the thread's share of the GIL does, and a large batch's judging (CLI-001 validates
    every loan) never holds the other answers for more than the GIL's switch interval. `close` waits until every
    queued exchange is judged; only then is the state read by anyone else."""

    state: client_rules.ClientState
    live: Callable[[str], None]
    _queue: queue.SimpleQueue[Exchange | None] = dataclasses.field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def put(self, ex: Exchange) -> None:
        with self._lock:
            if self._thread is None:  # started by the first exchange: a Proxy that serves nothing has no thread
                self._thread = threading.Thread(target=self._run, name="pcr-proxy-judge", daemon=True)
                self._thread.start()
        self._queue.put(ex)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while (ex := self._queue.get()) is not None:
            try:
                findings = client_rules.judge(self.state, ex)
            except Exception as e:  # noqa: BLE001 - a broken check must not stop the judging of the rest
                self.live(f"[proxy] ERROR judging #{self.state.count} {ex.operation}: {e!r} (the client suite "
                          f"replays the recording through the same checks and reports it broken)")
                continue
            for finding in findings:
                self.live(f"[proxy] FINDING {finding.line()}")


@dataclasses.dataclass
class Proxy:
    """The proxy's state: upstream target, recording, judgement. `app` is the ASGI callable."""

    target: Target
    scenario: Scenario = NO_SCENARIO
    reading: str = "reference"
    live: Callable[[str], None] = print
    exchanges: list[Exchange] = dataclasses.field(default_factory=list)
    judgement: client_rules.ClientState = dataclasses.field(default_factory=client_rules.ClientState)
    started: float = dataclasses.field(default_factory=time.monotonic)
    last_activity: float = dataclasses.field(default_factory=time.monotonic)
    _pools: dict[tuple[str, str], Pool] = dataclasses.field(default_factory=dict)  # (slot, origin) -> pool
    _judge: LiveJudge | None = None
    _by_der: dict[bytes, str] = dataclasses.field(default_factory=dict)
    _accepted_at: dict[str, float] = dataclasses.field(default_factory=dict)  # batch ref -> monotonic (processing_s)
    _report_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    _unknown_persons: list[str] = dataclasses.field(default_factory=list)
    _requests: int = 0
    _first: float | None = None  # when the first request came (the scenario's outage window counts from it)

    def __post_init__(self) -> None:
        self.judgement = client_rules.ClientState(reading=self.reading)
        self._judge = LiveJudge(self.judgement, self.live)
        for slot, ident in self.target.identities.items():
            der = _der(ident.cert)
            if der is not None:
                self._by_der.setdefault(der, slot)
        if self.target.pool and (self.scenario.partial_every or self.scenario.e20_for):
            pool = load_pool(self.target.pool)
            self._unknown_persons = [p.id_code for p in pool.persons if "unknown" in p.tags]

    # ---- identities and upstream -------------------------------------------------------------------------

    def identity_for(self, der: bytes | None, family: str) -> tuple[Identity | None, bool]:
        """(the identity to go upstream with, whether the client's certificate is that identity's)."""
        slot = self._by_der.get(der or b"")
        if slot is not None:
            return self.target.identities[slot], True
        role = catalogue.family_roles().get(family, "reporting")
        fallback = next((i for i in self.target.identities.values() if i.role == role), None)
        return fallback, False

    def upstream(self, ident: Identity | None, origin: str) -> Pool:
        """The kept-alive connections to `origin` with the identity's certificate (made once)."""
        key = (ident.slot if ident else "", origin)
        if key not in self._pools:
            ctx = None
            if origin.startswith("https:"):
                ctx = ssl_context(self.target.tls.ca_bundle, ident.cert if ident else "", ident.key if ident else "")
            self._pools[key] = Pool(origin, ctx, timeout_s=self.target.timeout_s)
        return self._pools[key]

    def finish(self) -> list[client_rules.Finding]:
        """After the server stopped: every exchange judged, then what only the end shows (CLI-004)."""
        if self._judge is not None:
            self._judge.close()
        return client_rules.finish(self.judgement)

    # ---- the ASGI app ------------------------------------------------------------------------------------

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started, t0 = time.time(), time.monotonic()
        self.last_activity = t0
        body = await _read_body(receive)
        headers: Headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        operation = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        family = catalogue.family_of(operation) or "reporting"
        ident, matched = self.identity_for((scope.get("state") or {}).get(PEER_KEY), family)
        if body is None:
            status, out_headers, out = error_answer("H13")
            body = b""
        else:
            status, out_headers, out = await self._answer(scope["method"], operation, family, path, headers, body,
                                                          ident)
        url = f"https://{_header(headers, 'host') or 'proxy'}{path}"
        ex = Exchange(started=started, duration_s=time.monotonic() - t0, method=scope["method"], url=url,
                      request_headers=headers, request_text=body.decode("utf-8", "replace"), status=status,
                      response_headers=out_headers, response_text=out.decode("utf-8", "replace"),
                      client_slot=ident.slot if ident and matched else "",
                      client_owner=dict(ident.owner) if ident and matched else None)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
                    + [(b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})
        self.exchanges.append(ex)
        if self._judge is not None:
            self._judge.put(ex)  # judged on the judge thread, after the answer has gone
        self.last_activity = time.monotonic()

    async def _lifespan(self, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        """At shutdown the upstream connections close in the server's own loop, so the register sees them end
        (an open keep-alive connection would hold its graceful stop)."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in self._pools.values():
                    await pool.aclose()
                self._pools.clear()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _answer(self, method: str, operation: str, family: str, path: str, headers: Headers, body: bytes,
                      ident: Identity | None) -> tuple[int, Headers, bytes]:
        """The scripted answer of the scenario, or the upstream's (with the scenario's rewrites)."""
        self._requests += 1
        sc = self.scenario
        if self._first is None:
            self._first = time.monotonic()
        if sc.outage.covers(time.monotonic() - self._first):  # the window counts from the first request
            return error_answer("H53", retry_after_s=sc.outage.retry_after_s)
        if sc.rate_limit.every and self._requests % sc.rate_limit.every == 0:
            return error_answer("H29", retry_after_s=sc.rate_limit.retry_after_s)
        if operation == "GetBatchStatus" and sc.processing_s:
            held = self._held_status(body)
            if held is not None:
                return 200, JSON_TYPE, held
        if operation == "GetCreditRegisterExtract" and sc.slow_extract_s:
            await asyncio.sleep(sc.slow_extract_s)
        sent = self._rewrite(operation, body)
        base = self.target.base_urls.get(family) or self.target.base_urls.get("reporting", "")
        upstream_url = f"{base.rstrip('/')}/{operation}" if catalogue.family_of(operation) else base.rstrip("/") + path
        origin, upstream_target = origin_and_target(upstream_url)
        forward = (*((k, v) for k, v in headers if k.lower() not in NOT_FORWARDED), IDENTITY_CODING)
        try:
            answer = await self.upstream(ident, origin).request(method, upstream_target, forward, sent)
        except UpstreamError as e:
            return error_answer("H52", detail=f"({e})")
        if operation in catalogue.submit_operations() and answer.status == 202:
            ref = _header(headers, catalogue.BATCH_REFERENCE_HEADER) or ""
            self._accepted_at.setdefault(ref, time.monotonic())
            self._report_counts[ref] = len(_reports(body, operation))
        out_headers = tuple((k, v) for k, v in answer.headers if k.lower() not in HOP_BY_HOP)
        return answer.status, out_headers, answer.body

    def _held_status(self, body: bytes) -> bytes | None:
        """scenario processing_s: a Processing answer while the batch is younger than processing_s."""
        try:
            ref = str(json.loads(body).get("batchReference"))
        except (ValueError, AttributeError):
            return None
        at = self._accepted_at.get(ref)
        if at is None or time.monotonic() - at >= self.scenario.processing_s:
            return None
        received = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - (time.monotonic() - at)))
        return json.dumps({"batchReference": ref, "batchStatus": "Processing",
                           "reportCount": self._report_counts.get(ref, 0), "acceptedCount": 0, "rejectedCount": 0,
                           "receivedTimeUtc": received, "reportResults": []}).encode()

    def _rewrite(self, operation: str, body: bytes) -> bytes:
        """scenario partial_every / e20_for: those reports' borrowers become persons the register does not
        know (pool tag unknown), so the register itself answers E20 for them."""
        sc = self.scenario
        if not self._unknown_persons or operation not in catalogue.submit_operations():
            return body
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        changed = False
        for n, report in enumerate(_reports(doc, operation), 1):
            borrowers = report.get("borrowers") if isinstance(report.get("borrowers"), list) else []
            codes = {b.get("idCode") for b in borrowers if isinstance(b, dict)}
            if (sc.partial_every and n % sc.partial_every == 0) or codes & set(sc.e20_for):
                for b in borrowers:
                    if isinstance(b, dict) and b.get("idCodeType") == "PersonalIdentityCode":
                        b["idCode"] = self._unknown_persons[0]
                        changed = True
        return json.dumps(doc).encode() if changed else body


def _reports(body: bytes | Mapping[str, Any], operation: str) -> list[dict[str, Any]]:
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return []
    member = catalogue.collection_of(operation)
    items = body.get(member) if isinstance(body, Mapping) and member else None
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def _header(headers: Headers, name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


async def _read_body(receive: Callable[..., Any]) -> bytes | None:
    """The whole request body, or None beyond MAX_BODY_BYTES."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)
