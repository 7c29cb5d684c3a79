"""Hostile requests for the register's robustness test and the soak benchmark (issue 17, ENV-007/009/018..022).

Every request is written by hand as bytes and sent over its own mutual-TLS socket, so that header abuse and
framing errors httpx would refuse to send can be sent too. ``cases(seed, n)`` yields the same requests for
the same seed; ``send(case)`` returns what came back (status, content type, body, elapsed) or that nothing came.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from register_fixtures import lump_sum_loan, owner_of, people

WHO = people()
CERT_OF_FAMILY = {"reporting": "lender-a-reporting", "extract": "lender-a-using-data",
                  "authorities": "authority-full-authority", "voluntary-ban": "cic-credit-information-company"}
FAMILY = {"AddLoans": "reporting", "UpdateLoans": "reporting", "Repayments": "reporting",
          "DelayedRepayments": "reporting", "TerminateLoans": "reporting", "GetBatchStatus": "reporting",
          "GetLoan": "reporting", "GetCreditRegisterExtract": "extract", "GetExtractLog": "extract",
          "OrderData": "authorities", "GetOrderStatus": "authorities", "GetDistribution": "authorities",
          "GetVoluntaryBan": "voluntary-ban", "GetVoluntaryBanChanges": "voluntary-ban"}
OWNER_ORG = {"reporting": "lender-a", "extract": "lender-a", "authorities": "authority-full", "voluntary-ban": "cic"}
MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True)
class Case:
    kind: str  # the class of bad input
    operation: str  # the operation whose certificate is used (the path may differ)
    data: bytes  # everything the client sends before it waits
    must_refuse: bool = True  # a 2xx is wrong
    expect_silence: bool = False  # no byte of a request is sent: a closed connection is the answer
    head: bool = False  # HEAD: the answer has no body


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection closed without an answer
    content_type: str
    body: bytes
    elapsed_s: float
    error: str = ""

    def is_error_object(self) -> bool:
        if not self.content_type.startswith("application/json"):
            return False
        try:
            doc = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(doc, dict) and isinstance(doc.get("errorResponses"), list) and bool(doc["errorResponses"])


def base_body(operation: str, rnd: random.Random) -> dict[str, Any]:
    family = FAMILY[operation]
    env: dict[str, Any] = {"targetEnvironment": "Test", "owner": owner_of(OWNER_ORG[family])}
    number = {"type": "Other", "number": f"H{rnd.randrange(10**9)}"}
    person = {"idCodeType": "PersonalIdentityCode", "idCode": rnd.choice(WHO.active)}
    ref = f"R{rnd.randrange(10**9)}"
    extra: dict[str, Any] = {
        "AddLoans": {"loans": [lump_sum_loan(number["number"], person["idCode"], ref)]},
        "UpdateLoans": {"loans": [lump_sum_loan(number["number"], person["idCode"], ref)]},
        "Repayments": {"repayments": [{"reportReference": ref, "loanNumber": number,
                                       "repayment": {"paymentDate": "2025-01-31", "amount": 100.0}}]},
        "DelayedRepayments": {"delayedRepayments": [{"reportReference": ref, "loanNumber": number,
                                                     "delayedRepayment": {"dueDate": "2025-01-31", "amount": 5.0}}]},
        "TerminateLoans": {"loanTerminations": [{"reportReference": ref, "reportType": "NewReport",
                                                 "loanNumber": number, "termination": {
                                                     "isTerminated": True, "endDate": "2025-06-30",
                                                     "isTransferredToAnotherLender": False}}]},
        "GetBatchStatus": {"batchReference": f"B{rnd.randrange(10**9)}"},
        "GetLoan": {"loanNumber": number},
        "GetCreditRegisterExtract": {"request": {**person, "creditRegisterExtractPurpose": ["NewConsumerCredit"]}},
        "GetExtractLog": {},
        "OrderData": {"order": {"orderType": "PersonLoans", "legalBasis": "x", "persons": [person]}},
        "GetOrderStatus": {"orderReference": f"O{rnd.randrange(10**9)}"},
        "GetDistribution": {"orderReference": f"O{rnd.randrange(10**9)}"},
        "GetVoluntaryBan": {"request": person},
        "GetVoluntaryBanChanges": {"sinceUtc": "2020-01-01T00:00:00Z"},
    }[operation]
    return {**env, **extra}


def request(method: str, path: str, body: bytes = b"", *, content_type: str = "application/json",
            headers: list[str] | None = None, length: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: register.test", "Connection: close"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += headers or []
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _containers(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path] if isinstance(value, dict | list) else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _containers(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _containers(v, (*path, i))
    return out


def _at(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


# Mutations of a JSON text: each returns (raw body, must_refuse).
SURROGATES = ["\\ud800", "\\udfff", "\\udbff", "\\udc00", "x\\ud800y", "\\u0000"]


def _mutate(body: dict[str, Any], rnd: random.Random) -> tuple[str, bytes]:
    target_path = rnd.choice(_containers(body))
    target = _at(body, target_path)
    kind = rnd.choice(["surrogate_value", "surrogate_name", "duplicate", "duplicate_case", "number", "wrong_type",
                       "deep", "huge_string", "invalid_utf8", "nul", "huge_array"])
    marker = "\u2603MARK\u2603"
    if kind == "wrong_type":
        choice = rnd.choice([None, True, 0, -1, 1.5, "", "x" * 10, [], {}, [[]], {"a": {}}])
        if isinstance(target, dict) and target:
            target[rnd.choice(list(target))] = choice
        elif isinstance(target, list):
            target.append(choice)
        return kind, json.dumps(body).encode()
    if kind == "huge_array" and isinstance(target, dict):
        target["x"] = list(range(rnd.choice([1000, 20000])))
        return kind, json.dumps(body).encode()
    if isinstance(target, dict):
        target[marker] = 1
    else:
        target.append(marker)
    text = json.dumps(body)
    slot = json.dumps(marker)
    if kind == "surrogate_value":
        new = (f'"{marker}": "{rnd.choice(SURROGATES)}"' if isinstance(target, dict) else f'"{rnd.choice(SURROGATES)}"')
        text = text.replace(f"{slot}: 1" if isinstance(target, dict) else slot, new)
    elif kind == "surrogate_name" and isinstance(target, dict):
        text = text.replace(slot, f'"k{rnd.choice(SURROGATES)}"')
    elif kind in ("duplicate", "duplicate_case") and isinstance(target, dict) and len(target) > 1:
        name = rnd.choice([k for k in target if k != marker])
        spelt = name if kind == "duplicate" else name.upper()
        text = text.replace(f"{slot}: 1", f"{json.dumps(spelt)}: {json.dumps(target[name])}")
    elif kind == "number":
        number = rnd.choice(["1e400", "-1e400", "9" * rnd.choice([25, 400, 5000]), "NaN", "Infinity", "-Infinity",
                             "1" + "0" * 30])
        text = text.replace(f"{slot}: 1" if isinstance(target, dict) else slot,
                            f"{slot}: {number}" if isinstance(target, dict) else number)
    elif kind == "deep":
        depth = rnd.choice([33, 100, 5000, 100000])
        text = text.replace(slot, "[" * depth + "]" * depth if isinstance(target, list) else slot, 1)
        if isinstance(target, dict):
            text = text.replace(f"{slot}: 1", f"{slot}: " + "[" * depth + "]" * depth)
    elif kind == "huge_string":
        text = text.replace(slot, json.dumps("x" * rnd.choice([10_000, 1_000_000])), 1)
    elif kind == "invalid_utf8":
        raw = text.encode()
        bad = rnd.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
        return kind, raw.replace(marker.encode(), bad)
    elif kind == "nul":
        raw = text.encode()
        return kind, raw.replace(marker.encode(), b"\x00")
    else:
        kind = "unknown_member"
    return kind, text.encode()


HEADER_ABUSE = [
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nno colon here\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\n X-Folded: continuation\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nX-Nul: a\x00b\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n",
    b"POST /GetLoan HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  # no Host
    b"POST /GetLoan HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
    b"POST /GetLoan HTTP/2.0\r\nHost: r\r\n\r\n",
    b"POST /GetLoan\r\n\r\n",
    b"POST  /GetLoan  HTTP/1.1\r\nHost: r\r\n\r\n",
    b"POST /Get Loan HTTP/1.1\r\nHost: r\r\n\r\n",
    b"POST /G\xe4tLoan HTTP/1.1\r\nHost: r\r\n\r\n",
    b"P\x00ST /GetLoan HTTP/1.1\r\nHost: r\r\n\r\n",
    b"\r\n\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\nHost: r\nContent-Length: 0\n\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
    b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n",
]
METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "HEAD", "CONNECT", "PROPFIND"]
PATHS = ["/", "/AddLoans/", "/addloans", "/../AddLoans", "//AddLoans", "/%00", "/%ff%fe", "/AddLoans%20",
         "/" + "A" * 8000, "/GetLoan/../../etc/passwd", "*", "/GetLoan;x=1", "/\u00e4".encode().decode("latin-1")]
CONTENT_TYPES = ["", "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/json-patch+json", "application/jsonx", "*/*", "application/\u00e4"]


WEIGHTS = {"mutated": 50, "random_bytes": 6, "content_type": 6, "oversize": 1, "header_abuse": 14,
           "method": 6, "path": 6, "missing_body": 3, "silent": 1, "valid": 7}


def cases(seed: int, n: int, *, operations: list[str] | None = None,
          weights: dict[str, int] | None = None) -> Iterator[Case]:
    """n hostile requests, the same for the same seed (weights: how often each class comes, WEIGHTS)."""
    rnd = random.Random(seed)
    ops = operations or list(FAMILY)
    weights = weights or WEIGHTS
    kinds = list(weights)
    for _ in range(n):
        op = rnd.choice(ops)
        kind = rnd.choices(kinds, [weights[k] for k in kinds])[0]
        body = base_body(op, rnd)
        if kind == "mutated":
            sub, raw = _mutate(body, rnd)
            refuse = sub not in ("wrong_type", "huge_string", "unknown_member", "huge_array")
            yield Case(f"mutated:{sub}", op, request("POST", f"/{op}", raw), must_refuse=refuse or sub == "unknown_member")
        elif kind == "random_bytes":
            raw = rnd.randbytes(rnd.choice([1, 10, 1000, 100_000]))
            yield Case(kind, op, request("POST", f"/{op}", raw))
        elif kind == "content_type":
            yield Case(kind, op, request("POST", f"/{op}", json.dumps(body).encode(),
                                         content_type=rnd.choice(CONTENT_TYPES)))
        elif kind == "oversize":
            size = MAX_BODY + rnd.choice([1, 1000])
            yield Case(kind, op, request("POST", f"/{op}", b" " * size))
        elif kind == "header_abuse":
            yield Case(kind, op, rnd.choice(HEADER_ABUSE))
        elif kind == "method":
            method = rnd.choice(METHODS)
            yield Case(f"method:{method}", op, request(method, f"/{op}", b"{}"), head=method == "HEAD")
        elif kind == "path":
            yield Case(kind, op, request("POST", rnd.choice(PATHS), json.dumps(body).encode()))
        elif kind == "missing_body":
            sub = rnd.choice(["promised", "expect_100", "partial_body", "partial_head", "chunked_unfinished"])
            raw = json.dumps(body).encode()
            data = {
                "promised": request("POST", f"/{op}", b"", length="100"),
                "expect_100": request("POST", f"/{op}", b"", length=str(len(raw)), headers=["Expect: 100-continue"]),
                "partial_body": request("POST", f"/{op}", raw[: len(raw) // 2], length=str(len(raw))),
                "partial_head": f"POST /{op} HTTP/1.1\r\nHost: r\r\nContent-Le".encode(),
                "chunked_unfinished": (f"POST /{op} HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
                                       f"Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n").encode(),
            }[sub]
            yield Case(f"missing_body:{sub}", op, data)
        elif kind == "silent":
            yield Case(kind, op, b"", expect_silence=True)
        else:
            yield Case(kind, op, request("POST", f"/{op}", json.dumps(body).encode()), must_refuse=False)


class Sender:
    """Sends cases over mutual TLS, one connection each."""

    def __init__(self, url: str, data: Path, timeout_s: float) -> None:
        host_port = url.removeprefix("https://")
        host, _, port = host_port.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.timeout_s = timeout_s
        self.contexts: dict[str, ssl.SSLContext] = {}
        for family, cert in CERT_OF_FAMILY.items():
            ctx = ssl.create_default_context(cafile=str(data / "ca.pem"))
            ctx.load_cert_chain(data / "clients" / f"{cert}.pem", data / "clients" / f"{cert}.key")
            self.contexts[family] = ctx

    def send(self, case: Case) -> Answer:
        ctx = self.contexts[FAMILY[case.operation]]
        start = time.monotonic()
        try:
            raw = socket.create_connection(self.address, timeout=self.timeout_s)
            with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
                start = time.monotonic()
                try:
                    sock.sendall(case.data)
                except OSError:
                    pass  # the register may answer and close before a big body is sent
                return self._read(sock, start, case.head)
        except (OSError, ssl.SSLError) as exc:
            return Answer(None, "", b"", time.monotonic() - start, f"{type(exc).__name__}: {exc}")

    def _read(self, sock: ssl.SSLSocket, start: float, head_only: bool) -> Answer:
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return Answer(None, "", buf, time.monotonic() - start, "timeout")
            except (OSError, ssl.SSLError) as exc:
                if not buf:
                    return Answer(None, "", b"", time.monotonic() - start, f"{type(exc).__name__}")
                chunk = b""
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                if 100 <= status < 200:  # 100 Continue: the answer follows
                    buf = rest
                    continue
                fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
                length = 0 if head_only else int(fields.get("content-length", "0") or 0)
                if len(rest) >= length or not chunk:
                    return Answer(status, fields.get("content-type", ""), rest[:length], time.monotonic() - start)
                break
            if not chunk:
                return Answer(None, "", buf, time.monotonic() - start, "closed")
