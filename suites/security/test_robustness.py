"""The robustness matrix: every case of CASES on every operation of every API family (issue 17).

A case is one class of hostile input at one position of the operation's valid request (``suite.valid_request``),
sent in a few variants on one connection, with the answer it must get: never a 5xx, the documented 4xx and
error code, the error object where HTTP allows a body (ENV-005, or the case's own requirement where the
requirement demands it), no internals (SEC-011). Requests httpx cannot send (header abuse, framing, a body
promised and not sent) go as raw bytes over TLS with the slot's certificate, each socket under a hard deadline.

Every case is started in the background by the first matrix item (MatrixRuns): the ordinary ones a few at a
time, the read-deadline cases (ENV-020), which wait up to the register's read deadline plus a margin, all
together, so the matrix takes that wait once, not once per case, and they are collected last, so the ordinary
cases are checked while they wait; each test checks its own case's answers.
The deadline is ``read_deadline_s`` of the target when it has one, else the target's ``timeout_s`` for the
embedded register and 30 s for any other target.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pcr_conformance import catalogue, contract, expect, judging
from pcr_conformance import suite as s
from pcr_conformance.testdata import TestData

from . import _bodies as b
from . import _raw_http as raw

# Under `run --workers N` (pytest-xdist, --dist loadfile) this module goes whole to one worker: MatrixRuns sends
# every case of the session in the background, which must happen once, not in each worker.

REMOTE_READ_DEADLINE_S = 30.0
MiB = 1024 * 1024


# ---- what a case sends ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Http:
    """One request through the slot's ApiClient (httpx, a pooled connection)."""

    label: str
    content: bytes | None
    content_type: str | None = "application/json"
    method: str = "POST"
    field: str | None = None  # the member an error item must name


@dataclasses.dataclass(frozen=True)
class Raw:
    """Raw bytes over TLS: request `chunks`, sent in order on a fresh connection."""

    label: str
    chunks: tuple[bytes, ...]


@dataclasses.dataclass(frozen=True)
class Valid:
    """The operation's valid request, the raw material of every case."""

    operation: str
    body: dict[str, Any]
    headers: dict[str, str]
    endpoint: raw.Endpoint

    def json(self, body: Any = None) -> bytes:
        return b.render(self.body if body is None else body)

    def head(self, *lines: tuple[str, str] | bytes, length: int | None = None, host: bool = True,
             content_type: bool = True) -> list[tuple[str, str] | bytes]:
        hdrs: list[tuple[str, str] | bytes] = list(self.headers.items())
        if content_type:
            hdrs.append(("Content-Type", "application/json"))
        if length is not None:
            hdrs.append(("Content-Length", str(length)))
        return [*hdrs, *lines]

    def raw(self, label: str, *lines: tuple[str, str] | bytes, body: bytes | None = None, length: int | None = None,
            host: bool = True, content_type: bool = True) -> Raw:
        """A raw POST of the valid body (or `body`) with extra header `lines`; Content-Length as given."""
        content = self.json() if body is None else body
        head = raw.request_bytes("POST", self.endpoint, self.head(*lines, length=length, host=host,
                                                                    content_type=content_type), host=host)
        return Raw(label, (head + content,))


# ---- what a case expects ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Refused:
    """Status `status` with error code `code` (naming the variant's field), the error object, no internals."""

    status: int
    code: str | None

    def check(self, resp, case: Case, operation: str, variant: Http) -> None:
        what = f"{operation} with {case.what} ({variant.label})"
        contract.not_server_error(resp, case.requirement, what)
        expect.status(resp, self.status, case.requirement, what)
        if self.code:
            expect.error_code(resp, self.code, case.requirement, what, field=variant.field)
        if variant.method != "HEAD":  # a HEAD answer has no body
            contract.error_shape(resp, what)
        contract.no_internals(resp, what)


