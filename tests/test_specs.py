"""Lints of the contract in specs/: OpenAPI validity, examples, requirement register, provenance tags.

Everything here is static and fast (no register, no network).
"""

from __future__ import annotations

import copy
import datetime
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing.exceptions import PointerToNowhere

from pcr_conformance import specs

REPO = Path(__file__).resolve().parents[1]
FAMILIES = list(specs.family_files())
ALL_FILES = [specs.COMPONENTS_FILE, *specs.family_files().values()]
PUBLIC_OPERATIONS = ["AddLoans", "UpdateLoans", "Repayments", "DelayedRepayments", "TerminateLoans",
                     "GetBatchStatus", "GetLoan", "GetCreditRegisterExtract"]
SUBMIT_OPERATIONS = PUBLIC_OPERATIONS[:5]
PROVENANCE = {"official", "third-party", "modelled"}
ACTORS = {"lender", "kela", "authority", "credit-information-company", "register"}
APIS = {"reporting", "extract", "authorities", "voluntary-ban", "all"}
HETU_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"
HETU_RE = re.compile(r"^(\d{6})[-+ABCDEFYXWVU](\d{3})([0-9A-Y])$")
BUSINESS_ID_RE = re.compile(r"^(\d{7})-(\d)$")


def _file_uri(file_name: str) -> str:
    return (specs.specs_dir() / file_name).resolve().as_uri()


def _walk(node: Any, path: str = "") -> Any:
    """Yield (path, dict) for every dict in a document, skipping example payloads."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("examples", "example") and not path.endswith("/properties"):
                continue
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _interface_codes() -> set[str]:
    """Error codes of errors.yaml of the contract in use (the codes as data)."""
    return set(specs.load_errors())


# ----- OpenAPI validity --------------------------------------------------------------------------------

@pytest.mark.parametrize("file_name", ALL_FILES)
def test_spec_file_is_valid_openapi_31(file_name: str) -> None:
    """Each spec file passes openapi-spec-validator (3.1), resolving refs into components.yaml."""
    validate(specs.load_raw(file_name), base_uri=_file_uri(file_name), cls=OpenAPIV31SpecValidator)


def test_validator_really_resolves_cross_file_refs() -> None:
    """A ref to a missing shared component is reported, so the validity test above checks the refs."""
    raw = specs.load_raw("reporting.yaml")
    raw["components"]["schemas"]["GetLoanRequest"]["properties"]["owner"]["$ref"] = (
        "components.yaml#/components/schemas/NoSuchSchema")
    with pytest.raises(PointerToNowhere):
        validate(raw, base_uri=_file_uri("reporting.yaml"), cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize("family", FAMILIES)
def test_bundled_spec_is_self_contained_and_valid(family: str) -> None:
    """load_spec() leaves no ref into another file and the bundle is itself a valid document."""
    bundled = specs.load_spec(family)
    refs = [node["$ref"] for _, node in _walk(bundled) if isinstance(node.get("$ref"), str)]
    assert refs and all(ref.startswith("#/") for ref in refs), [r for r in refs if not r.startswith("#/")]
    validate(bundled, cls=OpenAPIV31SpecValidator)


def test_specs_dir_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PCR_SPECS_DIR points the loader at another copy of the contract."""
    copy_dir = tmp_path / "specs"
    shutil.copytree(specs.specs_dir(), copy_dir)
    monkeypatch.setenv("PCR_SPECS_DIR", str(copy_dir))
    assert specs.specs_dir() == copy_dir
    assert "AddLoans" in specs.operation_index()


# ----- operations ---------------------------------------------------------------------------------------

def test_all_four_families_present() -> None:
    assert specs.available_families() == FAMILIES


def test_public_operation_names_are_operation_ids() -> None:
    """The eight public operation names appear exactly as operationIds, each at POST /<operationId>."""
    index = specs.operation_index()
    for op_id in PUBLIC_OPERATIONS:
        assert op_id in index, op_id
    assert index["GetCreditRegisterExtract"][0] == "extract"
    for op_id, (_family, path, _op) in index.items():
        assert path == f"/{op_id}", (op_id, path)
    for family in FAMILIES:
        for path, item in specs.load_spec(family)["paths"].items():
            assert set(item) == {"post"}, (path, set(item))  # ENV-001: POST only


