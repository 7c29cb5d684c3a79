"""The register's error codes are data: specs/errors.yaml.

Statically, every error code the register's source names exists in errors.yaml, and every `fail(status,
code)` answers with errors.yaml's http_status. Through a running register (started on a copy of the specs
whose descriptions are marked), every code that has an http_status is answered with that status, and the
errorDescription of an item without a text of its own is the one of the errors.yaml it was started with.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from register_fixtures import (
    REPO,
    Api,
    Running,
    codes,
    lump_sum_loan,
    owner_of,
    people,
    start_register,
    unique,
)
from register_hostile import Case, Sender, request

from pcr_register.validation import SpecError, load_error_codes

SOURCE = REPO / "src" / "pcr_register"
SPECS = REPO / "specs"
CODE = re.compile(r"^[A-Z]\d\d$")  # D01, E20, H50, P01 ...
MARK = " [test copy]"
WHO = people()


def errors_yaml(folder: Path = SPECS) -> dict[str, dict[str, Any]]:
    return {e["code"]: e for e in yaml.safe_load((folder / "errors.yaml").read_text(encoding="utf-8"))["errors"]}


def _calls(name: str) -> Iterator[tuple[Path, ast.Call]]:
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
                yield path, node


def _literal(node: ast.expr) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _literal_codes(node: ast.expr) -> bool:
    """The code argument is a string literal, or a conditional choice between such literals."""
    if isinstance(node, ast.IfExp):
        return _literal_codes(node.body) and _literal_codes(node.orelse)
    return isinstance(_literal(node), str)


# -- the source against errors.yaml -------------------------------------------------------------------

def test_every_code_the_register_names_is_in_errors_yaml() -> None:
    """Every string literal of the form D01/E20/H50/P01 in the register's source is a code of errors.yaml."""
    known = errors_yaml()
    used: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
                used.setdefault(node.value, set()).add(path.name)
    assert {"D01", "D10", "E20", "H50"} <= set(used), "the scan finds the register's codes"
    unknown = {code: sorted(files) for code, files in used.items() if code not in known}
    assert not unknown, f"codes used by the register but missing from specs/errors.yaml: {unknown}"


def test_every_item_and_fail_names_its_code_as_a_literal() -> None:
    """item("D..") and fail(status, "D..") name their code literally (so the scan above sees it), except
    in errors.py, which defines them, and validation.py's schema-error mapping, whose codes are the literals
    of _code_for and _items."""
    dynamic = []
    for name, position in (("item", 0), ("fail", 1)):
        for path, call in _calls(name):
            if len(call.args) > position and not _literal_codes(call.args[position]):
                dynamic.append(f"{path.name}:{call.lineno}")
    assert dynamic and all(where.split(":")[0] in ("errors.py", "validation.py") for where in dynamic), dynamic


def test_every_fail_answers_with_the_http_status_of_errors_yaml() -> None:
    known = errors_yaml()
    seen, wrong = 0, []
    for path, call in _calls("fail"):
        status, code = (_literal(a) for a in call.args[:2])
        if not isinstance(status, int) or not isinstance(code, str):
            continue
        seen += 1
        expected = known[code]["http_status"]
        if expected is None or expected != status:
            wrong.append(f"{path.name}:{call.lineno} fail({status}, {code!r}), errors.yaml says {expected}")
    assert seen > 20
    assert not wrong, "\n".join(wrong)


def test_the_loader_reads_every_entry() -> None:
    codes_ = load_error_codes(SPECS / "errors.yaml")
    assert set(codes_) == set(errors_yaml())
    assert codes_["D61"].http_status == 409 and codes_["D10"].http_status is None and codes_["E21"].notice


@pytest.mark.parametrize(("text", "problem"), [
    ("errors:\n- {code: D01, http_status: 400}\n", "D01 has no description"),
    ("errors:\n- {code: D01, description: x}\n- {code: D01, description: y}\n", "D01 is listed twice"),
    ("errors:\n- {code: D01, http_status: 200, description: x}\n", "D01 has http_status 200"),
    ("errors:\n- {http_status: 400, description: x}\n", "errors[0] has no code"),
    ("codes: []\n", "expected a list under 'errors'"),
])
def test_the_loader_refuses_an_unusable_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "errors.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=re.escape(problem)):
        load_error_codes(path)


