"""A misbehaving register for the harness's own tests: one TLS server (trustme CA and certificates; client
certificates requested) in threads of the calling process, with one mode per misbehaviour (MODES).

`HostileServer(mode).write_target(folder, timeout_s=2, batch_deadline_s=4)` writes a target file (CA bundle,
a lender identity with its certificate, a pool of artificial persons) for `pcr-conformance run --target`.
Run by hand: `python tests/hostile_server.py MODE FOLDER` serves until Ctrl-C and prints the target file's path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import trustme

# mode -> what the server does (after the TLS handshake unless said otherwise)
MODES: dict[str, str] = {
    "no_handshake": "accepts the TCP connection and never starts the TLS handshake",
    "no_answer": "completes the handshake, reads the request and never answers",
    "stalled_body": "sends the headers and the first byte of the body, then stalls",
    "reset": "sends the headers and part of the body, then resets the connection",
    "garbage": "answers random bytes that are not HTTP",
    "big_body": "answers 200 with a big body (BIG_BODY_BYTES; 10 MB in the direct test)",
    "drip": "sends the headers, then the body one byte every 2 s",
    "other_ca": "presents a server certificate from a CA the target's ca_bundle does not hold",
    "html_500": "answers every request with an HTML 500 page",
    "invalid_json": "answers 200 application/json whose body is not JSON",
    "batch_never_finishes": "accepts every batch (202); GetBatchStatus always says Processing",
    "redirect_loop": "answers 302 to the same URL",
    "short_body": "sends Content-Length 1000 and 20 bytes, then closes",
    "deep_json": "answers JSON nested 100 000 deep",
    "gzip_bomb": "answers 200 KB of gzip that inflate to 200 MB",
    "endless_chunked": "answers a chunked body that never ends",
    "refused_client_cert": "refuses the client certificate in the TLS handshake (trusts another CA)",
}

# Modes where the server does answer HTTP, wrongly: the kit fails requirements (exit 1), it is not stopped.
ANSWERING_MODES = frozenset({"big_body", "html_500", "invalid_json", "batch_never_finishes", "redirect_loop",
                             "deep_json"})

SUBMIT_OPERATIONS = ("AddLoans", "TerminateLoans", "Repayments", "UpdateLoans", "DelayedRepayments")
LENDER_OWNER = {"idCodeType": "BusinessId", "idCode": "7654321-2"}  # fictitious
# The body of big_body in a kit run: far above any register answer and under max_answer_bytes. A kit run makes
# about 2 000 requests, and 10 MB over TLS between two Python processes costs ~0.45 s each on a 2-core machine:
# with 10 MB the run would measure the machine, not the harness. The 10 MB body goes to one direct test.
BIG_BODY_BYTES = 2 * 1024 * 1024
_BOMB: bytes | None = None
_BOMB_LOCK = threading.Lock()


def gzip_bomb(inflated: int = 200 * 1024 * 1024) -> bytes:
    """`inflated` zero bytes, gzipped (about 200 KB for 200 MB); made once per process."""
    global _BOMB
    with _BOMB_LOCK:
        if _BOMB is None:
            block = bytes(1024 * 1024)
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
            parts = [comp.compress(block) for _ in range(inflated // len(block))]
            parts.append(comp.flush())
            _BOMB = b"".join(parts)
        return _BOMB


def pool_persons(n: int = 12) -> list[dict[str, object]]:
    """Artificial personal identity codes (individual number 900-999, valid check character)."""
    from pcr_conformance.identifiers import hetu

    persons: list[dict[str, object]] = []
    for i in range(n):
        code = hetu(dt.date(1970 + i, 1 + i % 12, 1 + i), 900 + i)
        persons.append({"idCode": code, "tags": ["income"] if i % 2 == 0 else []})
    return persons


class HostileServer:
    """One mode, on 127.0.0.1:<port>, until stop()."""

    def __init__(self, mode: str, big_body_bytes: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        self.mode = mode
        self.big_body_bytes = big_body_bytes or BIG_BODY_BYTES
        self.ca = trustme.CA(organization_name="Hostile test CA")
        self._other_ca = trustme.CA(organization_name="Another CA")
        server_ca = self._other_ca if mode == "other_ca" else self.ca
        self._server_cert = server_ca.issue_cert("127.0.0.1", "localhost")
        self.client_cert = self.ca.issue_cert("lender.example", organization_name="Hostile Lender Oy",
                                              organization_unit_name="reporting", common_name="lender.example")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_cert.configure_cert(ctx)
        (self._other_ca if mode == "refused_client_cert" else self.ca).configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED if mode == "refused_client_cert" else ssl.CERT_OPTIONAL
        self._ctx = ctx
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        if mode == "gzip_bomb":
            gzip_bomb()
        self._thread = threading.Thread(target=self._accept, name=f"hostile-{mode}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_target(self, folder: Path, *, timeout_s: float = 2, batch_deadline_s: float = 4) -> Path:
        """A target file for this server, with its CA bundle, the lender's certificate and key, and a pool."""
        folder.mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        self.client_cert.cert_chain_pems[0].write_to_path(str(folder / "lender.pem"))
        self.client_cert.private_key_pem.write_to_path(str(folder / "lender.key"))
        (folder / "pool.json").write_text(json.dumps({"version": 1, "environment": "Test",
                                                      "persons": pool_persons()}, indent=1), encoding="utf-8")
        path = folder / "hostile.toml"
        path.write_text(f'''# A hostile test server: {MODES[self.mode]}
name = "hostile-{self.mode.replace("_", "-")}"
environment = "Test"
timeout_s = {timeout_s}
batch_deadline_s = {batch_deadline_s}
pool = "pool.json"
capabilities = ["reporting"]
[base_urls]
reporting = "{self.url}"
[tls]
ca_bundle = "ca.pem"
[identities.lender]
cert = "lender.pem"
key = "lender.key"
name = "Hostile Lender Oy"
owner = {{ idCodeType = "{LENDER_OWNER["idCodeType"]}", idCode = "{LENDER_OWNER["idCode"]}" }}
''', encoding="utf-8")
        return path

    # ---- serving -----------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.mode == "no_handshake":
                self._hold(conn)
                return
            try:
                tls = self._ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                return  # refused_client_cert, other_ca: the handshake fails
            with tls:
                self._answer(tls)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _hold(self, sock: socket.socket) -> None:
        """Keep the connection open, saying nothing, until the client goes away or the server stops."""
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not sock.recv(65536):
                    return
            except TimeoutError:
                continue

    def _answer(self, tls: ssl.SSLSocket) -> None:
        request = _read_request(tls)
        if request is None:
            return
        path, headers, body = request
        mode = self.mode
        if mode == "no_answer":
            self._hold(tls)
        elif mode == "stalled_body":
            tls.sendall(_head(200, "application/json", length=100) + b"{")
            self._hold(tls)
        elif mode == "reset":
            tls.sendall(_head(200, "application/json", length=1000) + b'{"batchStatus": "Fin')
            time.sleep(0.3)  # the client reads the start of the answer; then the reset (SO_LINGER 0)
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode == "garbage":
            tls.sendall(random.Random(17).randbytes(4096))
        elif mode == "big_body":
            payload = b'{"pad": "' + b"x" * self.big_body_bytes + b'"}'
            tls.sendall(_head(200, "application/json", length=len(payload)) + payload)
        elif mode == "drip":
            tls.sendall(_head(200, "application/json", length=1000))
            tls.settimeout(0.2)
            while not self._stop.is_set():
                tls.sendall(b" ")
                if self._stop.wait(2.0):
                    return
        elif mode == "html_500":
            page = b"<html><body><h1>500 Internal Server Error</h1><p>nginx</p></body></html>"
            tls.sendall(_head(500, "text/html", length=len(page)) + page)
        elif mode == "invalid_json":
            text = b'{"batchStatus": "FinishedSuccess", "reports": [ {"reportReference": '
            tls.sendall(_head(200, "application/json", length=len(text)) + text)
        elif mode == "batch_never_finishes":
            status, doc = _register_answer(path, headers, body)
            payload = json.dumps(doc).encode()
            tls.sendall(_head(status, "application/json", length=len(payload)) + payload)
        elif mode == "redirect_loop":
            tls.sendall(_head(302, "text/plain", length=0, extra=f"Location: {path}\r\n"))
        elif mode == "short_body":
            tls.sendall(_head(200, "application/json", length=1000) + b'{"batchStatus": "Pro')
        elif mode == "deep_json":
            payload = b"[" * 100_000 + b"]" * 100_000
            tls.sendall(_head(200, "application/json", length=len(payload)) + payload)
        elif mode == "gzip_bomb":
            payload = gzip_bomb()
            tls.sendall(_head(200, "application/json", length=len(payload), extra="Content-Encoding: gzip\r\n")
                        + payload)
        elif mode == "endless_chunked":
            tls.sendall(_head(200, "application/json", extra="Transfer-Encoding: chunked\r\n"))
            chunk = b"[" + b"0," * 500 + b"\n"
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            while not self._stop.is_set():
                tls.sendall(frame)
                time.sleep(0.01)
        else:  # other_ca, refused_client_cert: never reached past the handshake; answer like a register
            status, doc = _register_answer(path, headers, body)
            payload = json.dumps(doc).encode()
            tls.sendall(_head(status, "application/json", length=len(payload)) + payload)


