"""A deadline for the whole of a request, and a bound on the size of its answer (docs/concepts.md#outcomes).

httpx's and requests' timeouts bound each socket operation, not the request: a server that sends one byte every
two seconds, or an endless chunked body, keeps a request alive for as long as it likes, and a gzip bomb inflates
without limit. Here:

- `bounded(seconds)`: the deadline of the requests the current thread makes inside the block. The httpx clients
  of the harness use `DeadlineBackend` (`install`), whose every connect, TLS handshake, read and write gets at most
  the time left and fails with a timeout once it is gone; so connect, first byte and the whole answer together end
  at the deadline, on a new or a reused connection alike.
- `read_body(response, max_bytes)`: reads a streamed httpx response after decompression, at most `max_bytes`
  (AnswerTooLarge beyond), under the deadline.
- `DeadlineAdapter` / `session()`: the same for requests (the schemathesis fuzz calls): a watchdog shuts the
  connection's socket at the deadline, and the body is read bounded.
- `socket_deadline(sock, end)`: a watchdog for a plain socket (the TLS probes).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

from pcr_conformance.errors import HarnessError

DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
_CHUNK = 16 * 1024  # one TLS record: what inflates at once stays ~16 MiB at the worst zlib ratio

_local = threading.local()


class AnswerTooLarge(HarnessError):
    """The answer was larger than max_answer_bytes after decompression: the harness stopped reading it."""


class DeadlinePassed(Exception):
    """Raised inside a read when the deadline of the request has passed (mapped to a timeout)."""


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[float]:
    """The current thread's requests inside the block end `seconds` from now (yields the monotonic end)."""
    previous = getattr(_local, "end", None)
    end = time.monotonic() + seconds
    if previous is not None:
        end = min(end, previous)
    _local.end = end
    try:
        yield end
    finally:
        _local.end = previous


