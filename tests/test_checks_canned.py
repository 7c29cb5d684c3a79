"""The checks themselves, on canned answers (issue 13 item 4): a passing and a failing answer per check, so a
check can be changed with confidence without starting a register.

Covers the fuzz checks (suites/fuzz/checks.py, schemathesis' check shape) and the harness's named
expectations and judging helpers (expect.py, judging.py). Each failing answer must fail with the requirement
the check enforces at the start of the message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pcr_conformance import expect, impl_profile, judging
from suites.fuzz import checks

CORRELATION = "3f2b8c1e-2d4a-4b6e-9c1f-0a1b2c3d4e5f"
ERROR_BODY = {"statusMessage": "Bad Request", "correlationId": CORRELATION,
              "errorResponses": [{"fieldName": "loanNumber", "errorCode": "D01", "errorDescription": "missing"}]}


@dataclass(frozen=True)
class _Definition:
    raw: dict[str, Any]


@dataclass(frozen=True)
class _Operation:
    label: str
    definition: _Definition


@dataclass(frozen=True)
class _Case:
    operation: _Operation


@dataclass
class _Response:
    """What a check reads of a schemathesis Response: status, headers (lists of values), text, content, json()."""

    status_code: int
    text: str = ""
    headers: dict[str, list[str]] = field(default_factory=lambda: {"content-type": ["application/json"]})

    @property
    def content(self) -> bytes:
        return self.text.encode()

    def json(self) -> Any:
        return json.loads(self.text)


def _case(operation: str = "GetLoan") -> _Case:
    return _Case(_Operation(f"POST /{operation}", _Definition({"operationId": operation})))


def _answer(status: int, body: Any = None, *, text: str | None = None, content_type: str = "application/json") -> _Response:
    return _Response(status, text if text is not None else json.dumps(body), {"content-type": [content_type]})


@pytest.fixture(autouse=True)
def _reference_judging():
    judging.configure("reference")
    judging.drain()
    yield
    judging.configure("reference")
    judging.drain()


# (check, requirement, a passing answer, a failing answer)
CANNED: list[tuple[Callable[[Any, Any, Any], None], str, _Response, _Response]] = [
    (checks.not_a_server_error, "ENV-015", _answer(400, ERROR_BODY), _answer(500, {"detail": "boom"})),
    (checks.no_internals, "SEC-011", _answer(400, ERROR_BODY),
     _answer(400, {**ERROR_BODY, "statusMessage": 'Traceback (most recent call last):\n  File "app.py", line 3'})),
    (checks.documented_status, "ENV-014", _answer(404, ERROR_BODY), _answer(409, ERROR_BODY)),
    (checks.json_content_type, "ENV-014", _answer(400, ERROR_BODY),
     _answer(400, text="Bad Request", content_type="text/plain")),
    (checks.error_object, "ENV-005", _answer(400, ERROR_BODY),
     _answer(400, {"statusMessage": "Bad Request", "errorResponses": []})),
    (checks.response_schema, "ENV-014", _answer(400, ERROR_BODY), _answer(400, {"statusMessage": "Bad Request"})),
]


def test_every_check_has_canned_answers() -> None:
    assert {check for check, *_ in CANNED} == {check for _req, check in checks.CHECKS}
    assert {(req, check) for check, req, *_ in CANNED} == {(req, check) for req, check in checks.CHECKS}


@pytest.mark.parametrize(("check", "requirement", "good", "bad"), CANNED, ids=[c[0].__name__ for c in CANNED])
def test_check_passes_a_good_answer_and_fails_a_bad_one_naming_its_requirement(
        check: Callable[[Any, Any, Any], None], requirement: str, good: _Response, bad: _Response) -> None:
    check(None, good, _case())
    with pytest.raises(AssertionError) as failed:
        check(None, bad, _case())
    assert str(failed.value).startswith(f"{requirement} POST /GetLoan -> HTTP {bad.status_code}")


def test_no_internals_knows_the_json_decoders_text() -> None:
    """SEC-011: Python's JSON decoder message or exception passed on as an error description is an internal."""
    leaked = {**ERROR_BODY, "errorResponses": [{"fieldName": "", "errorCode": "H00", "errorDescription":
                                                "json.decoder.JSONDecodeError: Expecting value: line 1 column 2 (char 1)"}]}
    with pytest.raises(AssertionError, match="^SEC-011"):
        checks.no_internals(None, _answer(400, leaked), _case())
    plain = {**ERROR_BODY, "errorResponses": [{"fieldName": "", "errorCode": "H00",
                                               "errorDescription": "The body is not valid JSON."}]}
    checks.no_internals(None, _answer(400, plain), _case())