def _read_request(sock: ssl.SSLSocket) -> tuple[str, dict[str, str], bytes] | None:
    """(path, headers (lower-case names), body) of one HTTP/1.1 request, or None when the client sends none within the socket's timeout."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 20:
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"]) if headers.get("content-length", "").isdigit() else 0
        while len(body) < min(length, 8 << 20):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return path, headers, body
    except (TimeoutError, OSError):
        return None


def _head(status: int, content_type: str, *, length: int | None = None, extra: str = "") -> bytes:
    reason = {200: "OK", 202: "Accepted", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}[status]
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{size}{extra}"
            f"Connection: close\r\n\r\n").encode("latin-1")


def _register_answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, object]]:
    """A register that accepts every batch (a schema-valid 202) and never finishes one."""
    operation = path.rsplit("/", 1)[-1]
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    received = "2026-11-05T09:00:01.250Z"
    if operation in SUBMIT_OPERATIONS:
        return 202, {"batchReference": headers.get("batchreference", "Batch_unknown"), "statusMessage": "Accepted",
                     "receivedTimeUtc": received}
    if operation == "GetBatchStatus":
        ref = request.get("batchReference") if isinstance(request, dict) else None
        return 200, {"batchReference": ref or "Batch_unknown", "batchStatus": "Processing", "reportCount": 1,
                     "acceptedCount": 0, "rejectedCount": 0, "receivedTimeUtc": received, "reportResults": []}
    return 404, {"errors": [{"errorCode": "E10", "errorMessage": "not found"}], "correlationId": "hostile"}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: python {sys.argv[0]} MODE FOLDER (modes: {', '.join(MODES)})")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    with HostileServer(sys.argv[1]) as server:
        print(server.write_target(Path(sys.argv[2])), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
