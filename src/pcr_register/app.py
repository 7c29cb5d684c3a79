"""The ASGI application: POST /<OperationId>, the envelope checks and the error object (interfaces.md §1, §5).

Order of checks: path (H04) -> method (H05) -> certificate -> content type (H15) -> size (H13) -> body within
the read deadline (H08) -> role (D43) -> UTF-8 and NUL (H01) -> JSON (H00) -> lone surrogates (H01),
duplicate members and numbers out of range (D01) -> member-name casing and nesting (ENV-011, H00) -> batch
size (D62) -> schema (D01 ...) -> owner (D40, D05, D41, D42) -> targetEnvironment (D07) -> the operation.
Framing and header errors below the application (H40, 431, header deadline) are answered in server.py.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import Response

from pcr_register import body as body_parser
from pcr_register import casing, lenient, load_faults, memory, variant
from pcr_register.config import MAX_BODY_BYTES, MAX_REPORTS, read_deadline_s
from pcr_register.errors import ApiError, error_body, fail, item
from pcr_register.identity import Caller, caller_from_certificate, check_owner, check_role
from pcr_register.routes import Operation, check_specs, served
from pcr_register.state import Register
from pcr_register.submission import COLLECTION

log = logging.getLogger("pcr_register.app")

PEER_CERT_KEY = "pcr.peer_cert"  # set per connection by server.PeerCertProtocol (scope["state"])

class _TooLarge(Exception):
    pass


def encode(payload: dict[str, Any]) -> bytes:
    """The answer as UTF-8 JSON; a string that UTF-8 cannot hold is written as an escape, never a 500."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the body, stopping as soon as it exceeds the limit (ENV-008, also for chunked bodies)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _anonymous_caller(reg: Register, family: str) -> Caller | None:
    """Fault ignore_client_cert (breaks SEC-001): a connection without a certificate acts as lender-a."""
    org = reg.organisations.get("lender-a")
    return Caller(org=org, role=reg.specs.certificate_roles[family], scope=org.scope) if org else None