def test_interfaces_operations_exist() -> None:
    """Every operation listed in docs/interfaces.md §1 has a spec operation (and no others exist)."""
    text = (REPO / "docs" / "interfaces.md").read_text(encoding="utf-8")
    section = text.split("## 2.")[0]
    listed = set()
    for line in re.findall(r"\(`specs/[a-z-]+\.yaml`[^)]*\): `([^`]+)`", section, flags=re.S):
        listed.update(line.split())
    assert listed == set(specs.operation_index())


@pytest.mark.parametrize("op_id", SUBMIT_OPERATIONS)
def test_submissions_need_batch_reference_and_answer_202(op_id: str) -> None:
    """RPT-001 / RPT-002: BatchReference header required; 202 documented with a link to GetBatchStatus."""
    doc = specs.load_spec("reporting")
    _family, _path, op = specs.operation_index()[op_id]
    params = [specs.resolve(doc, p) for p in op.get("parameters", [])]
    header = [p for p in params if p["in"] == "header" and p["name"] == "BatchReference"]
    assert header and header[0]["required"] is True
    response = specs.resolve(doc, op["responses"]["202"])
    assert response["links"]["GetBatchStatus"]["operationId"] == "GetBatchStatus"
    assert response["links"]["GetBatchStatus"]["requestBody"]["batchReference"] == (
        "$request.header.BatchReference")
    assert {"400", "403", "409", "413", "415"} <= set(op["responses"])


def test_lookup_operations_document_their_404() -> None:
    for op_id in ("GetBatchStatus", "GetLoan", "GetOrderStatus", "GetDistribution"):
        assert "404" in specs.documented_statuses(op_id), op_id
    assert "409" in specs.documented_statuses("GetDistribution")


@pytest.mark.parametrize("op_id", sorted(specs.operation_index()))
def test_every_operation_is_tagged(op_id: str) -> None:
    _family, _path, op = specs.operation_index()[op_id]
    assert op.get("x-provenance") in PROVENANCE, op_id
    assert op.get("x-requirements"), op_id


def test_x_requirements_match_the_register() -> None:
    """x-requirements of each operation lists exactly the register-side requirements naming that operation (the
    client requirements, side: client, judge the stakeholder's system, not the operation's implementation)."""
    requirements = [r for r in specs.load_requirements() if r.get("side", "register") == "register"]
    for op_id, (_family, _path, op) in specs.operation_index().items():
        expected = [r["id"] for r in requirements if op_id in r["operations"]]
        assert op["x-requirements"] == expected, op_id


def _strict_objects(doc: dict[str, Any], node: Any, where: str, seen: set[int],
                    refinement: bool = False) -> list[str]:
    """Paths of object schemas reachable from node that allow unknown members."""
    node = specs.resolve(doc, node)
    if not isinstance(node, dict) or id(node) in seen:
        return []
    seen.add(id(node))
    loose = []
    if "properties" in node and not refinement and node.get("additionalProperties") is not False:
        loose.append(where)
    for name, sub in node.get("properties", {}).items():
        loose += _strict_objects(doc, sub, f"{where}/{name}", seen)
    if "items" in node:
        loose += _strict_objects(doc, node["items"], f"{where}[]", seen)
    for sub in node.get("allOf", []):
        # an allOf member without its own type only narrows members of its sibling
        narrowing = isinstance(sub, dict) and "type" not in sub and "$ref" not in sub
        loose += _strict_objects(doc, sub, where, seen, refinement=narrowing)
    return loose


@pytest.mark.parametrize("op_id", sorted(specs.operation_index()))
def test_request_schemas_are_strict(op_id: str) -> None:
    """Request objects reachable from a request body reject unknown members (ENV-010)."""
    schema = specs.schema_for_request(op_id)
    assert _strict_objects({"components": schema["components"]}, schema, op_id, set()) == []