@dataclasses.dataclass(frozen=True)
class Tolerated:
    """A 2xx or a 4xx with the error object, never 5xx (ENV-015); `refusal` demands the 4xx."""

    refusal: bool = False

    def check(self, resp, case: Case, operation: str, variant: Http) -> None:
        what = f"{operation} with {case.what} ({variant.label})"
        contract.not_server_error(resp, case.requirement, what)
        if self.refusal:
            expect.that(400 <= resp.status_code < 500, case.requirement, what, "a 4xx refusal",
                        f"HTTP {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            contract.error_shape(resp, what)
        contract.no_internals(resp, what)


@dataclasses.dataclass(frozen=True)
class RefusedOrClosed:
    """Raw: a 4xx of `statuses` (400 carrying one of `codes`) with the error object, or the connection closed;
    never a 5xx, a non-JSON refusal or silence until the deadline."""

    statuses: tuple[int, ...] = (400, 411, 413, 431)
    codes: tuple[str, ...] = ("H40",)
    shape_requirement: bool = True

    def check_raw(self, answer: raw.RawAnswer, case: Case, operation: str, variant: Raw, deadline_s: float) -> None:
        what = f"{operation} with {case.what} ({variant.label})"
        expect.that(not answer.timed_out, case.requirement, what,
                    f"a 4xx answer or the connection closed within {deadline_s:g} s",
                    f"no answer and the connection still open after {answer.elapsed_s:.1f} s")
        resp = answer.response
        if resp is None:
            return  # closed without an answer: allowed where HTTP cannot carry one
        contract.not_server_error(resp, case.requirement, what)
        want = " or ".join(map(str, self.statuses))
        expect.that(resp.status_code in self.statuses, case.requirement, what, f"HTTP {want}",
                    f"HTTP {resp.status_code}: {resp.text[:300]}")
        if resp.status_code == 400:
            codes = expect.error_codes(resp)
            # Each code by the session's judging (exact when public, stated or the model's; else any code).
            wanted = [judging.expected_code(c)[0] for c in self.codes]
            expect.that(any(c in codes for c in wanted) if all(wanted) else bool(codes), case.requirement, what,
                        f"error code {' or '.join(self.codes)} in the error object",
                        f"HTTP 400 with codes {codes or 'none'}, Content-Type {resp.headers.get('content-type')!r}: "
                        f"{resp.text[:300]!r}")
        contract.error_shape(resp, what, case.requirement if self.shape_requirement else "ENV-005")
        contract.no_internals(resp, what)


@dataclasses.dataclass(frozen=True)
class DeadlineAnswer:
    """Raw, nothing more sent: 408 H08 with the error object, or the connection closed, within the deadline."""

    def check_raw(self, answer: raw.RawAnswer, case: Case, operation: str, variant: Raw, deadline_s: float) -> None:
        what = f"{operation} with {case.what}"
        expect.that(not answer.timed_out, case.requirement, what,
                    f"408 or the connection closed within the read deadline {deadline_s:g} s (incl. margin)",
                    f"no answer and the connection still open after {answer.elapsed_s:.1f} s")
        resp = answer.response
        if resp is None:
            return
        contract.not_server_error(resp, case.requirement, what)
        expect.status(resp, 408, case.requirement, what)
        expect.error_code(resp, "H08", case.requirement, what)
        contract.error_shape(resp, what, case.requirement)
        contract.no_internals(resp, what)


Check = Refused | Tolerated | RefusedOrClosed | DeadlineAnswer


@dataclasses.dataclass(frozen=True, repr=False)
class Case:
    """One row of the table: a class of hostile input at one position, its requirement and expected answer."""

    id: str
    requirement: str
    what: str
    send: Callable[[Valid], list[Http] | list[Raw]]
    expected: Check
    applies: Callable[[dict[str, Any]], bool] = lambda body: True  # the operation's body has the position

    def __repr__(self) -> str:  # the pytest and Allure parameter: stable across runs (Allure history keys on it)
        return self.id

    @property
    def verifies(self) -> tuple[str, ...]:
        """The case's requirement, ENV-005 where the error object is checked under that ID, and SEC-011."""
        expected = self.expected
        own_shape = isinstance(expected, DeadlineAnswer) or (
            isinstance(expected, RefusedOrClosed) and expected.shape_requirement)
        no_body = isinstance(expected, Refused) and self.id == "method-head"
        return (self.requirement, *(() if own_shape or no_body else ("ENV-005",)), "SEC-011")


# ---- positions of a valid body ------------------------------------------------------------------------------

#: Where a string can carry invalid Unicode: (position id, what, how to put `text` there, or None).
def _at_name(where: Callable[[Any], b.Path | None]) -> Callable[[Valid, bytes], bytes | None]:
    def put(v: Valid, text: bytes) -> bytes | None:
        path = where(v.body)
        if path is None:
            return None
        return b.render(v.body, raw=text, extra={path: [(f"pcr{b.MARK}", "x")]})
    return put


def _at_value(where: Callable[[Any], b.Path | None]) -> Callable[[Valid, bytes], bytes | None]:
    def put(v: Valid, text: bytes) -> bytes | None:
        path = where(v.body)
        if path is None:
            return None
        return b.render(b.replaced(v.body, path, f"{b.get(v.body, path)}{b.MARK}"), raw=text)
    return put


def _top(body: Any) -> b.Path:
    return ()


def _target_environment(body: Any) -> b.Path:
    return ("targetEnvironment",)


def _owner_id(body: Any) -> b.Path:
    return ("owner", "idCode")


STRING_POSITIONS = [  # (position id, what, where in a body; None: the operation has no such position)
    ("member-name-top", "a member name at top level", _at_name, _top),
    ("member-name-nested", "a member name in the deepest object", _at_name, b.deepest_object),
    ("value-top", "the targetEnvironment value", _at_value, _target_environment),
    ("value-nested", "the deepest text value", _at_value, b.deepest_text),
    ("owner-idcode", "owner.idCode", _at_value, _owner_id),
    ("identifier", "the operation's own identifier", _at_value, b.own_identifier),
]

INVALID_UNICODE = [
    ("lone-surrogate", "a lone surrogate escape", [b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"\\ud800\\u0041"]),
    ("invalid-utf8", "bytes that are not UTF-8", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"]),
    ("nul", "a NUL character", [b"\\u0000", b"\\u0000\\u0000"]),
]


def _unicode(put: Callable[[Valid, bytes], bytes | None], texts: list[bytes]) -> Callable[[Valid], list[Http] | None]:
    def send(v: Valid) -> list[Http] | None:
        bodies = [(t, put(v, t)) for t in texts]
        if any(body is None for _, body in bodies):
            return None
        return [Http(t.decode("latin-1"), body) for t, body in bodies]
    return send


# ---- wrong types, duplicates, numbers, sizes ---------------------------------------------------------------

def _wrong_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["true", 1, []]
    if isinstance(value, int | float):
        return [str(value), True, [], {}]
    if isinstance(value, str):
        return [123, True, [], {}]
    if isinstance(value, list):
        return ["x", 1, {}]
    return ["x", 1, [], False]


def _wrong_type(depth: int) -> Callable[[Valid], list[Http] | None]:
    def send(v: Valid) -> list[Http] | None:
        if depth == 0:
            return [Http(f"body {w!r}", b.render(w)) for w in ([], "x", 1, None, True)]
        path = b.at_depth(v.body, depth)
        if path is None:
            return None
        original = b.get(v.body, path)
        return [Http(f"{'/'.join(map(str, path))} = {w!r}", b.render(b.replaced(v.body, path, w)),
                     field=b.member_name(path)) for w in _wrong_values(original)]
    return send


def _duplicate(where: Callable[[Any], b.Path], *, case_differs: bool) -> Callable[[Valid], list[Http]]:
    def send(v: Valid) -> list[Http]:
        path = where(v.body)
        obj = b.get(v.body, path)
        name, value = next(iter(obj.items()))
        twin = name[:1].upper() + name[1:] if case_differs else name
        values = [value] if case_differs else [value, _other(value)]
        return [Http(f"{'/'.join(map(str, (*path, twin)))} twice ({w!r:.40})", b.render(v.body, extra={path: [(twin, w)]}),
                     field=name) for w in values]
    return send


def _other(value: Any) -> Any:
    if value == "Test":
        return "Production"
    if isinstance(value, str):
        return value + "0"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return value


def _spliced(where: Callable[[Any], b.Path | None], literals: list[bytes], *, named: bool) -> Callable[[Valid], list[Http]]:
    def send(v: Valid) -> list[Http]:
        path = where(v.body) or ("owner", "idCode")
        body = b.replaced(v.body, path, b.MARK)
        return [Http(f"{'/'.join(map(str, path))} = {lit[:12].decode()}{'...' if len(lit) > 12 else ''}",
                     b.render(body, raw=lit, in_string=False), field=b.member_name(path) if named else None)
                for lit in literals]
    return send


def _nested(v: Valid) -> list[Http]:
    path = b.deepest_text(v.body) or ("owner", "idCode")
    body = b.replaced(v.body, path, b.MARK)
    shapes = [("arrays 40 deep", b"[" * 40 + b"]" * 40), ("arrays 100 000 deep", b"[" * 100_000 + b"]" * 100_000),
              ("objects 5 000 deep", b'{"a": ' * 5000 + b"1" + b"}" * 5000)]
    return [Http(f"{'/'.join(map(str, path))} = {label}", b.render(body, raw=nest, in_string=False))
            for label, nest in shapes]


def _huge_identifier(v: Valid) -> list[Http]:
    return [Http("owner.idCode of 1 MiB", b.render(b.replaced(v.body, ("owner", "idCode"), "9" * MiB)))]


def _huge_text(v: Valid) -> list[Http]:
    path = b.deepest_text(v.body) or ("owner", "idCode")
    return [Http(f"{'/'.join(map(str, path))} of 1 MiB", b.render(b.replaced(v.body, path, "x" * MiB)))]


def _huge_name(v: Valid) -> list[Http]:
    return [Http("a member name of 1 MiB", b.render(v.body, extra={(): [("p" * MiB, 1)]}))]


def _huge_array(v: Valid) -> list[Http]:
    path = b.first_array(v.body) or ("owner", "idCode")
    where = "/".join(map(str, path))
    return [Http(f"{where} of 20 000 zeros", b.render(b.replaced(v.body, path, [0] * 20_000))),
            Http(f"{where} of 2 000 empty objects", b.render(b.replaced(v.body, path, [{}] * 2_000)))]


# ---- methods, content types, body sizes ---------------------------------------------------------------------

def _method(method: str) -> Callable[[Valid], list[Http]]:
    def send(v: Valid) -> list[Http]:
        return [Http(method, None, content_type=None, method=method)]
    return send


_method_head = _method("HEAD")


def _content_type(content_type: str | None) -> Callable[[Valid], list[Http]]:
    def send(v: Valid) -> list[Http]:
        return [Http(f"Content-Type {content_type!r}", v.json(), content_type=content_type)]
    return send


def _over_limit(v: Valid) -> list[Http]:
    return [Http("5 MiB + 1 KiB with Content-Length", b.render({**v.body, "padding": "x" * (5 * MiB + 1024)}))]


def _over_limit_chunked(v: Valid) -> list[Raw]:
    content = b.render({**v.body, "padding": "x" * (5 * MiB + 1024)})
    step = 64 * 1024
    chunks = [f"{len(content[i:i + step]):x}\r\n".encode() + content[i:i + step] + b"\r\n"
              for i in range(0, len(content), step)]
    head = raw.request_bytes("POST", v.endpoint, v.head(("Transfer-Encoding", "chunked")))
    return [Raw("5 MiB + 1 KiB chunked, no Content-Length", (head, *chunks, b"0\r\n\r\n"))]


# ---- header abuse and framing (raw) -------------------------------------------------------------------------

def _framing(v: Valid) -> dict[str, list[Raw]]:
    """The raw header-abuse variants of one operation, by case id."""
    body = v.json()
    n = len(body)
    chunked = f"{n:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    bad_line = raw.request_bytes("POST", v.endpoint, v.head(length=n)).replace(b" HTTP/1.1", b" HTTP/1.1 extra", 1)
    return {
        "header-name-with-space": [v.raw("a space in a header name", b"Pcr Bad: x", length=n)],
        "header-without-colon": [v.raw("a header line without a colon", b"PcrNoColon", length=n)],
        "header-value-nul": [v.raw("NUL in a header value", b"X-Pcr: a\x00b", length=n)],
        "header-oversize": [v.raw("a 1 MiB header", ("X-Pcr-Big", "x" * MiB), length=n)],
        "host-missing": [v.raw("no Host header", length=n, host=False)],
        "request-line-malformed": [Raw("a request line with a fourth part", (bad_line + body,))],
        "content-length-conflicting": [v.raw("Content-Length 10 and n", ("Content-Length", "10"), length=n)],
        "content-length-not-a-number": [v.raw("Content-Length abc", ("Content-Length", "abc"))],
        "content-length-negative": [v.raw("Content-Length -1", ("Content-Length", "-1"))],
        "content-length-short": [v.raw("Content-Length shorter than the body", length=n // 2)],
        "content-length-missing": [v.raw("a body without Content-Length or Transfer-Encoding")],
        "content-length-and-chunked": [v.raw("Content-Length beside Transfer-Encoding chunked",
                                             ("Transfer-Encoding", "chunked"), body=chunked, length=n)],
        "transfer-encoding-unknown": [v.raw("Transfer-Encoding pcr", ("Transfer-Encoding", "pcr"), length=n)],
        "chunk-size-invalid": [v.raw("a chunk size that is not hex", ("Transfer-Encoding", "chunked"),
                                     body=b"zz\r\n" + body + b"\r\n0\r\n\r\n")],
        "content-type-conflicting": [v.raw("Content-Type text/plain then application/json",
                                           ("Content-Type", "text/plain"), ("Content-Type", "application/json"),
                                           length=n, content_type=False)],
    }


FRAMING = {  # case id: (what, statuses, 400 codes)
    "header-name-with-space": ("a space in a header name", (400,), ("H40",)),
    "header-without-colon": ("a header line without a colon", (400,), ("H40",)),
    "header-value-nul": ("NUL in a header value", (400,), ("H40",)),
    "header-oversize": ("an oversize header", (400, 431), ("H40",)),
    "host-missing": ("no Host header", (400,), ("H40",)),
    "request-line-malformed": ("a malformed request line", (400,), ("H40",)),
    "content-length-conflicting": ("two different Content-Length headers", (400,), ("H40",)),
    "content-length-not-a-number": ("a Content-Length that is not a number", (400, 411), ("H40",)),
    "content-length-negative": ("a negative Content-Length", (400, 411), ("H40",)),
    "content-length-short": ("a Content-Length shorter than the body", (400,), ("H00", "H40")),
    "content-length-missing": ("a body without Content-Length", (400, 411), ("H00", "H40")),
    "content-length-and-chunked": ("Content-Length and Transfer-Encoding chunked", (400,), ("H40",)),
    "transfer-encoding-unknown": ("an unknown Transfer-Encoding", (400, 411), ("H40",)),
    "chunk-size-invalid": ("an invalid chunk size", (400,), ("H00", "H40")),
    "content-type-conflicting": ("two different Content-Type headers", (400, 415), ("H40",)),
}


# ---- a body promised but not sent (raw, ENV-020) -------------------------------------------------------------

def _deadline(v: Valid) -> dict[str, Raw]:
    body = v.json()
    n = len(body)
    head = raw.request_bytes("POST", v.endpoint, v.head(length=n))
    expect_100 = raw.request_bytes("POST", v.endpoint, v.head(("Expect", "100-continue"), length=n))
    return {
        "read-deadline-body-missing": Raw("headers promise a body, none follows", (head,)),
        "read-deadline-body-partial": Raw("half the promised body, then nothing", (head + body[: n // 2],)),
        "read-deadline-expect-continue": Raw("Expect 100-continue, no body", (expect_100,)),
        "read-deadline-headers-incomplete": Raw("headers that never end", (head[:-4],)),
    }


DEADLINES = {
    "read-deadline-body-missing": "a body promised by Content-Length and not sent",
    "read-deadline-body-partial": "half of the promised body",
    "read-deadline-expect-continue": "Expect 100-continue and no body",
    "read-deadline-headers-incomplete": "headers that never end",
}


# ---- the case table -----------------------------------------------------------------------------------------

def _shape(operation: str) -> dict[str, Any]:
    """The structure of the operation's valid body, without a target: which positions it has."""

    class Data(TestData):
        def person(self, tag: str | None = "income") -> str:
            return "010101-900A"

    class Caller:
        def envelope(self, **members: Any) -> dict[str, Any]:
            return {"targetEnvironment": "Test", "owner": {"idCodeType": "BusinessId", "idCode": "0000000-0"},
                    **members}

    return s.valid_request(operation, Caller(), Data(None, run_id="shape"))[0]


SHAPES = {op: _shape(op) for op in catalogue.operation_ids()}
WRONG_TYPE_DEPTHS = range(max(b.max_depth(body) for body in SHAPES.values()) + 1)
HUGE_NUMBER = str(10**400).encode()


def _has(where: Callable[[Any], b.Path | None]) -> Callable[[dict[str, Any]], bool]:
    return lambda body: where(body) is not None


CASES: list[Case] = [
    *[Case(f"{cls}-{pos}", "ENV-018", f"{what} in {where}", _unicode(put(at), texts), Refused(400, "H01"), _has(at))
      for cls, what, texts in INVALID_UNICODE for pos, where, put, at in STRING_POSITIONS],
    *[Case(f"wrong-type-depth-{d}", "ENV-017", f"a value of the wrong type at depth {d}", _wrong_type(d),
           Refused(400, "D01"), lambda body, d=d: d == 0 or b.at_depth(body, d) is not None)
      for d in WRONG_TYPE_DEPTHS],
    Case("duplicate-member-top", "ENV-021", "a member twice at top level", _duplicate(_top, case_differs=False),
         Refused(400, "D01")),
    Case("duplicate-member-nested", "ENV-021", "a member twice in the deepest object",
         _duplicate(b.deepest_object, case_differs=False), Refused(400, "D01")),
    Case("duplicate-member-case-top", "ENV-021", "a member twice at top level, in another letter case",
         _duplicate(_top, case_differs=True), Refused(400, "D01")),
    Case("duplicate-member-case-nested", "ENV-021", "a member twice in the deepest object, in another letter case",
         _duplicate(b.deepest_object, case_differs=True), Refused(400, "D01")),
    Case("number-out-of-range", "ENV-022", "a number out of range",
         _spliced(b.first_number, [b"1e400", b"-1e400", HUGE_NUMBER, b"-" + HUGE_NUMBER], named=True),
         Refused(400, "D01")),
    Case("number-not-json", "ENV-007", "a NaN or Infinity literal",
         _spliced(b.first_number, [b"NaN", b"Infinity", b"-Infinity"], named=False), Refused(400, "H00")),
    Case("deep-nesting", "ENV-009", "nesting beyond 32 levels", _nested, Refused(400, "H00")),
    Case("huge-identifier", "ENV-015", "a 1 MiB identity code", _huge_identifier, Tolerated(refusal=True)),
    Case("huge-member-name", "ENV-015", "a 1 MiB member name", _huge_name, Tolerated(refusal=True)),
    Case("huge-text", "ENV-015", "a 1 MiB text value", _huge_text, Tolerated()),
    Case("huge-array", "ENV-015", "an array of 20 000 wrong items", _huge_array, Tolerated(refusal=True)),
    Case("body-empty", "ENV-007", "an empty body", lambda v: [Http("no bytes", b"")], Refused(400, "H00")),
    Case("body-over-limit", "ENV-008", "a body over 5 MiB", _over_limit, Refused(413, "H13")),
    Case("body-over-limit-chunked", "ENV-008", "a chunked body over 5 MiB", _over_limit_chunked,
         RefusedOrClosed((413,), (), shape_requirement=False)),
    Case("method-head", "ENV-001", "HEAD", _method_head, Refused(405, None)),
    *[Case(f"method-{m.lower()}", "ENV-001", m, _method(m), Refused(405, "H05")) for m in ("OPTIONS", "TRACE", "PCRPROBE")],
    *[Case(f"content-type-{cid}", "ENV-006", f"Content-Type {ct!r}", _content_type(ct), Refused(415, "H15"))
      for cid, ct in [("text-plain", "text/plain"), ("multipart", "multipart/form-data; boundary=pcr"),
                      ("json-suffix", "application/merge-patch+json"), ("lookalike", "application/jsonx"),
                      ("missing", None), ("empty", "")]],
    *[Case(cid, "ENV-019", what, lambda v, cid=cid: _framing(v)[cid], RefusedOrClosed(statuses, codes))
      for cid, (what, statuses, codes) in FRAMING.items()],
    *[Case(cid, "ENV-020", what, lambda v, cid=cid: [_deadline(v)[cid]], DeadlineAnswer())
      for cid, what in DEADLINES.items()],
]


# ---- running a case -----------------------------------------------------------------------------------------

def read_deadline_s(target: Any) -> float:
    """The register's read deadline: the target's read_deadline_s, else timeout_s (embedded) or 30 s."""
    value = getattr(target, "read_deadline_s", None)
    if value:
        return float(value)
    return float(target.timeout_s) if target.embedded else REMOTE_READ_DEADLINE_S


def _valid(operation: str, client: Any, data: Any, target: Any) -> Valid:
    body, headers = s.valid_request(operation, client, data)
    return Valid(operation, body, headers, raw.endpoint(target, operation))


class _Caller:
    """The envelope of an identity slot, for requests built outside a test (the background deadline probes)."""

    def __init__(self, target: Any, slot: str) -> None:
        self.target, self.owner = target, dict(target.identities[slot].owner)

    def envelope(self, **members: Any) -> dict[str, Any]:
        return {"targetEnvironment": self.target.environment, "owner": dict(self.owner), **members}


@dataclasses.dataclass
class Sent:
    """One variant as sent, with what came back: an httpx response or a RawAnswer, or the error that stopped
    the case there (later variants are not sent), and the calls to record into the test's log."""

    variant: Http | Raw
    answer: Any = None
    error: BaseException | None = None
    calls: list[Any] = dataclasses.field(default_factory=list)
    deadline_s: float = 0.0


class MatrixRuns:
    """Every matrix case of the session, started in the background by the first matrix item (issue 12).

    The cases are independent hostile requests whose answers no later test reads, so CONCURRENCY of them are
    on the way while the main thread checks answers in collection order, and the register's core works while
    the harness's does. That is for the embedded register on this machine; against a remote target each test
    sends its own case when it runs, as before, so its timeouts, its rate limit and the circuit breaker see
    the same requests at the same moments (a request made in the background competes with the main thread
    and can miss a short timeout_s that it would meet alone). The ENV-020 cases, each holding a connection open up to the read deadline plus a
    margin, all start at once, so the matrix waits that long once. A test takes its case's answers, records
    their calls and checks them in order as if it had sent them itself; a request error stops its case where
    it happened, as inline. Requests go through the session's rate limiter and circuit breaker."""

    CONCURRENCY = 2  # enough to keep both cores busy (harness, register); more only lengthens each request

    def __init__(self, target: Any, data: Any, http: Any) -> None:
        self.target, self.data, self.http = target, data, http
        self.problems: dict[str, str] = {}  # identity slots that cannot connect (the session's tlsprobe)
        self.deadline_s = read_deadline_s(target)
        self.bound_s = self.deadline_s + max(2.0, self.deadline_s / 4)
        self._futures: dict[tuple[str, str], concurrent.futures.Future] = {}
        self._pools: list[concurrent.futures.ThreadPoolExecutor] = []
        self._started = False
        self._lock = threading.Lock()

    def _runnable(self, operation: str) -> bool:
        slot = s.slot_for(catalogue.get(operation).family)
        return (self.target.claims(catalogue.get(operation).capability) and slot in self.target.identities
                and slot not in self.problems and not (self.target.read_only and s.writes(operation)))

    def start(self, items: list[pytest.Item], problems: dict[str, str]) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self.problems = dict(problems)
            waits, quick = [], []
            for item in items:
                params = getattr(getattr(item, "callspec", None), "params", {})
                case = params.get("case")
                if (getattr(item, "originalname", "") == "test_robustness" and isinstance(case, Case)
                        and self._runnable(params["operation"])):
                    (waits if isinstance(case.expected, DeadlineAnswer) else quick).append((params["operation"], case))
            if not self.target.embedded:
                quick = []  # sent by each test itself (result() runs them inline)
            # One daemon thread per deadline case: each ends by its own bound, and a stopped session (Ctrl-C,
            # SIGTERM) neither waits for them nor is held at exit by them (a pool's threads are joined at exit).
            for operation, case in waits:
                future: concurrent.futures.Future = concurrent.futures.Future()
                threading.Thread(target=self._settle, args=(future, operation, case), name="pcr-deadline",
                                 daemon=True).start()
                self._futures[(operation, case.id)] = future
            if quick:
                pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.CONCURRENCY, thread_name_prefix="pcr-matrix")
                self._pools.append(pool)
                for operation, case in quick:
                    self._futures[(operation, case.id)] = pool.submit(self._run, operation, case)

    def _settle(self, future: concurrent.futures.Future, operation: str, case: Case) -> None:
        try:
            future.set_result(self._run(operation, case))
        except BaseException as e:  # noqa: BLE001 - raised again in the test that owns the case
            future.set_exception(e)

    def _run(self, operation: str, case: Case) -> list[Sent]:
        from pcr_conformance.calllog import CallLog
        from pcr_conformance.client import Clients

        log = CallLog()
        client = Clients(self.target, self.http, log, self.data.batch_reference, problems=self.problems).get(
            s.slot_for(catalogue.get(operation).family))
        valid = _valid(operation, client, self.data, self.target)
        waits = isinstance(case.expected, DeadlineAnswer)
        deadline_s = self.bound_s if waits else self.target.timeout_s
        sent: list[Sent] = []
        for variant in case.send(valid):
            before = len(log.calls)
            one = Sent(variant, deadline_s=deadline_s)
            sent.append(one)
            try:
                if isinstance(variant, Raw):
                    one.answer = raw.exchange(self.target, client.slot, operation, list(variant.chunks),
                                              deadline_s=deadline_s, label=variant.label, wait=self.http.limiter.wait)
                    log.add(one.answer.call)
                else:
                    one.answer = client.call(operation, content=variant.content, headers=valid.headers,
                                             content_type=variant.content_type, method=variant.method)
            except Exception as e:  # noqa: BLE001 - raised again in the test that owns the case
                one.error = e
            one.calls = log.calls[before:]
            if one.error is not None:
                break
        return sent

    def result(self, operation: str, case: Case) -> list[Sent]:
        future = self._futures.get((operation, case.id))
        return future.result() if future is not None else self._run(operation, case)

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def matrix_runs(pcr_target, pcr_data, pcr_http):
    runs = MatrixRuns(pcr_target, pcr_data, pcr_http)
    try:
        yield runs
    finally:
        runs.close()


def _matrix() -> list[Any]:
    """Every (operation, case) the shape admits; the ENV-020 cases last, so that the other cases are checked
    while their connections wait out the read deadline in the background (issue 12: no idle waiting)."""
    pairs = [(operation, case) for operation in catalogue.operation_ids() for case in CASES]
    pairs.sort(key=lambda pair: isinstance(pair[1].expected, DeadlineAnswer))  # stable: otherwise as before
    params = []
    for operation, case in pairs:
        op = catalogue.get(operation)
        if case.applies(SHAPES[operation]):
            params.append(pytest.param(operation, case, id=f"{operation}-{case.id}", marks=[
                pytest.mark.verifies(*case.verifies), pytest.mark.capability(op.capability),
                *s.read_only_marks(operation)]))
    return params


@pytest.mark.parametrize(("operation", "case"), _matrix())
def test_robustness(operation, case, pcr_clients, matrix_runs, request):
    """Each hostile-input case on each operation gets its documented 4xx with the error object, never a 5xx."""
    client = pcr_clients.get(s.slot_for(catalogue.get(operation).family))
    matrix_runs.start(request.session.items, pcr_clients.problems)
    for sent in matrix_runs.result(operation, case):
        for call in sent.calls:
            client.record(call)
        if sent.error is not None:
            raise sent.error
        if isinstance(sent.variant, Raw):
            case.expected.check_raw(sent.answer, case, operation, sent.variant, sent.deadline_s)
        else:
            case.expected.check(sent.answer, case, operation, sent.variant)
