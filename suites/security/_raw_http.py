"""Raw HTTP/1.1 over mutual TLS, for requests httpx refuses to send (malformed headers and framing) and for a
body promised but never sent. The slot's certificate, the harness's ``ssl_context``; a hard deadline on every
socket, for the whole exchange, not per read."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from pcr_conformance.calllog import Call
from pcr_conformance.client import family_of, ssl_context
from pcr_conformance.errors import TargetUnreachable
from pcr_conformance.target import Target

CRLF = b"\r\n"
MAX_ANSWER = 1024 * 1024  # an answer is read at most this far
_RECORDED = 4096

_contexts: dict[tuple[str, str, str], ssl.SSLContext] = {}
_lock = threading.Lock()


@dataclasses.dataclass
class RawAnswer:
    """What came back: the first final answer (None when the connection closed or the deadline passed
    without one), the 1xx statuses before it, and whether the connection was still open at the deadline."""

    response: httpx.Response | None
    interim: list[int]
    timed_out: bool
    elapsed_s: float
    call: Call


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str
    url: str


def endpoint(target: Target, operation: str) -> Endpoint:
    url = f"{target.base_url(family_of(operation))}/{operation}"
    parts = urlsplit(url)
    return Endpoint(parts.hostname or "", parts.port or 443, parts.path, url)


def request_bytes(method: str, ep: Endpoint, headers: list[tuple[str, str]] | list[bytes], body: bytes = b"",
                  *, host: bool = True) -> bytes:
    """A request head (plus body): header pairs are joined as `name: value`, bytes lines are sent as they are."""
    lines = [f"{method} {ep.path} HTTP/1.1".encode()]
    if host:
        lines.append(f"Host: {ep.host}:{ep.port}".encode())
    for h in headers:
        lines.append(h if isinstance(h, bytes) else f"{h[0]}: {h[1]}".encode("latin-1"))
    return CRLF.join(lines) + CRLF + CRLF + body


def _context(target: Target, cert: str, key: str) -> ssl.SSLContext:
    with _lock:
        ctx = _contexts.get((target.tls.ca_bundle, cert, key))
        if ctx is None:
            ctx = _contexts[(target.tls.ca_bundle, cert, key)] = ssl_context(target.tls.ca_bundle, cert, key)
        return ctx


def exchange(target: Target, slot: str, operation: str, chunks: list[bytes], *, deadline_s: float,
             label: str = "", wait: Callable[[], None] | None = None) -> RawAnswer:
    """Connect with the slot's certificate, send `chunks` (stopping quietly if the peer closes), and read the
    first final answer until `deadline_s` after connecting. A failed connect or handshake is TargetUnreachable.
    `wait` is the session's rate limiter (pcr_http.limiter.wait), called before connecting."""
    if wait is not None:
        wait()
    identity = target.identities[slot]
    ep = endpoint(target, operation)
    sent = b"".join(chunks)
    call = Call(slot=slot, operation=operation, method=sent.split(b" ", 1)[0].decode("latin-1")[:16], url=ep.url,
                request_headers={}, request_body=sent[:_RECORDED].decode("latin-1"), cert=identity.cert,
                key=identity.key, cacert=target.tls.ca_bundle,
                note=f"raw request over TLS{': ' + label if label else ''}; curl cannot send it")
    started = time.monotonic()
    deadline = started + deadline_s

    def remaining() -> float:
        return max(0.001, deadline - time.monotonic())

    try:
        raw = socket.create_connection((ep.host, ep.port), timeout=min(remaining(), target.timeout_s))
    except OSError as exc:
        raise TargetUnreachable(f"{operation}: {ep.host}:{ep.port} refused a raw connection: {exc}",
                                kind="connect") from exc
    with raw:
        try:
            raw.settimeout(min(remaining(), target.timeout_s))
            tls = _context(target, identity.cert, identity.key).wrap_socket(raw, server_hostname=ep.host)
        except (OSError, ssl.SSLError) as exc:
            raise TargetUnreachable(f"{operation}: TLS handshake with {ep.host}:{ep.port} failed: {exc}",
                                    kind="tls") from exc
        with tls:
            response, interim, timed_out = _talk(tls, chunks, remaining)
    answer = RawAnswer(response, interim, timed_out, time.monotonic() - started, call)
    call.duration_s = answer.elapsed_s
    if answer.response is not None:
        call.status = answer.response.status_code
        call.response_headers = dict(answer.response.headers)
        call.response_body = answer.response.content[:_RECORDED].decode("utf-8", "replace")
    else:
        call.error = "still open at the deadline" if answer.timed_out else "connection closed without an answer"
    return answer


def _talk(tls: ssl.SSLSocket, chunks: list[bytes], remaining) -> tuple[httpx.Response | None, list[int], bool]:
    for chunk in chunks:
        try:
            tls.settimeout(remaining())
            tls.sendall(chunk)
        except TimeoutError:
            return None, [], True
        except (OSError, ssl.SSLError):
            break  # the peer stopped reading (it may have answered already): read what it said
    buffer = b""
    interim: list[int] = []
    while True:
        parsed = _parse(buffer)
        if parsed is not None:
            status, headers, body, rest = parsed
            if 100 <= status < 200:
                interim.append(status)
                buffer = rest
                continue
            return _response(status, headers, body), interim, False
        try:
            tls.settimeout(remaining())
            data = tls.recv(65536)
        except TimeoutError:
            return None, interim, True
        except (OSError, ssl.SSLError):
            data = b""
        if not data:  # closed: an answer without Content-Length ends here
            parsed = _parse(buffer, closed=True)
            if parsed is not None and not 100 <= parsed[0] < 200:
                return _response(*parsed[:3]), interim, False
            return None, interim, False
        buffer += data
        if len(buffer) > MAX_ANSWER:
            parsed = _parse(buffer, closed=True)
            return (_response(*parsed[:3]) if parsed else None), interim, False


def _parse(buffer: bytes, *, closed: bool = False):
    """(status, headers, body, rest) of the first complete answer in `buffer`, or None."""
    head, sep, tail = buffer.partition(CRLF + CRLF)
    if not sep:
        return None
    lines = head.split(CRLF)
    parts = lines[0].split(b" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return (0, [], buffer, b"") if closed else None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    names = {k.lower(): v for k, v in headers}
    if 100 <= status < 200 or status in (204, 304):
        return status, headers, b"", tail
    if "chunked" in names.get("transfer-encoding", "").lower():
        body, rest = _dechunk(tail)
        if body is None:
            return (status, headers, tail, b"") if closed else None
        return status, headers, body, rest
    if names.get("content-length", "").isdigit():
        n = int(names["content-length"])
        if len(tail) >= n:
            return status, headers, tail[:n], tail[n:]
        return (status, headers, tail, b"") if closed else None
    return (status, headers, tail, b"") if closed else None


def _dechunk(data: bytes) -> tuple[bytes | None, bytes]:
    out = b""
    while True:
        size_line, sep, data = data.partition(CRLF)
        if not sep:
            return None, b""
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return None, b""
        if size == 0:
            _, sep, rest = data.partition(CRLF)
            return (out, rest) if sep else (None, b"")
        if len(data) < size + 2:
            return None, b""
        out, data = out + data[:size], data[size + 2:]


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")]
    return httpx.Response(status, headers=kept, content=body)
