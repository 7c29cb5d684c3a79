"""uvicorn over mutual TLS (SEC-001..003, SEC-010): client certificate verified against DIR/ca.pem, TLS >= 1.2.

uvicorn 0.54 puts no TLS information in the ASGI scope, so a small subclass of its h11 protocol copies the
peer certificate (DER) of each connection into scope["state"], where app.py reads it. The same subclass
answers what never reaches the application with the error object (ENV-019, ENV-020): a malformed request
line, header or framing (400 H40; a header block over 16 KB 431 H40; h11's 501 for an unknown
Transfer-Encoding becomes 400 H40), and a request whose headers do not arrive within the read deadline
(408 H08, or the connection closed when not a byte of it came). The body deadline is the app's (app.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from pcr_register import memory, variant, worker
from pcr_register.app import PEER_CERT_KEY, create_app, encode
from pcr_register.config import MAX_HEADER_BYTES, read_deadline_s
from pcr_register.errors import error_body, item
from pcr_register.state import Register

log = logging.getLogger("pcr_register.server")


class PeerCertProtocol(H11Protocol):
    """h11 protocol that exposes the verified client certificate to the app (handshake is complete here)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Headers and body leave as separate TLS records: without TCP_NODELAY, Nagle plus the peer's
            # delayed ACK add ~40 ms to every answer.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app_state = {**self.app_state, PEER_CERT_KEY: der}


class RegisterProtocol(PeerCertProtocol):
    """PeerCertProtocol that answers framing errors and the header deadline with the error object.

    Configured per server by subclassing (``protocol_class``): read_deadline_s, the error answer's bytes, and
    plain_text (the fault header_abuse_plain_text: uvicorn's own text/plain 400)."""

    read_deadline_s: float = 10.0
    plain_text: bool = False
    error_bytes: Callable[[list[dict[str, Any]], int], bytes] = staticmethod(lambda items, status: b"{}")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._protocol_error: h11.ProtocolError | None = None
        next_event = self.conn.next_event

        def remembering_next_event() -> Any:  # uvicorn swallows the error; its status hint (431) is needed
            try:
                return next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error = exc
                raise

        self.conn.next_event = remembering_next_event  # type: ignore[method-assign]
        self._arm()  # the first request line must come within the deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)
        except Exception:  # anything uvicorn did not foresee in a request head: a 400, never a traceback
            log.warning("unreadable request head", exc_info=True)
            self._refuse(400, item("H40"))
            return
        self._watch()

    def shutdown(self) -> None:
        """Stopping: an idle keep-alive connection is dropped at once. uvicorn closes it politely, and TLS then
        waits for the client's close_notify, which an idle client never sends: every stop took the harness's
        whole grace period (5 s, then SIGKILL). Nothing is lost: no request is in flight on it."""
        idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        if idle:
            self.transport.abort()

    def on_response_complete(self) -> None:
        self._disarm()  # an idle keep-alive connection is uvicorn's timeout_keep_alive
        super().on_response_complete()
        if not self.transport.is_closing():
            self._watch()

    def send_400_response(self, msg: str) -> None:
        if self.plain_text:  # fault header_abuse_plain_text (breaks ENV-019)
            super().send_400_response(msg)
            return
        hint = getattr(self._protocol_error, "error_status_hint", 400)
        self._refuse(431 if hint == 431 else 400, item("H40"))

    # -- the header deadline (ENV-020) --------------------------------------------------------------------
    def _watch(self) -> None:
        """Arm the deadline while the client owes something: the rest of a request head, or the rest of a body
        the app has already answered; otherwise the app (body) or keep-alive (idle) is in charge."""
        their, ours = self.conn.their_state, self.conn.our_state
        owes_head = their is h11.IDLE and bool(self.conn.trailing_data[0])
        owes_unread_body = their is h11.SEND_BODY and ours in (h11.DONE, h11.MUST_CLOSE)
        if owes_head or owes_unread_body:
            self._arm()
        elif their is not h11.IDLE:
            self._disarm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_deadline_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self._refuse(408, item("H08"))  # part of a request head came, the rest did not
        elif self.conn.their_state is h11.IDLE or self.conn.our_state in (h11.DONE, h11.MUST_CLOSE):
            self.transport.close()  # nothing of a request came, or the answer is out: nothing to say

    def _refuse(self, status: int, error: dict[str, Any]) -> None:
        """Write the error answer directly (h11 may not be able to frame it) and close the connection."""
        self._disarm()
        if self.transport.is_closing():
            return
        body = self.error_bytes([error], status)
        head = (f"HTTP/1.1 {status} {STATUS_PHRASES[status].decode()}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n")
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


def protocol_class(reg: Register) -> type[RegisterProtocol]:
    """RegisterProtocol configured for this register (deadline, faults, the error texts of errors.yaml)."""
    faults = reg.faults
    with_correlation_id = not faults.on("missing_correlation_id")
    rewrite = variant.rewriter(reg.specs, reg.config.variant)  # H40/H08 below the app: the variant's codes too

    def error_bytes(items: list[dict[str, Any]], status: int) -> bytes:
        body = error_body(reg.specs.describe(items), with_correlation_id=with_correlation_id)
        return encode(rewrite("", status, body))

    return type("ConfiguredRegisterProtocol", (RegisterProtocol,), {
        "read_deadline_s": read_deadline_s(faults),
        "plain_text": faults.on("header_abuse_plain_text"),
        "error_bytes": staticmethod(error_bytes),
    })


def ssl_context(reg: Register) -> ssl.SSLContext:
    data = reg.config.data_dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # SEC-010
    if reg.faults.on("allow_tls_1_0"):  # breaks SEC-010
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(data / "server.pem", data / "server.key")
    ctx.load_verify_locations(data / "ca.pem")  # SEC-002: only the register's CA; expiry checked (SEC-003)
    if reg.faults.on("trust_foreign_ca"):  # breaks SEC-002
        ctx.load_verify_locations(data / "foreign-ca" / "ca.pem")
    if reg.faults.on("accept_expired_certificate"):  # breaks SEC-003: OpenSSL's X509_V_FLAG_NO_CHECK_TIME
        ctx.verify_flags |= ssl.VerifyFlags(0x200000)
    # SEC-001: no certificate, no handshake (the fault ignore_client_cert makes it optional)
    ctx.verify_mode = ssl.CERT_OPTIONAL if reg.faults.on("ignore_client_cert") else ssl.CERT_REQUIRED
    return ctx


def serve(reg: Register, host: str, port: int, on_listening: Callable[[str], None] | None = None) -> None:
    """Bind, print the URL, run the worker and the server until interrupted."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    actual_port = sock.getsockname()[1]
    context = ssl_context(reg)

    def factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    config = uvicorn.Config(
        create_app(reg),
        http=protocol_class(reg),
        ws="none",  # no upgrade to WebSocket: an Upgrade header is a plain request
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # 431 H40 beyond it (ENV-019)
        ssl_context_factory=factory,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        # Stopped (SIGTERM), the register does not wait for clients that still owe it a request (a harness's
        # read-deadline probes hold connections open up to the read deadline): 1 s, then they are closed.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    memory.limit_arenas()
    stop = threading.Event()
    worker.start(reg, stop)
    memory.start_trimmer(stop)
    url_host = f"[{host}]" if ":" in host else host
    url = f"https://{url_host}:{actual_port}"
    if on_listening:
        on_listening(url)
    else:
        print(f"listening on {url}", flush=True)
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