def remaining(timeout: float | None) -> float | None:
    """The timeout of one socket operation: the given one, cut to the time left before the deadline."""
    end = getattr(_local, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    return max(0.0, left if timeout is None else min(timeout, left))


def passed() -> bool:
    end = getattr(_local, "end", None)
    return end is not None and time.monotonic() >= end


# ---- httpx: a network backend whose every operation respects the deadline ----------------------------------


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if passed():
            raise httpcore.ReadTimeout("the request's deadline passed before its answer was complete")
        return self._inner.read(min(max_bytes, _CHUNK), remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if passed():
            raise httpcore.WriteTimeout("the request's deadline passed while it was being sent")
        self._inner.write(buffer, remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        left = remaining(timeout)
        sock = self._inner.get_extra_info("socket")
        end = time.monotonic() + (left if left is not None else 3600.0)
        # A handshake that trickles in byte by byte is cut by the watchdog at the deadline.
        with socket_deadline(sock, end) as watch:
            try:
                return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))
            except httpcore.ConnectError as e:
                if watch.fired:
                    raise httpcore.ConnectTimeout("no TLS handshake before the request's deadline") from e
                raise

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        if passed():
            raise httpcore.ConnectTimeout("the request's deadline passed before a connection was made")
        return DeadlineStream(self._inner.connect_tcp(host, port, remaining(timeout), local_address,
                                                      socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.connect_unix_socket(path, remaining(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(client: httpx.Client) -> httpx.Client:
    """Give every transport of an httpx client (its own and any proxy's) the DeadlineBackend."""
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]  # noqa: SLF001
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = DeadlineBackend()  # noqa: SLF001
    return client


def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The decompressed body of a streamed response, at most max_bytes (AnswerTooLarge beyond); the response's
    `.content` holds it afterwards. Reading past the deadline raises httpx.ReadTimeout (from the backend)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise AnswerTooLarge(f"the answer exceeded max_answer_bytes = {max_bytes} bytes after decompression "
                                 f"(Content-Encoding {response.headers.get('content-encoding') or 'none'}, "
                                 f"Content-Length {response.headers.get('content-length') or 'not given'}); "
                                 f"the harness stopped reading it")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # noqa: SLF001  (what Response.read() sets)
    return response._content  # noqa: SLF001


# ---- plain sockets and requests: a watchdog that shuts the socket at the deadline ---------------------------


class _Watch:
    def __init__(self) -> None:
        self.fired = False
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired:
                _shut(sock)
            else:
                self.sockets.append(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread; close() would not


@contextlib.contextmanager
def socket_deadline(sock: socket.socket | None, end: float) -> Iterator[_Watch]:
    """Shut `sock` (and sockets `watch.add`ed) down at monotonic `end`; `watch.fired` says whether it did."""
    watch = _Watch()
    watch.add(sock)
    timer = threading.Timer(max(0.0, end - time.monotonic()), watch.fire)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()


def session(deadline_s: float, max_bytes: int = DEFAULT_MAX_ANSWER_BYTES, base: Any = None) -> Any:
    """A requests session (of class `base`, default requests.Session) whose HTTPS and HTTP requests end at
    `deadline_s` each, with bodies bounded at max_bytes after decompression."""
    import requests

    s = (base or requests.Session)()
    adapter = _deadline_adapter_class()(deadline_s, max_bytes)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


@functools.cache
def _deadline_adapter_class() -> type:
    """The requests adapter (built on first use: requests is needed only by the fuzz suite)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def watched(cls: type) -> type:
        class Watched(cls):  # type: ignore[misc, valid-type]
            def _new_conn(self) -> socket.socket:
                sock = super()._new_conn()
                watch = getattr(_local, "watch", None)
                if watch is not None:
                    watch.add(sock)
                return sock

            def request(self, *args: Any, **kwargs: Any) -> Any:
                watch = getattr(_local, "watch", None)
                if watch is not None and self.sock is not None:  # a reused connection
                    watch.add(self.sock)
                return super().request(*args, **kwargs)

        Watched.__name__ = f"Deadline{cls.__name__}"
        return Watched

    class Pool(HTTPConnectionPool):
        ConnectionCls = watched(HTTPConnection)

    class SPool(HTTPSConnectionPool):
        ConnectionCls = watched(HTTPSConnection)

    class DeadlineAdapter(HTTPAdapter):
        """Each request ends `deadline_s` after it starts (or its own smaller timeout): connect, first byte and
        the whole body; a watchdog shuts the socket down at the deadline. The body is read here, bounded at
        max_bytes after decompression (AnswerTooLarge)."""

        def __init__(self, deadline_s: float, max_bytes: int) -> None:
            self.deadline_s = deadline_s
            self.max_bytes = max_bytes
            super().__init__()

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SPool}

        def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                 cert: Any = None, proxies: Any = None) -> Any:
            total = self.deadline_s
            if isinstance(timeout, int | float) and not isinstance(timeout, bool):
                total = min(total, float(timeout))
            end = time.monotonic() + total
            previous = getattr(_local, "watch", None)
            watch = _local.watch = _Watch()
            timer = threading.Timer(total, watch.fire)
            timer.daemon = True
            timer.start()
            resp = None
            try:
                resp = super().send(request, stream=True, timeout=(total, total), verify=verify, cert=cert,
                                    proxies=proxies)
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise AnswerTooLarge(
                            f"the answer exceeded max_answer_bytes = {self.max_bytes} bytes after decompression "
                            f"(Content-Encoding {resp.headers.get('content-encoding') or 'none'}); "
                            f"the harness stopped reading it")
                    if time.monotonic() >= end:
                        raise requests.exceptions.ReadTimeout("deadline", request=request)
                    chunks.append(chunk)
                resp._content = b"".join(chunks)  # noqa: SLF001
                resp._content_consumed = True  # noqa: SLF001
                resp.raw.release_conn()
                return resp
            except (requests.exceptions.RequestException, OSError) as e:
                if resp is not None:
                    resp.close()
                if watch.fired or time.monotonic() >= end:
                    raise requests.exceptions.ReadTimeout(
                        f"no complete answer within the request deadline of {total:g} s (timeout_s)",
                        request=request) from e
                raise
            except BaseException:
                if resp is not None:
                    resp.close()
                raise
            finally:
                timer.cancel()
                _local.watch = previous

    return DeadlineAdapter


def retry_after_s(value: str) -> float | None:
    """The wait a Retry-After header value asks for, in seconds (delta-seconds or an HTTP date; RFC 9110
    §10.2.3), or None when there is none or it cannot be read."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    import datetime as dt
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
