"""The two readings of the contract (readings.py), implementation profiles (impl_profile.py) and how a session
judges modelled values (judging.py, expect.py): unit tests, no register."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pcr_conformance import expect, impl_profile, judging, readings, specs
from pcr_conformance.errors import HarnessError, RequirementFailure


@pytest.fixture(autouse=True)
def _reset_judging():
    yield
    judging.configure("reference")
    judging.drain()


def _public(op: str, status: int, body: Any) -> list[str]:
    return specs.validate(readings.schema_for_response(op, status, "public"), body)


def _reference(op: str, status: int, body: Any) -> list[str]:
    return specs.validate(readings.schema_for_response(op, status, "reference"), body)


def test_provenance_of_requirements_and_codes_is_read_from_the_specs() -> None:
    assert readings.is_public_requirement("RPT-004") and not readings.is_public_requirement("RPT-016")
    assert readings.is_public_requirement("ENV-014") and not readings.is_public_requirement("ENV-023")
    assert readings.is_public_code("D02") and readings.is_public_code("E21") and not readings.is_public_code("D11")
    assert readings.decides("RPT-016", "reference") and not readings.decides("RPT-016", "public")


def test_a_minimal_batch_status_is_valid_only_under_the_public_reading() -> None:
    minimal = {"batchStatus": "InQueue"}  # another register's processing literal, nothing else
    assert _public("GetBatchStatus", 200, minimal) == []
    found = _reference("GetBatchStatus", 200, minimal)
    assert any("batchReference" in p for p in found) and any("InQueue" in p for p in found)
    # A public member of the wrong type is wrong under both readings.
    assert _public("GetBatchStatus", 200, {"batchStatus": "FinishedSuccess", "reportCount": "3"})


def test_unknown_members_and_offset_dates_on_the_extract_are_read_publicly() -> None:
    body = specs.response_examples("GetCreditRegisterExtract", 200)["loansFound"]
    assert _public("GetCreditRegisterExtract", 200, body) == [] == _reference("GetCreditRegisterExtract", 200, body)
    extract = body["creditRegisterExtract"]
    extract.pop("extractOutcome")
    extract.pop("notices")
    extract["registerBuild"] = "another register"
    loan = extract["loans"][0]
    loan["contractDate"] = "2026-03-02T00:00:00+02:00"
    loan["lumpSumLoan"].pop("purposeOfUse")
    del body["statusMessage"]
    assert _public("GetCreditRegisterExtract", 200, body) == []
    reference = _reference("GetCreditRegisterExtract", 200, body)
    assert any("extractOutcome" in p for p in reference) and any("contractDate" in p for p in reference)
    loan["contractDate"] = "2 March 2026"  # neither form: wrong under both readings
    assert _public("GetCreditRegisterExtract", 200, body)


def test_public_schema_drops_only_what_is_modelled() -> None:
    schema = {"type": "object", "x-provenance": "third-party", "additionalProperties": False,
              "required": ["a", "b", "c"],
              "properties": {"a": {"type": "string", "pattern": "^x$"},
                             "b": {"type": "string", "x-provenance": "modelled", "format": "uuid"},
                             "c": {"type": "integer", "x-required-provenance": "modelled"},
                             "d": {"type": "string", "enum": ["P", "F"], "x-modelled-values": ["P"]}}}
    public = readings.public_schema(schema)
    assert public["required"] == ["a"] and "additionalProperties" not in public
    assert public["properties"]["a"]["pattern"] == "^x$" and "format" not in public["properties"]["b"]
    assert "enum" not in public["properties"]["d"]
    closed = readings.public_schema({**schema, "x-closed": "official"})
    assert closed["additionalProperties"] is False


def test_modelled_paths_split_an_expected_answer() -> None:
    paths = readings.modelled_paths("GetBatchStatus", 200)
    assert ("acceptedCount",) in paths and ("batchStatus",) not in paths
    public, modelled = readings.split_expected({"batchStatus": "FinishedSuccess", "acceptedCount": 1}, paths)
    assert public == {"batchStatus": "FinishedSuccess"} and modelled == {"acceptedCount": 1}


def test_the_reference_profile_states_every_modelled_code_and_loads_its_values() -> None:
    profile = impl_profile.load_profile("reference")
    modelled = {c for c, e in specs.load_errors().items() if e["provenance"] == "modelled"}
    # Our register answers the model's own codes: the profile must say so for every modelled rule.
    assert dict(profile.error_codes) == {c: c for c in modelled}
    assert profile.value("processing_literal") == "Processing" and profile.value("extract_date_format") == "date"
    assert impl_profile.load_profile("") is impl_profile.NO_PROFILE
    with pytest.raises(KeyError):
        profile.value("no_such_value")


@pytest.mark.parametrize(("text", "field"), [
    ('[error_codes]\nD99 = "X01"\n', "error_codes.D99"),
    ('[error_codes]\nD11 = "wrong"\n', "error_codes.D11"),
    ('[values]\nprocessing_literal = 3\n', "values.processing_literal"),
    ('[values]\nextract_date_format = "time"\n', "values.extract_date_format"),
    ('colour = "blue"\n', "colour"),
])
def test_a_bad_profile_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError, match=f"field {field}"):
        impl_profile.load_profile(str(path))


def test_a_learned_draft_loads_as_a_profile(tmp_path: Path) -> None:
    text = impl_profile.draft_toml("x-draft", {"D11": ("Q11", "suites/a.py::t")},
                                   {"processing_literal": ("BeingProcessed", "suites/b.py::u")}, "a header")
    path = tmp_path / "draft.toml"
    path.write_text(text, encoding="utf-8")
    profile = impl_profile.load_profile(str(path))
    assert profile.code_for("D11") == "Q11" and profile.value("processing_literal") == "BeingProcessed"
    assert "seen by suites/a.py::t" in text


def _error(code: str, field: str = "loans/0/x") -> httpx.Response:
    return httpx.Response(400, json={"statusMessage": "Failed", "correlationId": "x",
                                     "errorResponses": [{"fieldName": field, "errorCode": code,
                                                         "errorDescription": "d"}]})


def test_expected_codes_follow_the_reading_and_the_profile() -> None:
    assert judging.expected_code("D02") == ("D02", "public")
    assert judging.expected_code("D11") == ("D11", "model")
    judging.configure("public")
    assert judging.expected_code("D11") == (None, "unstated")
    judging.configure("public", impl_profile.ImplementationProfile(error_codes={"D11": "X11"}))
    assert judging.expected_code("D11") == ("X11", "profile")


def test_error_code_asserts_only_the_public_part_when_nothing_states_the_code() -> None:
    judging.configure("public")
    expect.error_code(_error("Q11"), "D11", "RPT-016", "GetLoan", field="x")  # any code, the field named
    observed, _findings = judging.drain()
    assert observed == [{"key": "error_codes.D11", "value": "Q11", "detail": "GetLoan"}]
    with pytest.raises(RequirementFailure, match="RPT-016"):
        expect.error_code(_error("Q11", field="other"), "D11", "RPT-016", "GetLoan", field="x")
    with pytest.raises(RequirementFailure, match="ENV-002"):  # an error answer without any code
        expect.error_code(httpx.Response(400, json={"errorResponses": []}), "D01", "ENV-002", "AddLoans")


def test_a_wrong_code_fails_env_024_when_only_the_model_gave_it() -> None:
    with pytest.raises(RequirementFailure) as info:  # reference reading, no profile: the model's D01
        expect.error_code(_error("Q01"), "D01", "ENV-002", "AddLoans")
    assert info.value.requirement == "ENV-024"
    with pytest.raises(RequirementFailure) as info:  # a modelled requirement names itself
        expect.error_code(_error("Q11"), "D11", "RPT-016", "GetLoan")
    assert info.value.requirement == "RPT-016"
    judging.configure("public", impl_profile.ImplementationProfile(error_codes={"D01": "X01"}))
    with pytest.raises(RequirementFailure) as info:  # a profile's value is the target's own statement
        expect.error_code(_error("Q01"), "D01", "ENV-002", "AddLoans")
    assert info.value.requirement == "ENV-002"
    with pytest.raises(RequirementFailure) as info:  # a public code decides under every reading
        expect.error_code(_error("Q02"), "D02", "RPT-004", "AddLoans")
    assert info.value.requirement == "RPT-004"


def test_report_results_are_read_by_their_errors_publicly() -> None:
    rejected = {"reportReference": "R-1", "errorResponses": [{"fieldName": "f", "errorCode": "Q11",
                                                              "errorDescription": "d"}]}
    accepted = {"reportReference": "R-2", "errorResponses": []}
    judging.configure("public")
    assert expect.is_rejected(rejected) and expect.is_accepted(accepted)
    judging.configure("reference")
    with pytest.raises(RequirementFailure, match="ENV-023"):  # the reference reading wants the status literal
        expect.is_rejected(rejected)
    assert expect.is_accepted({**accepted, "status": "Accepted"})