def test_checks_leave_what_they_do_not_judge_alone() -> None:
    """A 2xx is no error answer (ENV-005); a 5xx is ENV-015's, not a documented-status or schema failure."""
    checks.error_object(None, _answer(200, {"loan": {}}), _case())
    checks.documented_status(None, _answer(503, text="down", content_type="text/plain"), _case())
    checks.response_schema(None, _answer(502, text="<html>", content_type="text/html"), _case())
    checks.json_content_type(None, _Response(204, "", {"content-type": [""]}), _case())


def test_run_all_joins_every_failing_check_first_id_leading() -> None:
    checks.run_all(_answer(400, ERROR_BODY), _case())
    with pytest.raises(AssertionError) as failed:
        checks.run_all(_answer(500, text="Traceback (most recent call last): sqlite3.OperationalError",
                               content_type="text/plain"), _case())
    lines = str(failed.value).splitlines()
    assert lines[0].startswith("ENV-015") and any(line.startswith("SEC-011") for line in lines)


def test_response_schema_judges_modelled_parts_by_the_reading() -> None:
    """ENV-023: members only our model requires (the counts of GetBatchStatus) fail under the reference reading
    and are informative under the public one, never an ENV-014 failure there."""
    full = {"batchReference": "B-1", "batchStatus": "FinishedSuccess", "reportCount": 1, "acceptedCount": 1,
            "rejectedCount": 0, "receivedTimeUtc": "2026-01-02T10:00:00Z",
            "reportResults": [{"reportReference": "R-1", "status": "Accepted", "errorResponses": []}]}
    bare = {"batchReference": "B-1", "batchStatus": "FinishedSuccess",
            "reportResults": [{"reportReference": "R-1", "errorResponses": []}]}
    checks.response_schema(None, _answer(200, full), _case("GetBatchStatus"))
    with pytest.raises(AssertionError, match="^ENV-023 .*acceptedCount"):
        checks.response_schema(None, _answer(200, bare), _case("GetBatchStatus"))
    judging.configure("public")
    checks.response_schema(None, _answer(200, bare), _case("GetBatchStatus"))
    _observed, findings = judging.drain()
    assert [f["requirement"] for f in findings] == ["ENV-023"]


# ---- expect.py and judging.py --------------------------------------------------------------------------


def _http(status: int, body: Any = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else ERROR_BODY)


def _error(code: str, field_name: str = "loanNumber") -> httpx.Response:
    return _http(400, {**ERROR_BODY, "errorResponses": [{"fieldName": field_name, "errorCode": code,
                                                           "errorDescription": "x"}]})


def _batch(status: str, *results: dict[str, Any]) -> dict[str, Any]:
    return {"batchReference": "B-1", "batchStatus": status, "reportResults": list(results)}


ACCEPTED = {"reportReference": "R-1", "status": "Accepted", "errorResponses": []}
REJECTED = {"reportReference": "R-2", "status": "Rejected",
            "errorResponses": [{"fieldName": "amountPaid", "errorCode": "D02", "errorDescription": "x"}]}


def _fails(requirement: str, call: Callable[[], Any]) -> str:
    with pytest.raises(expect.RequirementFailure) as failed:
        call()
    assert str(failed.value).startswith(f"{requirement} "), str(failed.value)
    return str(failed.value)


def test_status_passes_the_expected_code_and_fails_another() -> None:
    expect.status(_http(404), 404, "SEC-007", "GetLoan")
    expect.status(_http(403), (403, 404), "SEC-007", "GetLoan")
    assert "expected HTTP 403 or 404" in _fails("SEC-007", lambda: expect.status(_http(200, {}), (403, 404),
                                                                                   "SEC-007", "GetLoan"))


def test_that_and_fail_name_the_requirement() -> None:
    expect.that(True, "EXT-006", "GetCreditRegisterExtract", "2", "2")
    _fails("EXT-006", lambda: expect.that(0, "EXT-006", "GetCreditRegisterExtract", "2 loans", "3"))