# ----- examples -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("op_id", sorted(specs.operation_index()))
def test_request_examples_are_valid(op_id: str) -> None:
    examples = specs.request_examples(op_id)
    assert examples, f"{op_id} has no request example"
    schema = specs.schema_for_request(op_id)
    for name, body in examples.items():
        assert specs.validate(schema, body) == [], f"{op_id} example {name}"


def _responses() -> list[tuple[str, str]]:
    return [(op_id, status) for op_id in sorted(specs.operation_index())
            for status in specs.documented_statuses(op_id)]


@pytest.mark.parametrize(("op_id", "status"), _responses())
def test_response_examples_are_valid(op_id: str, status: str) -> None:
    examples = specs.response_examples(op_id, status)
    assert examples, f"{op_id} {status} has no example"
    schema = specs.schema_for_response(op_id, status)
    assert schema is not None
    for name, body in examples.items():
        assert specs.validate(schema, body) == [], f"{op_id} {status} example {name}"


def _example_strings() -> list[str]:
    found: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)
        elif isinstance(node, str):
            found.append(node)

    for file_name in ALL_FILES:
        for _path, node in _walk(specs.load_raw(file_name)):
            for key in ("examples", "example"):
                if key in node:
                    collect(node[key])
    return found


def test_examples_use_only_artificial_valid_identifiers() -> None:
    """Identity codes have individual numbers 900-999 and a right check character; Business IDs check."""
    strings = _example_strings()
    hetus = [s for s in strings if HETU_RE.match(s)]
    business_ids = [s for s in strings if BUSINESS_ID_RE.match(s)]
    assert hetus and business_ids
    for code in hetus:
        digits, individual, check = HETU_RE.match(code).groups()  # type: ignore[union-attr]
        assert 900 <= int(individual) <= 999, code
        assert HETU_ALPHABET[int(digits + individual) % 31] == check, code
    for code in business_ids:
        digits, check = BUSINESS_ID_RE.match(code).groups()  # type: ignore[union-attr]
        remainder = sum(int(d) * w for d, w in zip(digits, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
        assert remainder != 1, code
        assert int(check) == (0 if remainder == 0 else 11 - remainder), code


def test_example_contract_dates_are_in_the_past() -> None:
    today = datetime.date.today().isoformat()
    dates = []
    for file_name in ALL_FILES:
        for _path, node in _walk(specs.load_raw(file_name)):
            for example in node.get("examples", {}).values() if isinstance(node.get("examples"), dict) else []:
                for _p, inner in _walk(example):
                    if isinstance(inner.get("contractDate"), str):
                        dates.append(inner["contractDate"])
    assert dates and all(d < today for d in dates), dates


# ----- message shapes of real clients (docs/register-facts.md#real-clients-on-the-wire) -----------------------------------------------

OWNER = {"idCodeType": "BusinessId", "idCode": "7654321-2"}


def _ntech_add_loans() -> dict[str, Any]:
    """An AddLoans body as the public C# client builds it (camelCase here; no reportType, zeros sent)."""
    return {
        "targetEnvironment": "Test",
        "owner": OWNER,
        "loans": [{
            "reportReference": "R-1",
            "loanNumber": {"type": "Other", "number": "L-2026-900001"},
            "isPeerToPeerLoanBroker": False,
            "lenderMarketingName": "Esimerkkilaina",
            "contractDate": "2026-10-01",
            "currencyCode": "EUR",
            "oneTimeServiceFees": 0.0,
            "loanType": "LumpSumLoan",
            "isTransferredFromAnotherLender": False,
            "borrowersCount": 1,
            "borrowers": [{"idCodeType": "PersonalIdentityCode", "idCode": "131052-9030"}],
            "consumerCredit": {"loanConsumerProtectionAct": "ConsumerCredit",
                               "isGoodsOrServicesRelatedCredit": False},
            "lumpSumLoan": {"amountIssued": 8000.00, "amountPaid": 0, "balance": 8150.00,
                            "amortizationFrequency": 1, "purposeOfUse": "OtherConsumerCredit",
                            "repaymentMethod": "Annuities"},
            "interest": {"totalInterestRatePct": 9.9, "marginPct": 0.0, "interestType": "FixedInterest",
                         "interestDeterminationPeriod": 0},
            "isLoanWithCollateral": False,
        }],
    }


def _errors(op_id: str, body: dict[str, Any]) -> list[str]:
    return specs.validate(specs.schema_for_request(op_id), body)


def test_accepts_real_client_add_loans() -> None:
    assert _errors("AddLoans", _ntech_add_loans()) == []


def test_accepts_balance_only_repayment() -> None:
    """RPT-023: the three amounts may be left out."""
    body = {"targetEnvironment": "Test", "owner": OWNER, "repayments": [{
        "reportReference": "R-2", "loanType": "LumpSumLoan", "reportType": "NewReport",
        "loanNumber": {"type": "Other", "number": "L-2026-900001"},
        "reportCreationTimeUtc": "2026-11-02T08:01:02.1234567Z",
        "lumpSumLoanRepayment": {"balance": 7900.00, "paymentDate": "2026-11-01"}}]}
    assert _errors("Repayments", body) == []


def test_accepts_delay_clear() -> None:
    """RPT-030: isDelay false without amounts."""
    body = {"targetEnvironment": "Test", "owner": OWNER, "delayedRepayments": [{
        "reportReference": "R-3", "loanNumber": {"type": "Other", "number": "L-2026-900001"},
        "reportType": "NewReport", "isDelay": False, "isForeclosed": False}]}
    assert _errors("DelayedRepayments", body) == []


def test_accepts_termination() -> None:
    body = {"targetEnvironment": "Test", "owner": OWNER, "loanTerminations": [{
        "reportReference": "R-4", "reportType": "NewReport",
        "loanNumber": {"type": "Other", "number": "L-2026-900001"},
        "termination": {"isTerminated": True, "endDate": "2026-11-15", "isTransferredToAnotherLender": False}}]}
    assert _errors("TerminateLoans", body) == []


def test_accepts_batch_status_query_and_extract_request() -> None:
    status = {"targetEnvironment": "Test", "owner": OWNER, "batchReference": "Batch_NewLoans_20261101120000_1a2b"}
    assert _errors("GetBatchStatus", status) == []
    extract = {"targetEnvironment": "Test", "owner": {**OWNER, "countryCode": "FI"},
               "request": {"idCodeType": "PersonalIdentityCode", "idCode": "010516B903X",
                           "creditRegisterExtractPurpose": ["NewConsumerCredit", "NewLoan"]}}
    assert _errors("GetCreditRegisterExtract", extract) == []


@pytest.mark.parametrize("code", ["010594Y9032", "020594X903P", "030594W903B", "010516B903X", "131052-9030",
                                  "010170+990E", "080902A961X", "030303C955X"])
def test_accepts_every_century_sign(code: str) -> None:
    """IDN-002 at schema level: the layout pattern admits every century sign."""
    body = _ntech_add_loans()
    body["loans"][0]["borrowers"][0]["idCode"] = code
    assert _errors("AddLoans", body) == []


def _mutated(change: str) -> dict[str, Any]:
    body = _ntech_add_loans()
    loan = body["loans"][0]
    if change == "date-format":  # ENV-013
        loan["contractDate"] = "01.10.2026"
    elif change == "date-compact":
        loan["contractDate"] = "20261001"
    elif change == "lowercase-enum":  # ENV-012
        loan["loanType"] = "lumpSumLoan"
    elif change == "lowercase-environment":
        body["targetEnvironment"] = "test"
    elif change == "unknown-member":  # ENV-010
        loan["favouriteColour"] = "blue"
    elif change == "pascal-case-member":  # canonical names are camelCase; the register maps them (ENV-011)
        body["TargetEnvironment"] = body.pop("targetEnvironment")
    elif change == "negative-amount":  # RPT-037
        loan["lumpSumLoan"]["balance"] = -1
    elif change == "string-amount":
        loan["lumpSumLoan"]["balance"] = "8000.00"
    elif change == "bad-currency":
        loan["currencyCode"] = "euro"
    elif change == "empty-batch":  # RPT-040
        body["loans"] = []
    elif change == "hetu-layout":  # IDN-001
        loan["borrowers"][0]["idCode"] = "131052*9030"
    elif change == "business-id-layout":  # IDN-003
        body["owner"] = {"idCodeType": "BusinessId", "idCode": "76543212"}
    elif change == "missing-owner":  # ENV-004
        del body["owner"]
    elif change == "add-loans-correction":
        loan["reportType"] = "ErrorCorrection"
    else:
        raise AssertionError(change)
    return body


@pytest.mark.parametrize("change", ["date-format", "date-compact", "lowercase-enum", "lowercase-environment",
                                    "unknown-member", "pascal-case-member", "negative-amount", "string-amount",
                                    "bad-currency", "empty-batch", "hetu-layout", "business-id-layout",
                                    "missing-owner", "add-loans-correction"])
def test_rejects_malformed_add_loans(change: str) -> None:
    assert _errors("AddLoans", _mutated(change)) != []


def test_rejects_timestamp_without_zone_and_bad_purpose() -> None:
    body = {"targetEnvironment": "Test", "owner": OWNER, "repayments": [{
        "reportReference": "R-2", "loanType": "LumpSumLoan", "reportType": "NewReport",
        "loanNumber": {"type": "Other", "number": "L-1"}, "reportCreationTimeUtc": "2026-11-02T08:01:02",
        "lumpSumLoanRepayment": {"balance": 7900.00, "paymentDate": "2026-11-01"}}]}
    assert _errors("Repayments", body) != []
    extract = {"targetEnvironment": "Test", "owner": OWNER,
               "request": {"idCodeType": "PersonalIdentityCode", "idCode": "010516B903X",
                           "creditRegisterExtractPurpose": []}}
    assert _errors("GetCreditRegisterExtract", extract) != []  # EXT-001
    extract["request"]["creditRegisterExtractPurpose"] = ["newConsumerCredit"]
    assert _errors("GetCreditRegisterExtract", extract) != []


# ----- provenance lint -----------------------------------------------------------------------------------

@pytest.mark.parametrize("file_name", ALL_FILES)
def test_every_schema_object_and_enum_has_provenance(file_name: str) -> None:
    """Every schema with properties, every enum and every operation carries x-provenance; sources are URLs."""
    missing = []
    for path, node in _walk(specs.load_raw(file_name)):
        parent_key = path.rsplit("/", 1)[-1]
        if parent_key in ("if", "then", "else"):
            continue  # conditions inside a tagged schema, not objects of their own
        is_operation = "operationId" in node and "/links/" not in path
        if ("properties" in node or "enum" in node or is_operation) and "x-provenance" not in node:
            missing.append(path)
        if "x-provenance" in node:
            assert node["x-provenance"] in PROVENANCE, path
        if "x-source" in node:
            assert re.match(r"^https://\S+$", node["x-source"]), path
    assert missing == []


def test_modelled_families_are_modelled_throughout() -> None:
    """authorities.yaml and voluntary-ban.yaml are not public: every tagged part says modelled."""
    for file_name in ("authorities.yaml", "voluntary-ban.yaml"):
        raw = specs.load_raw(file_name)
        tags = {node["x-provenance"] for _p, node in _walk(raw) if "x-provenance" in node}
        assert tags == {"modelled"}, file_name


def test_error_codes_in_specs_are_in_the_interface_table() -> None:
    codes = _interface_codes()
    for file_name in ALL_FILES:
        raw = specs.load_raw(file_name)
        for path, node in _walk(raw):
            if "x-error-code" in node:
                assert node["x-error-code"] in codes, path
        text = yaml.safe_dump(raw)
        for code in re.findall(r"errorCode: ([A-Z]\d{2})", text):
            assert code in codes, (file_name, code)


# ----- requirement register ------------------------------------------------------------------------------

def test_requirements_are_well_formed() -> None:
    requirements = specs.load_requirements()
    index = specs.operation_index()
    codes = _interface_codes()
    ids = [r["id"] for r in requirements]
    assert len(ids) == len(set(ids)), "duplicate requirement IDs"
    for req in requirements:
        rid = req["id"]
        assert re.match(r"^[A-Z]{3}-\d{3}$", rid), rid
        assert req.get("side", "register") in {"register", "client"}, rid
        assert (req.get("side") == "client") == rid.startswith("CLI-"), f"{rid}: side: client is for CLI-... only"
        assert set(req) - {"not_tested", "applies_when", "side"} == {"id", "title", "level", "actors", "api", "operations",
                                               "error_code", "source", "provenance", "description"}, rid
        assert req["level"] in {"must", "should", "may"}, rid
        assert req["actors"] and set(req["actors"]) <= ACTORS, rid
        assert req["api"] in APIS, rid
        assert req["operations"] and all(op in index for op in req["operations"]), rid
        families = {index[op][0] for op in req["operations"]}
        assert req["api"] == (families.pop() if len(families) == 1 else "all"), rid
        assert req["error_code"] is None or req["error_code"] in codes, rid
        assert req["provenance"] in PROVENANCE, rid
        if req["provenance"] == "modelled":
            assert req["source"] is None, rid
        if req["provenance"] == "official":
            assert isinstance(req["source"], str), rid
        if req["source"] is not None:
            assert re.match(r"^https://\S+$", req["source"]), rid
        assert isinstance(req["title"], str) and req["title"], rid
        assert isinstance(req["description"], str) and len(req["description"]) > 20, rid


def test_applies_when_names_claimable_capabilities_and_only_where_the_default_is_wrong() -> None:
    """applies_when lists target capabilities (target.KNOWN_CAPABILITIES); it is written only where it differs
    from the default the harness derives from `api` (kits.default_applies_when)."""
    from pcr_conformance.kits import default_applies_when, load_requirements
    from pcr_conformance.target import KNOWN_CAPABILITIES

    explicit = {}
    for req in specs.load_requirements():
        if "applies_when" not in req:
            continue
        caps = req["applies_when"]
        assert isinstance(caps, list) and caps, req["id"]
        assert all(c in KNOWN_CAPABILITIES for c in caps), (req["id"], caps)
        assert len(set(caps)) == len(caps), req["id"]
        assert tuple(caps) != default_applies_when(req["api"]), f"{req['id']}: applies_when repeats the default"
        explicit[req["id"]] = caps
    assert explicit == {"RPT-007": ["transfer"], "BAT-011": ["restart"]}
    reqs = load_requirements()
    assert reqs["RPT-007"].applies_when == ("transfer",) and not reqs["RPT-007"].applies(["reporting"])
    assert reqs["RPT-004"].applies_when == ("reporting",) and reqs["RPT-004"].applies(["reporting"])
    assert reqs["ENV-001"].applies_when == () and reqs["ENV-001"].applies([])
    assert reqs["EXT-001"].applies(["extract"]) and not reqs["EXT-001"].applies(["reporting"])


def test_only_bat_011_is_not_tested() -> None:
    flagged = [r["id"] for r in specs.load_requirements() if "not_tested" in r]
    assert flagged == ["BAT-011"]


def test_every_operation_is_named_by_a_requirement() -> None:
    named = {op for req in specs.load_requirements() for op in req["operations"]}
    assert set(specs.operation_index()) - named == set()


def test_requirement_families_expand_fully() -> None:
    """'all' requirements list every operation; RPT-001 lists exactly the five submissions."""
    requirements = {r["id"]: r for r in specs.load_requirements()}
    assert sorted(requirements["ENV-001"]["operations"]) == sorted(specs.operation_index())
    assert requirements["RPT-001"]["operations"] == SUBMIT_OPERATIONS
    assert copy.deepcopy(requirements["BAT-011"]["operations"]) == SUBMIT_OPERATIONS
