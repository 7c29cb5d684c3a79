"""Recorded traffic of a stakeholder's system (docs/client-testing.md): one `Exchange` per request and answer,
and the HAR 1.2 file (HTTP Archive, as browsers and proxies write it) that holds them.

`pcr-conformance proxy` records exchanges and writes `traffic.har`; the client suite (`suites/client/`) reads a
HAR back (`--recording`), so a HAR recorded elsewhere can be judged the same way. What HAR has no field for
(the identity the client certificate mapped to) goes into the entry's `_pcr` member (HAR allows custom members
that start with an underscore).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pcr_conformance import catalogue
from pcr_conformance.errors import HarnessError

Headers = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request of the client and the answer it got (status 0: the proxy could not get one upstream)."""

    started: float  # epoch seconds when the request reached the proxy
    duration_s: float
    method: str
    url: str
    request_headers: Headers
    request_text: str
    status: int
    response_headers: Headers
    response_text: str
    client_slot: str = ""  # the target identity the client certificate mapped to ("" = unknown)
    client_owner: Mapping[str, str] | None = None  # that identity's owner, for CLI-007

    @property
    def ended(self) -> float:
        return self.started + self.duration_s

    @functools.cached_property
    def operation(self) -> str:
        """The operationId the URL names ("" when it names none of the specs); computed once (every check asks)."""
        name = urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]
        return name if name in catalogue.operation_ids() else ""

    @functools.cached_property
    def family(self) -> str:
        return catalogue.family_of(self.operation) if self.operation else ""

    def request_header(self, name: str) -> str | None:
        return _header(self.request_headers, name)

    def response_header(self, name: str) -> str | None:
        return _header(self.response_headers, name)

    def request_json(self) -> Any:
        """The request body parsed (None when not JSON); parsed once, every check asks. Read it, never change it."""
        return self._request_doc

    def response_json(self) -> Any:
        return self._response_doc

    @functools.cached_property
    def _request_doc(self) -> Any:
        return _json(self.request_text)

    @functools.cached_property
    def _response_doc(self) -> Any:
        return _json(self.response_text)


def _header(headers: Headers, name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers if k.lower() == lower), None)


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _har_headers(headers: Headers) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in headers]


def to_har(exchanges: Iterable[Exchange], *, creator: str = "pcr-conformance proxy") -> dict[str, Any]:
    """The HAR 1.2 document of the exchanges."""
    entries = []
    for e in exchanges:
        mime = e.response_header("content-type") or ""
        entries.append({
            "startedDateTime": _iso(e.started), "time": round(e.duration_s * 1000, 3),
            "request": {"method": e.method, "url": e.url, "httpVersion": "HTTP/1.1", "cookies": [],
                        "headers": _har_headers(e.request_headers), "queryString": [],
                        "postData": {"mimeType": e.request_header("content-type") or "", "text": e.request_text},
                        "headersSize": -1, "bodySize": len(e.request_text.encode())},
            "response": {"status": e.status, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                         "headers": _har_headers(e.response_headers), "redirectURL": "",
                         "content": {"size": len(e.response_text.encode()), "mimeType": mime,
                                     "text": e.response_text},
                         "headersSize": -1, "bodySize": len(e.response_text.encode())},
            "cache": {}, "timings": {"send": 0, "wait": round(e.duration_s * 1000, 3), "receive": 0},
            "_pcr": {"clientSlot": e.client_slot, "clientOwner": dict(e.client_owner or {}) or None},
        })
    return {"log": {"version": "1.2", "creator": {"name": creator, "version": "1"}, "entries": entries}}


def write_har(path: Path, exchanges: Sequence[Exchange]) -> None:
    """Written whole to a temporary name first: a stopped proxy never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_har(exchanges), ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def read_har(path: str | Path) -> list[Exchange]:
    """The exchanges of a HAR file, in the order they started; HarnessError naming the file and the fix."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HarnessError(f"recording {p}: cannot read it as JSON ({e}); give a HAR file "
                           f"(pcr-conformance proxy writes traffic.har)") from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise HarnessError(f"recording {p}: not a HAR file (no log.entries)")
    out = []
    for i, entry in enumerate(entries, 1):
        try:
            out.append(_exchange(entry))
        except (KeyError, TypeError, ValueError) as e:
            raise HarnessError(f"recording {p}: entry {i}: {e!r}; each entry needs startedDateTime, request "
                               f"(method, url, headers) and response (status, headers, content)") from None
    return sorted(out, key=lambda e: e.started)


def _exchange(entry: Mapping[str, Any]) -> Exchange:
    req, resp = entry["request"], entry.get("response") or {}
    content = resp.get("content") or {}
    text = content.get("text") or ""
    if text and content.get("encoding") == "base64":
        text = base64.b64decode(text).decode("utf-8", "replace")
    started = dt.datetime.fromisoformat(str(entry["startedDateTime"]).replace("Z", "+00:00")).timestamp()
    extra = entry.get("_pcr") or {}
    return Exchange(
        started=started, duration_s=float(entry.get("time") or 0) / 1000, method=str(req["method"]).upper(),
        url=str(req["url"]), request_headers=tuple((h["name"], h["value"]) for h in req.get("headers") or ()),
        request_text=(req.get("postData") or {}).get("text") or "", status=int(resp.get("status") or 0),
        response_headers=tuple((h["name"], h["value"]) for h in resp.get("headers") or ()), response_text=text,
        client_slot=str(extra.get("clientSlot") or ""), client_owner=extra.get("clientOwner") or None)
