"""The per-test record of HTTP calls, rendered as Allure attachments: one per call, holding its request, its
response and a curl command that repeats it.

Rendering can mask personal identity codes (--mask-pii) so a report can be handed over without the
(artificial, but still identity-shaped) codes.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Mapping

# Any hetu-shaped token: DDMMYY, century sign, ZZZ, check character.
_HETU_TOKEN = re.compile(r"(?<![0-9A-Za-z])(\d{6})([-+A-FU-Y])(\d{3})([0-9A-Y])(?![0-9A-Za-z])")


def mask_pii(text: str) -> str:
    """Replace the individual number and check character of every hetu-shaped token: 010594Y9032 -> 010594Y****."""
    return _HETU_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}****", text)


# Certificate files as an evidence bundle ships them (the bundle holds certificates, never private keys).
BUNDLE_CA = "certs/ca.pem"
CURL_NOTE = ("# Run in the folder of the evidence bundle: certs/ca.pem is the register's CA bundle and "
             "certs/<slot>.pem the identity slot's client certificate.\n"
             "# The bundle never holds private keys: after --key give your own key file for that slot.")


# The headings of a call attachment's three sections, in this order (Call.render).
REQUEST_HEADING = "=== request"
RESPONSE_HEADING = "=== response"
CURL_HEADING = "=== curl"


def bundle_cert(slot: str) -> str:
    """certs/<slot>.pem: where the evidence bundle keeps the client certificate of an identity slot."""
    return f"certs/{re.sub(r'[^A-Za-z0-9_.-]', '_', slot) or 'client'}.pem"


@dataclasses.dataclass
class Call:
    slot: str
    operation: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    response_body: str = ""
    duration_s: float = 0.0
    error: str = ""  # network error text when there is no response
    cacert: str = ""
    cert: str = ""
    key: str = ""
    note: str = ""  # e.g. "failing case" for the fuzz case that failed a check

    def attachment_name(self, number: int) -> str:
        """`N. Operation (slot[, note]): METHOD -> status`, or `-> no response (error)` when none came."""
        outcome = str(self.status) if self.status is not None else f"no response ({self.error})"
        note = f", {self.note}" if self.note else ""
        return f"{number}. {self.operation} ({self.slot}{note}): {self.method} -> {outcome}"

    def render(self, mask: bool = False) -> str:
        """The call's one attachment: its request, its response and its curl command, each under its heading.

        One file per call, not three, and no separate call sequence: the report reads every attachment file
        through its own stream, and the per-file cost was most of its generation time (issue 12)."""
        return "\n\n".join([f"{REQUEST_HEADING}\n{self.render_request(mask)}",
                             f"{RESPONSE_HEADING}\n{self.render_response(mask)}",
                             f"{CURL_HEADING}\n{self.render_curl(mask)}"])

    def render_request(self, mask: bool = False) -> str:
        lines = [f"{self.method} {self.url}"] + [f"{k}: {v}" for k, v in self.request_headers.items()]
        return _m("\n".join(lines) + "\n\n" + _pretty(self.request_body), mask)

    def render_response(self, mask: bool = False) -> str:
        if self.status is None:
            return _m(f"no response after {self.duration_s:.3f} s: {self.error}", mask)
        lines = [f"HTTP {self.status}  ({self.duration_s * 1000:.0f} ms)"]
        lines += [f"{k}: {v}" for k, v in self.response_headers.items()]
        return _m("\n".join(lines) + "\n\n" + _pretty(self.response_body), mask)

    def render_curl(self, mask: bool = False) -> str:
        """A command that repeats the request with the same certificate (docs/concepts.md#allure-mapping).

        The certificate files are named as the evidence bundle holds them (certs/ca.pem, certs/<slot>.pem),
        not by the run's paths (an embedded register's are temporary); the key is the reader's own."""
        lines = [f"curl -sS -i -X {self.method} {shlex.quote(self.url)}"]
        if self.cacert:
            lines.append(f"--cacert {BUNDLE_CA}")
        if self.cert:
            lines.append(f"--cert {bundle_cert(self.slot)} --key {shlex.quote(f'<your key for slot {self.slot}>')}")
        for k, v in self.request_headers.items():
            if k.lower() in ("content-length", "host", "accept-encoding", "connection", "user-agent", "accept"):
                continue
            lines.append(f"-H {shlex.quote(f'{k}: {v}')}")
        if self.request_body:
            lines.append(f"--data-binary {shlex.quote(self.request_body)}")
        return _m(CURL_NOTE + "\n" + " \\\n  ".join(lines), mask)


class CallLog:
    """Calls of one test, in order. Clients append; the plugin attaches and clears."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        self.calls.append(call)


# Bodies up to PRETTY_LIMIT characters are shown indented; a longer one (the robustness matrix's huge arrays and
# names) as sent: indenting a 100 000-element array makes it five times longer and no easier to read, and every
# report of every kit inlines it (issue 12: report generation time grows with the attachments' size).
PRETTY_LIMIT = 16 * 1024


def _pretty(body: str) -> str:
    """The body as an attachment shows it: JSON indented when up to PRETTY_LIMIT characters, else as sent."""
    if not body:
        return ""
    if len(body) > PRETTY_LIMIT:
        return body
    try:
        data = json.loads(body)
        pretty = json.dumps(data, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return body
    try:
        pretty.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate escape (ENV-018) decodes to a code point UTF-8 cannot hold: keep it escaped, as sent.
        return json.dumps(data, indent=2)
    return pretty


def _m(text: str, mask: bool) -> str:
    return mask_pii(text) if mask else text


def headers_dict(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k): str(v) for k, v in headers.items()}