# -- through a running register ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def marked_specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of specs/ whose every description ends with MARK."""
    folder = tmp_path_factory.mktemp("specs") / "specs"
    shutil.copytree(SPECS, folder)
    doc = yaml.safe_load((folder / "errors.yaml").read_text(encoding="utf-8"))
    for entry in doc["errors"]:
        entry["description"] += MARK
    (folder / "errors.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reg(data_dir: Path, marked_specs: Path) -> Iterator[Running]:
    # server_error_on_bad_json: unparsable JSON becomes the one reachable 500 (H50); nesting is still H00
    running = start_register(data_dir, faults="server_error_on_bad_json",
                             extra_env={"PCR_SPECS_DIR": str(marked_specs), "PCR_REGISTER_ORDER_DELAY_S": "60",
                                        "PCR_REGISTER_READ_DEADLINE_S": "1"})
    yield running
    running.stop()


def _json(client: httpx.Client, operation: str, content: bytes) -> httpx.Response:
    return client.post(f"/{operation}", content=content, headers={"Content-Type": "application/json"})


def _raw(reg: Running, data: bytes) -> httpx.Response:
    """Bytes httpx would not send (framing errors, a body promised and not sent), as an httpx.Response."""
    answer = Sender(reg.url, reg.data, 10).send(Case("raw", "GetLoan", data))
    assert answer.status is not None, answer.error
    return httpx.Response(answer.status, content=answer.body, headers={"content-type": answer.content_type})


def _answers(reg: Running) -> dict[str, httpx.Response]:
    """One error answer per code that has an http_status."""
    a, noperm, authority = Api(reg, "lender-a"), Api(reg, "lender-noperm"), Api(reg, "authority-full")
    foreign = Api(reg, "lender-foreign")
    rep = a.client("reporting")
    number = {"type": "Other", "number": unique("PCR")}
    loan = lump_sum_loan(unique("PCR"), WHO.active[0], unique("R"))
    reference = a.submit("AddLoans", "loans", [loan])
    subjects = [{"idCodeType": "PersonalIdentityCode", "idCode": WHO.active[0]}]
    order = authority.post("OrderData", authority.envelope(order={
        "orderType": "PersonLoans", "legalBasis": "Test supervision", "subjects": subjects}), role="authority")
    assert order.status_code == 202, order.text
    order_ref = {"orderReference": order.json()["orderReference"]}
    id_code = a.owner["idCode"]
    answers = {
        "H04": rep.post("/NoSuchOperation", json={}),
        "H05": rep.get("/GetLoan"),
        "H15": rep.post("/GetLoan", content=b"{}", headers={"Content-Type": "text/plain"}),
        "H13": _json(rep, "GetLoan", b" " * (5 * 1024 * 1024 + 1)),
        "H00": _json(rep, "GetLoan", b"[" * 40 + b"]" * 40),
        "H01": _json(rep, "GetLoan", b'{"targetEnvironment": "Test\\ud800"}'),
        "H08": _raw(reg, request("POST", "/GetLoan", b"", length="10")),
        "H40": _raw(reg, b"POST /GetLoan HTTP/1.1\r\nHost: r\r\nContent-Length: x\r\n\r\n"),
        "H50": _json(rep, "GetLoan", b"{not json"),
        "D01": a.post("GetLoan", a.envelope()),
        "D07": a.post("GetLoan", {**a.envelope(loanNumber=number), "targetEnvironment": "Production"}),
        "D06": a.post("AddLoans", a.envelope(loans=[loan])),
        "D43": a.post("GetLoan", a.envelope(loanNumber=number), role="using-data"),
        "D42": a.post("GetLoan", {"targetEnvironment": "Test", "owner": owner_of("lender-b"), "loanNumber": number}),
        "D41": a.post("GetLoan", {"targetEnvironment": "Test", "loanNumber": number, "owner": {
            "idCodeType": "ForeignBusinessId", "idCode": id_code, "countryCode": "FI"}}),
        "D40": foreign.post("GetLoan", {"targetEnvironment": "Test", "loanNumber": number, "owner": {
            k: v for k, v in foreign.owner.items() if k != "countryCode"}}),
        "D05": a.post("GetLoan", {"targetEnvironment": "Test", "loanNumber": number, "owner": {
            "idCodeType": "BusinessId", "idCode": id_code[:-1] + str((int(id_code[-1]) + 1) % 10)}}),
        "D04": a.post("GetCreditRegisterExtract", a.envelope(request={
            "idCodeType": "PersonalIdentityCode", "idCode": WHO.active[0][:-1] + "#",
            "creditRegisterExtractPurpose": ["NewConsumerCredit"]}), role="using-data"),
        "P01": noperm.extract(WHO.active[0]),
        "D11": a.get_loan(number),
        "D60": a.post("GetBatchStatus", a.envelope(batchReference=unique("B"))),
        "D61": a.post("AddLoans", a.envelope(loans=[{**loan, "reportReference": unique("R")}]),
                      headers={"BatchReference": reference}),
        "D62": a.post("AddLoans", a.envelope(loans=[{}] * 10_001), headers={"BatchReference": unique("B")}),
        "D70": authority.post("OrderData", authority.envelope(order={"orderType": "PersonLoans", "legalBasis": "",
                                                                      "subjects": subjects}), role="authority"),
        "D71": authority.post("GetOrderStatus", authority.envelope(orderReference=str(uuid.uuid4())), role="authority"),
        "D72": authority.post("GetDistribution", authority.envelope(**order_ref), role="authority"),
    }
    for api in (a, noperm, authority, foreign):
        api.close()
    return answers


@pytest.fixture(scope="module")
def answers(reg: Running) -> dict[str, httpx.Response]:
    return _answers(reg)


def test_every_code_with_an_http_status_is_answered_with_it(answers: dict[str, httpx.Response]) -> None:
    known = errors_yaml()
    # answered_by: proxy codes (429, 502, 503 of pcr-conformance proxy) are never the register's: test_client_proxy.py
    with_status = {code for code, e in known.items() if e["http_status"] is not None and e.get("answered_by") != "proxy"}
    assert with_status <= set(answers), f"no trigger in _answers for {sorted(with_status - set(answers))}"
    got = {code: (resp.status_code, codes(resp)[:1]) for code, resp in answers.items()}
    expected = {code: (known[code]["http_status"], [code]) for code in answers}
    assert got == expected


def test_descriptions_come_from_the_errors_yaml_the_register_was_started_with(
        answers: dict[str, httpx.Response], marked_specs: Path) -> None:
    """An item without a text of its own carries errors.yaml's description; the schema message of D01 and the
    texts of their own of the role (D43) and nesting (H00) answers are not from errors.yaml."""
    known = errors_yaml(marked_specs)
    own_text = {"D01", "D43", "H00"}
    got = {code: resp.json()["errorResponses"][0]["errorDescription"] for code, resp in answers.items()}
    assert {c: d for c, d in got.items() if c not in own_text} == {
        c: known[c]["description"] for c in got if c not in own_text}
    assert not [c for c in own_text if got[c].endswith(MARK)]


def test_report_results_and_notices_carry_the_descriptions_of_errors_yaml(reg: Running, marked_specs: Path) -> None:
    known = errors_yaml(marked_specs)
    a = Api(reg, "lender-a")
    loan = lump_sum_loan(unique("PCR"), WHO.active[1], unique("R"))
    a.add(loan)
    again = a.run("AddLoans", "loans", [{**loan, "reportReference": unique("R")}])
    assert again["reportResults"][0]["errorResponses"] == [
        {"fieldName": "/loans/0/loanNumber", "errorCode": "D10", "errorDescription": known["D10"]["description"]}]
    extract = a.extract(WHO.not_in_use).json()["creditRegisterExtract"]
    assert [(n["errorCode"], n["errorDescription"]) for n in extract["notices"]] == [
        ("E21", known["E21"]["description"])]
    a.close()


def test_the_register_does_not_start_without_errors_yaml(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    shutil.copytree(SPECS, folder)
    (folder / "errors.yaml").unlink()
    proc = subprocess.run([sys.executable, "-m", "pcr_register.cli", "serve", "--data", str(data_dir), "--port", "0",
                           "--db", str(tmp_path / "db.sqlite3")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PCR_SPECS_DIR": str(folder)}, cwd=REPO)
    assert proc.returncode == 2
    assert "cannot start" in proc.stderr and "errors.yaml" in proc.stderr

