"""`pcr-conformance validate`: the offline checks of a stakeholder's message files (fast, no register).

Every body here uses artificial identity codes (individual number 900-999) and the fixed date 2026-11-21
(`--today`), so the date rules give the same answer on every day.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pcr_conformance import validate
from pcr_conformance.cli import main

TODAY = "2026-11-21"
OWNER = {"idCodeType": "BusinessId", "idCode": "7654321-2"}


def lump_sum_loan(**overrides: Any) -> dict[str, Any]:
    loan = {
        "reportReference": "R-1",
        "loanNumber": {"type": "Other", "number": "PCR-TEST-0001"},
        "isPeerToPeerLoanBroker": False,
        "lenderMarketingName": "Testilaina",
        "contractDate": "2026-06-01",
        "currencyCode": "EUR",
        "oneTimeServiceFees": 0.0,
        "loanType": "LumpSumLoan",
        "isTransferredFromAnotherLender": False,
        "borrowersCount": 1,
        "borrowers": [{"idCodeType": "PersonalIdentityCode", "idCode": "010594Y9032"}],
        "consumerCredit": {"loanConsumerProtectionAct": "ConsumerCredit", "isGoodsOrServicesRelatedCredit": False},
        "interest": {"totalInterestRatePct": 6.45, "marginPct": 3.95, "interestType": "Euribor",
                     "interestDeterminationPeriod": 12},
        "isLoanWithCollateral": False,
        "lumpSumLoan": {"amountIssued": 15000.0, "amountPaid": 15000.0, "balance": 15000.0,
                        "amortizationFrequency": 12, "purposeOfUse": "LoanForVehicleOrCraft",
                        "repaymentMethod": "Annuities"},
    }
    loan.update(overrides)
    return loan


def add_loans(*loans: dict[str, Any]) -> dict[str, Any]:
    return {"targetEnvironment": "Test", "owner": dict(OWNER), "loans": list(loans) or [lump_sum_loan()]}


def delayed(**overrides: Any) -> dict[str, Any]:
    report = {"reportReference": "R-2", "reportType": "NewReport",
              "loanNumber": {"type": "Other", "number": "PCR-TEST-0001"}, "isDelay": True,
              "delayedAmounts": [{"delayedInstalment": 320.0, "originalDueDate": "2026-08-31"}],
              "isForeclosed": False}
    report.update(overrides)
    return {"targetEnvironment": "Test", "owner": dict(OWNER), "delayedRepayments": [report]}


def termination(end_date: str) -> dict[str, Any]:
    return {"targetEnvironment": "Test", "owner": dict(OWNER), "loanTerminations": [
        {"reportReference": "R-3", "reportType": "NewReport", "loanNumber": {"type": "Other", "number": "PCR-TEST-0001"},
         "termination": {"isTerminated": True, "endDate": end_date, "isTransferredToAnotherLender": False}}]}


def repayments(payment_date: str) -> dict[str, Any]:
    return {"targetEnvironment": "Test", "owner": dict(OWNER), "repayments": [
        {"reportReference": "R-4", "reportType": "NewReport", "loanNumber": {"type": "Other", "number": "PCR-TEST-0001"},
         "loanType": "LumpSumLoan", "reportCreationTimeUtc": "2026-11-20T08:15:00Z",
         "lumpSumLoanRepayment": {"amortizationPaid": 235.5, "interestPaid": 80.63, "otherExpenses": 5.0,
                                  "paymentDate": payment_date, "balance": 14764.5}}]}


def write(tmp_path: Path, name: str, body: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body) if not isinstance(body, str) else body, encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str, contract: str = "reference") -> tuple[int, str, str]:
    """The rules as the reference reading judges them (every finding an error); tests of the public default
    pass contract="public" (test_cli_validate_traffic.py)."""
    code = main(["validate", "--today", TODAY, "--contract", contract, *args])
    out, err = capsys.readouterr()
    return code, out, err


def pascal(value: Any) -> Any:
    """Member names in PascalCase, as the real C# client sends them (ENV-011); values unchanged."""
    if isinstance(value, dict):
        return {k[0].upper() + k[1:]: pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return value


# ---- valid messages -------------------------------------------------------------------------------------


def test_valid_add_loans_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, write(tmp_path, "add.json", add_loans()))
    assert code == 0, out
    assert "valid AddLoans message" in out