def create_app(reg: Register) -> Callable[..., Awaitable[None]]:
    check_specs(reg.specs)  # SpecError: the register does not serve what its specs do not describe
    operations = served(reg.specs)  # an operation of a later contract version only when the specs have it
    faults = reg.faults
    validate_responses = reg.config.validate_responses or os.environ.get("PCR_REGISTER_VALIDATE_RESPONSES") == "1"
    normaliser = casing.Normaliser(casing.name_map(reg.specs.property_names),
                                   top_level_only=faults.on("casing_top_level_only"))
    cert_cache: dict[bytes, Caller | None] = {}
    deadline_s = read_deadline_s(faults)
    rewrite = variant.rewriter(reg.specs, reg.config.variant)  # the identity for the reference variant

    def error_response(error: ApiError, operation: str | None) -> tuple[int, dict]:
        return error.status, error_body(reg.specs.describe(error.items),
                                        with_correlation_id=not faults.on("missing_correlation_id"))

    def process(operation: str, op: Operation, caller: Caller, raw: bytes, headers: dict[str, str]) -> tuple[int, dict]:
        """Everything after the body is read; runs in a worker thread (JSON, validation and SQLite block)."""
        if load_faults.server_error_now(faults):  # breaks PRF-003: a 500 only under load
            raise RuntimeError("connection pool exhausted")
        try:  # ENV-018 (H01), ENV-021 and ENV-022 (D01): once, before anything reads a member
            parsed = body_parser.parse(raw, check_duplicates=not faults.on("duplicate_members_last_wins"))
        except body_parser.BadJson as exc:
            if faults.on("server_error_on_bad_json"):  # breaks ENV-007
                raise RuntimeError("bad json") from exc
            if faults.on("internals_in_bad_json_answer"):  # breaks SEC-011: the decoder's text in the answer
                raise fail(400, "H00", "", f"json.decoder.JSONDecodeError: {exc}") from None
            raise fail(400, "H00", "") from None
        except body_parser.Problem as problem:
            if problem.kind == "unicode" and faults.on("lone_surrogate_500"):  # breaks ENV-018
                raise RuntimeError("a lone surrogate reached the handler") from None
            if problem.kind == "number" and faults.on("huge_number_500"):  # breaks ENV-022
                raise RuntimeError("a number out of range reached the handler") from None
            raise fail(400, "H01" if problem.code == "H01" else "D01", problem.pointer, problem.text or None) from None
        try:
            body = normaliser(parsed)  # ENV-011, ENV-009
        except (casing.TooDeep, body_parser.TooDeep):
            if op.family == "reporting" and faults.on("deep_nesting_500_reporting"):  # breaks ENV-009
                raise RuntimeError("maximum recursion depth exceeded") from None
            raise fail(400, "H00", "", "The body is nested deeper than 32 levels.") from None
        if not isinstance(body, dict):
            raise fail(400, "D01", "", "The body must be a JSON object.")
        collection = COLLECTION.get(operation)
        limit = MAX_REPORTS + (1 if faults.on("batch_limit_off_by_one") else 0)  # the fault breaks BAT-012
        if collection and isinstance(body.get(collection), list) and len(body[collection]) > limit:
            raise fail(413, "D62", f"/{collection}")  # BAT-012
        body = lenient.before_validation(faults, operation, body)
        errors = reg.specs.request_errors(operation, body, ignore_unknown=faults.on("accept_unknown_members"),
                                           ignore_missing=faults.on("accept_missing_members"))
        errors = lenient.ignored_errors(faults, operation, op.family, body, errors)
        if faults.on("negative_amount_accepted"):  # breaks RPT-037: the minimum of amountIssued not enforced
            errors = [e for e in errors if not (e["fieldName"].endswith("/amountIssued")
                                                and "minimum" in e["errorDescription"])]
        if faults.on("empty_repayments_batch_accepted") and body.get("repayments") == []:  # breaks RPT-040
            errors = [e for e in errors if e["fieldName"] != "/repayments"]
        if errors:  # ENV-002, ENV-004, ENV-010, ENV-012, ENV-013, ...
            raise ApiError(400, errors)
        owner = body.get("owner")
        if owner is None and faults.on("owner_optional_get_batch_status"):  # breaks ENV-004
            owner = body["owner"] = {"idCodeType": caller.org.id_code_type, "idCode": caller.org.id_code}
        if not isinstance(owner, dict):
            raise fail(400, "D01", "/owner", "'owner' is a required property")
        check_owner(owner, caller, faults)
        if "targetEnvironment" not in body and faults.on("target_environment_optional_authorities"):
            body["targetEnvironment"] = reg.config.environment  # breaks ENV-002 (only reached for authorities)
        if body.get("targetEnvironment") != reg.config.environment and lenient.environment_checked(faults, op.family):  # ENV-003
            raise fail(400, "D07", "/targetEnvironment")
        if operation == "GetLoan" and faults.on("quote_in_loan_number_500") \
                and "'" in str((body.get("loanNumber") or {}).get("number")):  # breaks ENV-015
            raise RuntimeError('near "\'": syntax error (a query built as text)')
        return op.handler(reg, caller, body, headers)

    async def app(scope: dict[str, Any], receive: Callable[..., Awaitable[dict]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        operation = scope["path"].lstrip("/")
        status: int
        payload: dict[str, Any]
        extra_headers: dict[str, str] = {}
        try:
            op = operations.get(operation)
            if op is None:  # ENV-016
                if faults.on("unknown_path_gateway_404"):  # breaks ENV-016: a gateway's own page
                    await Response(b"<html><body><h1>404 Not Found</h1></body></html>", status_code=404,
                                   media_type="text/html")(scope, receive, send)
                    return
                raise fail(404, "H04", "")
            if scope["method"] != "POST" and not lenient.method_allowed(faults, op.family, scope["method"]):  # ENV-001
                extra_headers["Allow"] = "POST"
                raise fail(405, "H04" if faults.on("method_not_allowed_code_h04") else "H05", "")  # H04: ENV-024
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            der = (scope.get("state") or {}).get(PEER_CERT_KEY)
            if der:
                if der not in cert_cache:
                    cert_cache[der] = caller_from_certificate(der, reg.organisations)
                caller = cert_cache[der]
                if caller is None:
                    raise fail(403, "D42", "", "The certificate names no organisation known to the register.")
            elif faults.on("ignore_client_cert"):
                caller = _anonymous_caller(reg, op.family)
                if caller is None:
                    raise fail(403, "D43", "")
            else:
                raise fail(403, "D43", "", "A client certificate is required.")
            names = [k.decode("latin-1").lower() for k, _ in scope["headers"]]
            if "transfer-encoding" in names and "content-length" in names:  # ENV-019: ambiguous framing
                raise fail(400, "H40", "Content-Length", "Content-Length and Transfer-Encoding together.")
            if names.count("content-type") > 1:  # ENV-019: which one would the register believe?
                raise fail(400, "H40", "Content-Type", "More than one Content-Type header.")
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json" and lenient.content_type_checked(faults, operation):  # ENV-006
                raise fail(415, "H15", "Content-Type")
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:  # ENV-008
                raise fail(413, "H13", "")
            # Fault size_limit_on_content_length_only (breaks ENV-008): a chunked body is read whole (up to 64 MiB).
            limit = 64 * MAX_BODY_BYTES // 5 if length is None and faults.on("size_limit_on_content_length_only") \
                else MAX_BODY_BYTES
            try:
                with anyio.fail_after(deadline_s):  # ENV-020: a promised body that does not come
                    raw = await _read_body(receive, limit)
            except _TooLarge:
                memory.after_body(MAX_BODY_BYTES)
                raise fail(413, "H13", "") from None
            except TimeoutError:
                extra_headers["Connection"] = "close"
                raise fail(408, "H08", "") from None
            if not lenient.role_check_skipped(faults, operation):
                check_role(caller, op.family, reg.specs.certificate_roles[op.family], faults)  # SEC-004, AUT-001, BAN-001
            try:
                status, payload = await anyio.to_thread.run_sync(process, operation, op, caller, raw, headers)
            finally:
                memory.after_body(len(raw))
        except ApiError as error:
            status, payload = error_response(error, operation)
        except Exception:  # SEC-011: no internals in the answer
            log.exception("internal error in %s", operation)
            status, payload = 500, error_body(reg.specs.describe([item("H50", "")]),
                                              with_correlation_id=not faults.on("missing_correlation_id"))
        if operation == "GetBatchStatus" and status == 200 and faults.on("batch_status_without_received_time"):
            payload.pop("receivedTimeUtc", None)  # breaks ENV-023 (a modelled member)
        if validate_responses and operation in operations:
            problems = reg.specs.response_errors(operation, status, payload)
            if problems:
                log.error("response of %s %s does not conform to the spec: %s", operation, status, problems)
                status, payload = 500, error_body([item("H50", "", "Response does not conform to the spec.")])
        # The variant rewrites the reference answer after it was checked: what it changes is the variant's.
        payload = rewrite(operation, status, payload)
        response = Response(
            encode(payload),
            status_code=status,
            media_type="application/json",
            headers=extra_headers,
        )
        await response(scope, receive, send)

    return app
