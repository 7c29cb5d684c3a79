"""The proxy's upstream leg (pcr_conformance/upstream.py) against a small scripted HTTP/1.1 server on 127.0.0.1:
connections kept alive and reused, a connection the server closed while idle replaced, chunked and gzip answers
read whole, and an answer too large or too slow refused with the reason named."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest

from pcr_conformance.upstream import Pool, UpstreamError, origin_and_target

Reply = Callable[[int, asyncio.StreamWriter], Awaitable[bool]]  # (request number, writer) -> keep the connection


async def _serve(reply: Reply) -> tuple[asyncio.Server, list[int]]:
    """A server answering each request with `reply`; the list counts requests per connection."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                connections[-1] += 1
                if not await reply(sum(connections), writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), connections


def _pool(server: asyncio.Server, **kw: object) -> Pool:
    port = server.sockets[0].getsockname()[1]
    return Pool(f"http://127.0.0.1:{port}", None, timeout_s=kw.pop("timeout_s", 5.0), **kw)  # type: ignore[arg-type]


def _answer(body: bytes, *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "content-type: application/json", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _run(coro: Awaitable[object]) -> object:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_connections_are_kept_alive_and_reused() -> None:
    """Three requests in a row go over one connection."""

    async def scenario() -> None:
        async def reply(n: int, w: asyncio.StreamWriter) -> bool:
            w.write(_answer(b'{"n": %d}' % n))
            return True

        server, connections = await _serve(reply)
        pool = _pool(server)
        bodies = [(await pool.request("POST", "/GetBatchStatus", (), b"{}")).body for _ in range(3)]
        await pool.aclose()
        server.close()
        assert bodies == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
        assert connections == [3]

    _run(scenario())


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    """The server closes after each answer without saying so: the next request goes out on a new connection."""

    async def scenario() -> None:
        async def reply(n: int, w: asyncio.StreamWriter) -> bool:
            w.write(_answer(b"{}"))
            await w.drain()
            return False  # close silently, as an expired keep-alive does

        server, connections = await _serve(reply)
        pool = _pool(server)
        statuses = [(await pool.request("POST", "/X", (), b"{}")).status for _ in range(3)]
        await pool.aclose()
        server.close()
        assert statuses == [200, 200, 200] and connections == [1, 1, 1]

    _run(scenario())


def test_chunked_and_gzip_answers_are_read_whole() -> None:
    """A chunked answer is joined, a gzip one decoded (and no longer marked gzip); Connection: close is honoured."""

    async def scenario() -> None:
        async def reply(n: int, w: asyncio.StreamWriter) -> bool:
            if n == 1:
                w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n5\r\n\": 1}\r\n0\r\n\r\n")
            else:
                w.write(_answer(gzip.compress(b'{"b": 2}'), "content-encoding: gzip", "connection: close"))
            return True

        server, connections = await _serve(reply)
        pool = _pool(server)
        first = await pool.request("POST", "/X", (), b"{}")
        second = await pool.request("POST", "/X", (), b"{}")
        third = await pool.request("POST", "/X", (), b"{}")
        await pool.aclose()
        server.close()
        assert first.body == b'{"a": 1}' and second.body == b'{"b": 2}'
        assert "content-encoding" not in {k.lower() for k, _ in second.headers}
        assert third.status == 200 and connections == [2, 1]  # the connection: close answer ended the first

    _run(scenario())


def test_too_large_and_too_slow_answers_are_refused_naming_why() -> None:
    """Beyond max_answer_bytes, or past timeout_s for the whole answer: UpstreamError saying which."""

    async def scenario() -> None:
        async def big(n: int, w: asyncio.StreamWriter) -> bool:
            w.write(_answer(b"x" * 5000))
            return True

        async def slow(n: int, w: asyncio.StreamWriter) -> bool:
            w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            for _ in range(100):  # a byte every 50 ms: each read is quick, the whole answer is not
                w.write(b"x")
                await w.drain()
                await asyncio.sleep(0.05)
            return True

        server, _ = await _serve(big)
        with pytest.raises(UpstreamError, match="exceeds 1000 bytes"):
            await _pool(server, max_answer_bytes=1000).request("POST", "/X", (), b"{}")
        server.close()
        server, _ = await _serve(slow)
        with pytest.raises(UpstreamError, match=r"within 0\.5 s"):
            await _pool(server, timeout_s=0.5).request("POST", "/X", (), b"{}")
        server.close()

    _run(scenario())


def test_origin_and_target() -> None:
    """An upstream URL splits into the pool's origin and the request target."""
    assert origin_and_target("https://reg.example:8443/v1/AddLoans?x=1") == ("https://reg.example:8443", "/v1/AddLoans?x=1")
    assert origin_and_target("https://reg.example") == ("https://reg.example", "/")