def test_pascal_case_body_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, write(tmp_path, "pascal.json", pascal(add_loans())))
    assert code == 0, out
    assert "valid AddLoans message" in out


def test_every_spec_example_is_valid(tmp_path: Path) -> None:
    from pcr_conformance import specs

    files = []
    for op in specs.operation_index():
        for name, body in specs.request_examples(op).items():
            files.append((op, write(tmp_path, f"{op}-{name}.json", body)))
    assert files
    for op, path in files:
        [result] = validate.validate_files([path], operation=op, today=validate.dt.date(2026, 11, 21))
        assert result.valid, (op, validate.render_text([result]))


# ---- one bad message per rule -------------------------------------------------------------------------------


def _loan_case(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = add_loans()
    change(body["loans"][0])
    return body


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(loan: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = loan
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    return change


def _guarantee_receivable(purpose: str) -> Callable[[dict[str, Any]], None]:
    def change(loan: dict[str, Any]) -> None:
        loan["loanType"] = "GuaranteeReceivable"
        loan["lumpSumLoan"]["purposeOfUse"] = purpose
    return change


def _leasing_with_lump_sum(loan: dict[str, Any]) -> None:
    loan["loanType"] = "Leasing"


def _two_borrowers_count_one(loan: dict[str, Any]) -> None:
    loan["borrowers"].append({"idCodeType": "PersonalIdentityCode", "idCode": "020594X903P"})


LOAN_CASES = {
    "hetu check character": (_set("borrowers.0.idCode", "010594Y9033"), "IDN-001", "D04",
                             "/loans/0/borrowers/0/idCode"),
    "amountPaid above amountIssued": (_set("lumpSumLoan.amountPaid", 20000.0), "RPT-004", "D02",
                                      "/loans/0/lumpSumLoan/amountPaid"),
    "guarantee receivable wrong purpose": (_guarantee_receivable("StudentLoan"), "RPT-010", "D21",
                                           "/loans/0/lumpSumLoan/purposeOfUse"),
    "guarantee purpose on lump-sum loan": (_set("lumpSumLoan.purposeOfUse", "GuaranteeReceivableForStudentLoan"),
                                           "RPT-010", "D21", "/loans/0/lumpSumLoan/purposeOfUse"),
    "type object not matching loanType": (_leasing_with_lump_sum, "RPT-011", "D22", "/loans/0/leasingContract"),
    "borrowersCount too small": (_two_borrowers_count_one, "RPT-012", "D23", "/loans/0/borrowersCount"),
    "contract date in the future": (_set("contractDate", "2026-12-24"), "RPT-035", "D36", "/loans/0/contractDate"),
    "deferment ends before it starts": (
        _set("defermentPeriods", [{"startDate": "2026-09-01", "endDate": "2026-08-01"}]), "RPT-036", "D37",
        "/loans/0/defermentPeriods/0/endDate"),
}


@pytest.mark.parametrize("case", sorted(LOAN_CASES))
def test_bad_loan_names_requirement_and_code(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, requirement, code, where = LOAN_CASES[case]
    path = write(tmp_path, "bad.json", _loan_case(change))
    exit_code, out, _ = run(capsys, path)
    assert exit_code == 1, out
    line = next((ln for ln in out.splitlines() if f"{where}  {requirement} {code}" in ln), None)
    assert line is not None, out
    assert line.strip().startswith(path)  # file, pointer, requirement, code, message on one line
    fix_line = out.splitlines()[out.splitlines().index(line) + 1]
    assert fix_line.strip().startswith("fix: ")


def test_bad_business_id_d05(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = add_loans()
    body["owner"]["idCode"] = "7654321-3"
    code, out, _ = run(capsys, write(tmp_path, "bid.json", body))
    assert code == 1
    assert "/owner/idCode  IDN-003 D05" in out


def test_foreign_owner_without_country_code_d40(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = add_loans()
    body["owner"] = {"idCodeType": "ForeignBusinessId", "idCode": "5560000000"}
    code, out, _ = run(capsys, write(tmp_path, "foreign.json", body))
    assert code == 1
    assert "/owner/countryCode  IDN-004 D40" in out


def test_duplicate_report_reference_d50(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    second = lump_sum_loan(loanNumber={"type": "Other", "number": "PCR-TEST-0002"})
    code, out, _ = run(capsys, write(tmp_path, "dup.json", add_loans(lump_sum_loan(), second)))
    assert code == 1
    assert "/loans/1/reportReference  RPT-034 D50" in out
    # RPT-034: the register rejects every report carrying the repeated reference, the first one too
    assert "/loans/0/reportReference  RPT-034 D50" in out


def test_guarantee_receivable_is_a_warning_unless_kela(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "kela.json", _loan_case(_guarantee_receivable("GuaranteeReceivableForStudentLoan")))
    code, out, _ = run(capsys, path)
    assert code == 0, out  # a warning does not fail the file
    assert "/loans/0/loanType  warning RPT-009 D20" in out
    code, out, _ = run(capsys, path, "--owner-is-kela")
    assert code == 0
    assert "RPT-009" not in out


DELAY_CASES = {
    "isDelay without amounts": ({"delayedAmounts": []}, "RPT-029", "D32", "/delayedRepayments/0/delayedAmounts"),
    "amounts without isDelay": ({"isDelay": False}, "RPT-029", "D32", "/delayedRepayments/0/delayedAmounts"),
    "fewer than 60 days": ({"delayedAmounts": [{"delayedInstalment": 10.0, "originalDueDate": "2026-10-01"}]},
                           "RPT-028", "D31", "/delayedRepayments/0/delayedAmounts/0/originalDueDate"),
    "foreclosed without date": ({"isForeclosed": True}, "RPT-031", "D33", "/delayedRepayments/0/foreclosureDate"),
}


@pytest.mark.parametrize("case", sorted(DELAY_CASES))
def test_bad_delay_names_requirement_and_code(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides, requirement, code, where = DELAY_CASES[case]
    exit_code, out, _ = run(capsys, write(tmp_path, "delay.json", delayed(**overrides)))
    assert exit_code == 1, out
    assert f"{where}  {requirement} {code}" in out


def test_valid_delay_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, write(tmp_path, "delay.json", delayed()))
    assert code == 0, out


@pytest.mark.parametrize(("body", "requirement", "code", "where"), [
    (delayed(delayedAmounts=[{"delayedInstalment": 10.0, "originalDueDate": "2026-05-01"}]), "RPT-027", "D30",
     "/delayedRepayments/0/delayedAmounts/0/originalDueDate"),
    (termination("2026-05-31"), "RPT-033", "D34", "/loanTerminations/0/termination/endDate"),
    (repayments("2026-05-31"), "RPT-025", "D35", "/repayments/0/lumpSumLoanRepayment/paymentDate"),
], ids=["D30", "D34", "D35"])
def test_date_order_against_the_loans_file_beside_it(body: dict[str, Any], requirement: str, code: str, where: str,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loans = write(tmp_path, "add.json", add_loans())  # contractDate 2026-06-01
    other = write(tmp_path, "other.json", body)
    exit_code, out, _ = run(capsys, other)
    assert exit_code == 0, out  # alone, the contract date is unknown: nothing to say
    exit_code, out, _ = run(capsys, loans, other)
    assert exit_code == 1, out
    assert f"{other}: {where}  {requirement} {code}" in out


# ---- schema problems -------------------------------------------------------------------------------------


def test_schema_problems_name_member_and_requirement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = add_loans()
    body["loans"][0]["unknownThing"] = 1
    body["loans"][0]["loanType"] = "lumpsumloan"
    body["loans"][0]["contractDate"] = "01.06.2026"
    code, out, _ = run(capsys, write(tmp_path, "schema.json", body))
    assert code == 1
    assert "/loans/0/unknownThing  ENV-010 D01" in out
    assert "/loans/0/loanType  ENV-012 D01" in out
    assert "/loans/0/contractDate  ENV-013 D01" in out


def test_pascal_case_pointer_keeps_the_files_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = pascal(add_loans())
    body["Loans"][0]["LumpSumLoan"]["AmountPaid"] = 20000.0
    code, out, _ = run(capsys, write(tmp_path, "pascal.json", body))
    assert code == 1
    assert "/Loans/0/LumpSumLoan/AmountPaid  RPT-004 D02" in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.json", _loan_case(_set("lumpSumLoan.amountPaid", 20000.0)))
    code, out, _ = run(capsys, path, "--json")
    assert code == 1
    [result] = json.loads(out)
    assert result["file"] == path and result["operation"] == "AddLoans" and result["valid"] is False
    assert {"pointer": "/loans/0/lumpSumLoan/amountPaid", "requirement": "RPT-004", "code": "D02"}.items() <= \
        result["problems"][0].items()
    assert result["problems"][0]["fix"]
    assert result["problems"][0]["provenance"] == "third-party"  # D02 in specs/errors.yaml


def test_json_output_shows_each_codes_provenance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pcr_conformance import specs

    body = add_loans()
    body["loans"][0]["unknownThing"] = 1
    body["loans"][0]["borrowersCount"] = 0
    code, out, _ = run(capsys, write(tmp_path, "bad.json", body), "--json")
    assert code == 1
    errors = specs.load_errors()
    problems = json.loads(out)[0]["problems"]
    assert {p["code"] for p in problems} == {"D01", "D23"}
    for p in problems:
        assert p["provenance"] == errors[p["code"]]["provenance"] and p["provenance"], p


def test_every_code_the_validator_names_is_in_errors_yaml() -> None:
    from pcr_conformance import specs

    errors = specs.load_errors()
    emitted = validate.emitted_codes()
    assert {"D01", "D02", "D04", "D50"} <= emitted  # the source scan finds the rules' codes
    missing = sorted(emitted - set(errors))
    assert not missing, f"codes named by the validator but not in specs/errors.yaml: {missing}"
    for code in emitted:
        assert errors[code]["provenance"] in {"official", "third-party", "modelled"}, code


def test_load_errors_lists_every_code_once_with_its_fields() -> None:
    from pcr_conformance import specs

    errors = specs.load_errors()
    raw = specs.load_raw("errors.yaml")["errors"]
    assert list(errors) == [e["code"] for e in raw]  # file order, no code twice
    for code, entry in errors.items():
        assert {"code", "http_status", "in_report", "notice", "description", "meaning", "provenance",
                "source"} <= set(entry), code


# ---- operation inference --------------------------------------------------------------------------------


def _update_loans() -> dict[str, Any]:
    body = add_loans(lump_sum_loan(reportType="ErrorCorrection"))
    del body["loans"][0]["currencyCode"]
    return body


@pytest.mark.parametrize(("body", "operation"), [
    (add_loans(), "AddLoans"),
    (_update_loans(), "UpdateLoans"),
    (repayments("2026-11-19"), "Repayments"),
    (delayed(), "DelayedRepayments"),
    (termination("2026-11-19"), "TerminateLoans"),
    ({"targetEnvironment": "Test", "owner": OWNER, "batchReference": "Batch_1"}, "GetBatchStatus"),
    ({"targetEnvironment": "Test", "owner": OWNER, "loanNumber": {"type": "Other", "number": "X"}}, "GetLoan"),
    ({"targetEnvironment": "Test", "owner": OWNER, "request": {
        "idCodeType": "PersonalIdentityCode", "idCode": "010594Y9032",
        "creditRegisterExtractPurpose": ["NewConsumerCredit"]}}, "GetCreditRegisterExtract"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_operation_is_inferred(body: dict[str, Any], operation: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert validate.infer_operation(body) == operation
    code, out, _ = run(capsys, write(tmp_path, "body.json", pascal(copy.deepcopy(body))))
    assert f"valid {operation} message" in out, out
    assert code == 0


def test_ambiguous_loans_ask_for_operation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "new.json", add_loans(lump_sum_loan(reportType="NewReport")))
    code, out, err = run(capsys, path)
    assert code == 2
    assert "--operation" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, path, "--operation", "AddLoans")
    assert code == 0, out + err
    code, out, err = run(capsys, path, "--operation", "addloans")  # letter case aside
    assert code == 0 and "valid AddLoans message" in out, out + err


# ---- files that cannot be validated: exit 2 -----------------------------------------------------------------


@pytest.mark.parametrize(("content", "args", "needle"), [
    ("{not json", (), "not valid JSON"),
    ("[1, 2]", (), "not a JSON object"),
    (json.dumps({"targetEnvironment": "Test"}), (), "--operation"),
    (json.dumps(add_loans()), ("--operation", "NoSuchOperation"), "unknown operation"),
], ids=["not-json", "array", "no-operation", "unknown-operation"])
def test_unusable_input_exits_2_with_one_line(content: str, args: tuple[str, ...], needle: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, write(tmp_path, "x.json", content), *args)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "missing.json"))
    assert code == 2
    assert "no such file" in err


def test_rules_are_plain_functions_citing_their_requirement() -> None:
    for rule in validate.RULES:
        assert rule.__doc__ and rule.__doc__.split()[0][:3] in {"IDN", "RPT"}, rule.__name__
    body = add_loans()
    body["loans"][0]["lumpSumLoan"]["amountPaid"] = 1e9
    ctx = validate.Context(operation="AddLoans", today=validate.dt.date(2026, 11, 21))
    [problem] = validate.check_amount_paid(body, ctx)
    assert (problem.requirement, problem.code) == ("RPT-004", "D02")


def test_flat_extract_request_is_valid_and_a_mix_gets_a_pointed_fix(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The Java client's flat form (docs/register-facts.md#real-clients-on-the-wire) is valid; a flat member
    beside request is named, with how to send one form only."""
    body = {"targetEnvironment": "Test", "owner": OWNER, "idCodeType": "PersonalIdentityCode",
            "idCode": "010594Y9032", "creditRegisterExtractPurpose": ["NewLoan"]}
    code, out, _ = run(capsys, write(tmp_path, "flat.json", body))
    assert code == 0, out
    mixed = {**body, "request": {"idCodeType": "PersonalIdentityCode", "idCode": "010594Y9032",
                                 "creditRegisterExtractPurpose": ["NewLoan"]}}
    code, out, _ = run(capsys, write(tmp_path, "mixed.json", mixed))
    assert code == 1
    for member in ("idCodeType", "idCode", "creditRegisterExtractPurpose"):
        assert f"/{member}  ENV-010 D01" in out
    assert "not both" in out


def test_validate_body_for_reuse() -> None:
    body = pascal(add_loans())
    assert validate.validate_body(body, "AddLoans", today=validate.dt.date(2026, 11, 21)) == []
    body["Loans"][0]["BorrowersCount"] = 0
    body["Loans"][0]["Borrowers"].append({"IdCodeType": "PersonalIdentityCode", "IdCode": "020594X903P"})
    problems = validate.validate_body(body, "AddLoans", today=validate.dt.date(2026, 11, 21), with_schema=False)
    assert [(p.pointer, p.requirement, p.code) for p in problems] == [("/loans/0/borrowersCount", "RPT-012", "D23")]
