"""Offline judgement of recorded traffic (`pcr-conformance validate --response` and `--har`) under a reading.

- A response file is one register answer's JSON body; it is judged against the documented status and the
  response schema of its operation: the public reading's findings (ENV-014), what only the reference reading
  adds (ENV-023: modelled members, formats, literals), the error object of an error answer (ENV-005) and
  leaked internals (SEC-011).
- A HAR file (HTTP Archive 1.2, as browsers and proxies record it) holds request/response pairs; each request
  to an operation of the specs is judged like a message file (validate.validate_body) and its answer like a
  response file.

Under the public reading a finding only the reference reading makes (ENV-023, or a rule whose requirement is
modelled) is a warning: shown, never changing the exit code. `--contract reference` makes them errors.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pcr_conformance import contract, readings, specs
from pcr_conformance.validate import read_json, validate_body
from pcr_conformance.validate_model import ERROR, WARNING, FileResult, Problem, ValidationInputError, pointer
from pcr_conformance.validate_schema import require_operation

REFERENCE_ONLY = "(reference reading only) "


def by_reading(problems: Sequence[Problem], reading: str) -> list[Problem]:
    """Public reading: an error whose requirement is modelled becomes a warning (the reference reading alone
    makes it); reference reading: as found."""
    if readings.check_reading(reading) == "reference":
        return list(problems)
    return [dataclasses.replace(p, severity=WARNING, message=REFERENCE_ONLY + p.message)
            if p.severity == ERROR and not readings.is_public_requirement(p.requirement) else p for p in problems]


def default_status(operation: str) -> int:
    """The operation's first documented 2xx status (200, or 202 for a submission)."""
    ok = [s for s in specs.documented_statuses(operation) if s.isdigit() and s.startswith("2")]
    return int(ok[0]) if ok else 200


def _schema_problems(schema: dict[str, Any] | None, body: Any, requirement: str, fix: str) -> list[Problem]:
    if schema is None:
        return []
    found = []
    for e in sorted(specs.validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path)):
        found.append(Problem(pointer(*e.absolute_path), requirement, "", f"answer: {e.message}", fix))
    return found


def response_problems(body: Any, operation: str, status: int, *, content_type: str | None = None,
                      text: str | None = None) -> list[Problem]:
    """Every finding on one answer, both readings' (ENV-023 marks what only the reference reading makes)."""
    problems: list[Problem] = []
    if not contract.is_documented(operation, status):
        problems.append(Problem("", "ENV-014", "", f"HTTP {status} is not documented for {operation}",
                                f"answer with a status of {', '.join(specs.documented_statuses(operation))}"))
        return problems
    if content_type is not None:
        wrong = contract.content_type_problem(content_type, bool(text))
        if wrong:
            problems.append(Problem("", "ENV-014", "", wrong, "send answers with Content-Type application/json"))
    public = _schema_problems(readings.schema_for_response(operation, status, "public"), body, "ENV-014",
                              f"answer as the HTTP {status} schema of {operation} says (public reading)")
    reference = _schema_problems(readings.schema_for_response(operation, status, "reference"), body, "ENV-023",
                                 "the reference register answers this way; a register that differs on the "
                                 "modelled part only is not judged by it under the public reading")
    seen = {(p.pointer, p.message) for p in public}
    problems += public + [p for p in reference if (p.pointer, p.message) not in seen]
    if status >= 400:
        problems += [Problem("", "ENV-005", "", f"error object: {m}",
                             "an error answer carries statusMessage, a UUID correlationId and errorResponses "
                             "items {fieldName, errorCode, errorDescription}")
                     for m in contract.error_object_problems(body)]
    leaked = contract.leaked_internals(text if text is not None else json.dumps(body))
    if leaked:
        problems.append(Problem("", "SEC-011", "", f"internals in the answer: {leaked!r}",
                                "answer without stack traces, SQL or framework names"))
    return problems


def validate_response_files(paths: Sequence[str | Path], *, operation: str, status: int | None,
                            reading: str) -> list[FileResult]:
    op = require_operation(operation)
    code = status if status is not None else default_status(op)
    return [FileResult(str(p), f"{op} HTTP {code} answer", tuple(by_reading(response_problems(read_json(p), op, code),
                                                                           reading)))
            for p in paths]


def validate_har(path: str | Path, *, reading: str, today: dt.date | None = None,
                 owner_is_kela: bool = False) -> list[FileResult]:
    """One FileResult per request and per answer of the recording that reach an operation of the specs."""
    har = read_json(path)
    entries = har.get("log", {}).get("entries") if isinstance(har, Mapping) else None
    if not isinstance(entries, list):
        raise ValidationInputError(f"{path}: not a HAR file (no log.entries); record one with the browser's or "
                                   f"proxy's 'save as HAR'")
    known = set(specs.operation_index())
    results = []
    for i, entry in enumerate(entries, 1):
        req, resp = entry.get("request") or {}, entry.get("response") or {}
        operation = urlsplit(str(req.get("url", ""))).path.rstrip("/").rsplit("/", 1)[-1]
        if operation not in known or str(req.get("method", "")).upper() != "POST":
            continue
        label = f"{path}#{i} {operation}"
        sent = _json_text((req.get("postData") or {}).get("text"), f"{label} request")
        results.append(FileResult(f"{label} request", operation, tuple(by_reading(
            validate_body(sent, operation, today=today, owner_is_kela=owner_is_kela), reading))))
        content = resp.get("content") or {}
        status = int(resp.get("status") or 0)
        if status:
            text = content.get("text")
            if text and content.get("encoding") == "base64":
                text = base64.b64decode(text).decode("utf-8", "replace")
            try:
                body = json.loads(text) if text else None
                found = response_problems(body, operation, status, content_type=content.get("mimeType"), text=text)
            except json.JSONDecodeError as e:
                found = [Problem("", "ENV-014", "", f"the answer is not JSON ({e.msg})",
                                 "answer with an application/json body")]
            results.append(FileResult(f"{label} response", f"{operation} HTTP {status} answer",
                                      tuple(by_reading(found, reading))))
    if not results:
        raise ValidationInputError(f"{path}: no POST to an operation of the specs in the recording")
    return results


def _json_text(text: Any, where: str) -> Any:
    try:
        return json.loads(text or "")
    except (json.JSONDecodeError, TypeError) as e:
        raise ValidationInputError(f"{where}: the body is not JSON ({e})") from None
