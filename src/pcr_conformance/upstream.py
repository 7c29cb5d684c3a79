"""The proxy's upstream leg (proxy.py, docs/client-testing.md#cost): HTTP/1.1 requests to the register over
kept-alive TLS connections, one pool per origin and client identity, on asyncio's own TLS streams with h11 as
the protocol engine.

Why not httpx.AsyncClient: the proxy pays the upstream leg on every request it forwards. httpx's async client
(through httpcore and anyio's TLS stream, which runs the TLS record layer in Python) cost 1.4 ms of CPU per
GetBatchStatus on this kind of machine; h11 over asyncio's TLS transport costs 0.3 ms for the same exchange. h11 is
what httpcore and uvicorn already parse HTTP/1.1 with, so framing (Content-Length, chunked, Connection: close)
is the same tested code, and nothing new is installed.

Every request has one deadline for the whole exchange (waiting for a connection, connect and TLS handshake,
sending, the whole answer: deadline.py's rule for the rest of the harness), and an answer is read at most to
`max_answer_bytes` after decoding (a gzip bomb or an endless chunked body stops there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
import zlib
from urllib.parse import urlsplit

import h11

from pcr_conformance.deadline import DEFAULT_MAX_ANSWER_BYTES

Headers = tuple[tuple[str, str], ...]
READ_CHUNK = 64 * 1024
# An idle connection is dropped before a server's usual keep-alive timeout (uvicorn's default is 5 s) would close
# it under a request; the reference register keeps connections 30 s.
IDLE_S = 4.0


class UpstreamError(Exception):
    """The register gave no usable answer (refused, TLS, timeout, broken HTTP, too large): the proxy answers 502."""


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    headers: Headers  # as the register sent them, except a content coding the proxy decoded
    body: bytes


@dataclasses.dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    http: h11.Connection
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < IDLE_S
                and self.http.our_state is h11.IDLE and self.http.their_state is h11.IDLE)

    def close(self) -> None:
        self.writer.close()


class _Stale(Exception):
    """A kept-alive connection the server had closed before it sent any byte of the answer."""


@dataclasses.dataclass
class Pool:
    """Kept-alive connections to one origin (scheme, host, port) with one client certificate."""

    origin: str  # https://host:port
    context: ssl.SSLContext | None  # None: plain http
    timeout_s: float
    max_connections: int = 64
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    _idle: list[_Connection] = dataclasses.field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _closed: bool = False

    async def request(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        """One exchange; UpstreamError naming what failed. `target` is the path and query."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        try:
            async with asyncio.timeout(self.timeout_s), self._slots:
                try:
                    return await self._exchange(method, target, headers, body, reuse=True)
                except _Stale:
                    # The server closed a kept-alive connection as the request went out and read none of it;
                    # once more on a new connection, as browsers do.
                    return await self._exchange(method, target, headers, body, reuse=False)
        except TimeoutError:
            raise UpstreamError(f"no whole answer within {self.timeout_s:g} s (the target's timeout_s)") from None
        except (OSError, ssl.SSLError, h11.ProtocolError, _Stale) as e:
            raise UpstreamError(f"{type(e).__name__}: {e}") from None

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    async def _connection(self, reuse: bool) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while reuse and self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn, True
            conn.close()
        parts = urlsplit(self.origin)
        host = parts.hostname or ""
        port = parts.port or (443 if self.context is not None else 80)
        reader, writer = await asyncio.open_connection(host, port, ssl=self.context, limit=READ_CHUNK,
                                                       server_hostname=host if self.context is not None else None)
        return _Connection(reader, writer, h11.Connection(h11.CLIENT)), False

    async def _exchange(self, method: str, target: str, headers: Headers, body: bytes, *, reuse: bool) -> Answer:
        conn, reused = await self._connection(reuse)
        keep = False
        try:
            answer, keep = await self._send_and_read(conn, method, target, headers, body, reused)
            return answer
        finally:
            if keep and not self._closed:
                conn.http.start_next_cycle()
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()

    async def _send_and_read(self, conn: _Connection, method: str, target: str, headers: Headers, body: bytes,
                             reused: bool) -> tuple[Answer, bool]:
        host = urlsplit(self.origin).netloc
        out = [("host", host), *headers, ("content-length", str(len(body)))]
        # One write, one TLS record for head and body (two would cost a second record and syscall).
        conn.writer.write(conn.http.send(h11.Request(method=method, target=target, headers=out))
                          + conn.http.send(h11.Data(data=body)) + conn.http.send(h11.EndOfMessage()))
        try:
            await conn.writer.drain()
        except ConnectionError:
            if reused:
                raise _Stale() from None
            raise
        response: h11.Response | None = None
        chunks: list[bytes] = []
        size, received = 0, False
        while True:
            event = conn.http.next_event()
            if event is h11.NEED_DATA:
                data = await conn.reader.read(READ_CHUNK)
                if not data and not received and reused:
                    raise _Stale()
                received = received or bool(data)
                conn.http.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_answer_bytes:
                    raise UpstreamError(f"the answer exceeds {self.max_answer_bytes} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("the register closed the connection before the answer was complete")
            # h11.InformationalResponse (100 Continue): nothing to do, the final answer follows
        assert response is not None  # h11 yields Response before Data and EndOfMessage
        answer_headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers)
        content = b"".join(chunks)
        coding = next((v.strip().lower() for k, v in answer_headers if k.lower() == "content-encoding"), "")
        if coding and coding != "identity":
            content = self._decoded(content, coding)
            answer_headers = tuple((k, v) for k, v in answer_headers if k.lower() != "content-encoding")
        keep = conn.http.our_state is h11.DONE and conn.http.their_state is h11.DONE
        return Answer(response.status_code, answer_headers, content), keep

    def _decoded(self, content: bytes, coding: str) -> bytes:
        """gzip / deflate answers decoded, at most max_answer_bytes (the proxy asks for identity; a register
        may still compress)."""
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise UpstreamError(f"the answer has content coding {coding!r}, which the proxy cannot read "
                                "(it judges the text; gzip and deflate are decoded)")
        try:
            out = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(content, self.max_answer_bytes + 1)
        except zlib.error:  # "deflate" is sent raw (no zlib header) by some servers
            try:
                out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(content, self.max_answer_bytes + 1)
            except zlib.error as e:
                raise UpstreamError(f"the {coding} answer does not decode: {e}") from None
        if len(out) > self.max_answer_bytes:
            raise UpstreamError(f"the answer exceeds {self.max_answer_bytes} bytes after decoding")
        return out


def origin_and_target(url: str) -> tuple[str, str]:
    """("https://host:port", "/path?query") of an absolute URL."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}", target
