"""uvicorn over mutual TLS (SEC-001..003, SEC-010): client certificate verified against DIR/ca.pem, TLS >= 1.2.

uvicorn 0.54 puts no TLS information in the ASGI scope, so a small subclass of its h11 protocol copies the
peer certificate (DER) of each connection into scope["state"], where app.py reads it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pcr_register import worker
from pcr_register.app import PEER_CERT_KEY, create_app
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


def ssl_context(reg: Register) -> ssl.SSLContext:
    data = reg.config.data_dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # SEC-010
    ctx.load_cert_chain(data / "server.pem", data / "server.key")
    ctx.load_verify_locations(data / "ca.pem")  # SEC-002: only the register's CA; expiry checked (SEC-003)
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
        http=PeerCertProtocol,
        ssl_context_factory=factory,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    worker.start(reg, stop)
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