def test_error_code_exact_under_the_reference_reading_and_field_named() -> None:
    expect.error_code(_error("D02", "amountPaid"), "D02", "RPT-004", "AddLoans", field="amountPaid")
    _fails("RPT-004", lambda: expect.error_code(_error("D05"), "D02", "RPT-004", "AddLoans"))
    _fails("RPT-004", lambda: expect.error_code(_error("D02", "other"), "D02", "RPT-004", "AddLoans",
                                                field="amountPaid"))
    _fails("RPT-004", lambda: expect.error_code(_http(400, {**ERROR_BODY, "errorResponses": []}), "D02",
                                                "RPT-004", "AddLoans"))


def test_error_code_of_a_modelled_code_by_reading_and_profile() -> None:
    """A modelled code: exact under the reference reading (a wrong one fails ENV-024 for a public rule), any code
    under the public reading with the code seen recorded, the profile's code when it states one."""
    _fails("ENV-024", lambda: expect.error_code(_error("Q11"), "D11", "RPT-004", "GetLoan"))  # RPT-004: public
    _fails("RPT-016", lambda: expect.error_code(_error("Q11"), "D11", "RPT-016", "GetLoan"))  # RPT-016: modelled
    judging.configure("public")
    expect.error_code(_error("Q11"), "D11", "RPT-016", "GetLoan")
    observed, _ = judging.drain()
    assert observed == [{"key": "error_codes.D11", "value": "Q11", "detail": "GetLoan"}]
    judging.configure("public", impl_profile.ImplementationProfile(error_codes={"D11": "X11"}))
    expect.error_code(_error("X11"), "D11", "RPT-016", "GetLoan")
    _fails("RPT-016", lambda: expect.error_code(_error("Q11"), "D11", "RPT-016", "GetLoan"))


def test_batch_state_passes_the_state_and_fails_another() -> None:
    expect.batch_state(_batch("FinishedSuccess", ACCEPTED), "FinishedSuccess", "BAT-003")
    text = _fails("BAT-003", lambda: expect.batch_state(_batch("FinishedFailed", REJECTED), "FinishedPartialSuccess",
                                                        "BAT-003"))
    assert "R-2=Rejected(D02)" in text


def test_report_accepted_and_rejected_on_canned_batch_status() -> None:
    status = _batch("FinishedPartialSuccess", ACCEPTED, REJECTED)
    expect.report_accepted(status, "R-1", "BAT-003")
    expect.report_rejected(status, "R-2", "D02", "RPT-004")
    _fails("BAT-003", lambda: expect.report_accepted(status, "R-2", "BAT-003"))
    _fails("RPT-004", lambda: expect.report_rejected(status, "R-1", "D02", "RPT-004"))
    _fails("RPT-004", lambda: expect.report_rejected(status, "R-9", "D02", "RPT-004"))  # no result for it
    _fails("BAT-003", lambda: expect.report_accepted(status, "R-9", "BAT-003"))


def test_report_result_without_its_status_literal_is_env_023_under_the_reference_reading_only() -> None:
    bare = {"reportReference": "R-3", "errorResponses": []}
    _fails("ENV-023", lambda: expect.is_accepted(bare))
    judging.configure("public")
    assert expect.is_accepted(bare) and not expect.is_rejected(bare)
    assert expect.is_rejected({"reportReference": "R-4", "errorResponses": REJECTED["errorResponses"]})


def test_error_codes_and_body_of_tolerate_odd_bodies() -> None:
    assert expect.error_codes(_error("E20")) == ["E20"]
    assert expect.error_codes(httpx.Response(400, text="<html>")) == []
    assert expect.body_of(httpx.Response(400, text="not json")) is None
    assert expect.error_codes(_http(400, {"errorResponses": "D01"})) == []


def test_judging_value_and_code_requirement() -> None:
    assert judging.value("processing_literal", "Processing") == ("Processing", "model")
    assert judging.code_requirement("RPT-004", "model") == "ENV-024"
    assert judging.code_requirement("RPT-004", "public") == "RPT-004"
    judging.informative("ENV-023", "GetLoan", "a", "b")
    judging.informative("ENV-023", "GetLoan", "a", "b")  # recorded once
    assert len(judging.drain()[1]) == 1 and judging.drain() == ([], [])
