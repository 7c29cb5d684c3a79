"""Contract versions (issue 15): overlays, building a version, the diff of the shipped versions and who it
reaches, the upgrade reading of `validate --version`, the register under either version, and every kit judged
under 2027.1 against the reference register serving it."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pcr_conformance import contract_diff, identifiers, kits, versions
from pcr_conformance.cli import main

REPO = Path(__file__).resolve().parents[1]
NEW = "2027.1"
OLD = "2026.1"


@pytest.fixture(autouse=True)
def _contract_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """`validate --version` and `run --contract-version` point PCR_SPECS_DIR at a version in this process:
    undone after each test (monkeypatch restores the variable as it was, set or not)."""
    monkeypatch.setenv("PCR_SPECS_DIR", os.environ.get("PCR_SPECS_DIR") or str(REPO / "specs"))


# ---- overlays, on canned documents ------------------------------------------------------------------------

DOC = {"paths": {"/A": {"post": {"operationId": "A"}}},
       "components": {"schemas": {"X": {"required": ["a"], "properties": {"a": {"type": "string"}}}}},
       "requirements": [{"id": "R-1", "title": "one"}, {"id": "R-2", "title": "two"}]}


def overlay(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": list(actions)}


def test_overlay_update_merges_objects_and_appends_to_arrays() -> None:
    result = versions.apply_overlay(DOC, overlay(
        {"target": "$.components.schemas.X.properties", "update": {"b": {"type": "integer"}}},
        {"target": "$.components.schemas.X.required", "update": "b"},
        {"target": "$.requirements[?@.id=='R-2']", "update": {"title": "TWO", "level": "must"}},
        {"target": "$.paths", "update": {"/B": {"post": {"operationId": "B"}}}}))
    schema = result["components"]["schemas"]["X"]
    assert schema == {"required": ["a", "b"], "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    assert result["requirements"][1] == {"id": "R-2", "title": "TWO", "level": "must"}
    assert list(result["paths"]) == ["/A", "/B"]
    assert DOC["components"]["schemas"]["X"]["required"] == ["a"], "the base document is not changed"


def test_overlay_remove_deletes_every_selected_node() -> None:
    result = versions.apply_overlay(DOC, overlay({"target": "$.requirements[*].title", "remove": True},
                                                 {"target": "$.paths['/A']", "remove": True}))
    assert result["requirements"] == [{"id": "R-1"}, {"id": "R-2"}]
    assert result["paths"] == {}


@pytest.mark.parametrize(("action", "message"), [
    ({"target": "$.components.schemas.Nope", "update": {"a": 1}}, "selects nothing"),
    ({"target": "$.paths", "update": {}, "remove": True}, "exactly one of update or remove"),
    ({"target": "$.paths[", "update": {}}, "not a valid JSONPath"),
    ({"update": {}}, "target is missing"),
])
def test_a_bad_overlay_action_is_named(action: dict[str, Any], message: str) -> None:
    with pytest.raises(versions.VersionError, match=message) as info:
        versions.apply_overlay(DOC, overlay(action), "x.overlay.yaml")
    assert "x.overlay.yaml: actions[0]" in str(info.value)


def test_an_overlay_must_say_it_is_one() -> None:
    with pytest.raises(versions.VersionError, match="not an OpenAPI Overlay"):
        versions.apply_overlay(DOC, {"actions": []})


def _specs_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    for path in (REPO / "specs").glob("*.yaml"):
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "version.toml").write_text('name = "1.0"\n', encoding="utf-8")
    return folder


def test_a_version_with_an_unknown_base_is_named(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    (folder / "versions" / "2.0").mkdir(parents=True)
    (folder / "versions" / "2.0" / "version.toml").write_text('base = "1.5"\n', encoding="utf-8")
    with pytest.raises(versions.VersionError, match=r"base '1.5' is not a version \(known: 1.0, 2.0\)"):
        versions.catalogue(folder)


def test_build_writes_every_file_once_and_names_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _specs_copy(tmp_path)
    (folder / "versions" / "2.0").mkdir(parents=True)
    (folder / "versions" / "2.0" / "version.toml").write_text('base = "1.0"\nstatus = "upcoming"\n', encoding="utf-8")
    (folder / "versions" / "2.0" / "errors.overlay.yaml").write_text(yaml.safe_dump(overlay(
        {"target": "$.errors[?@.code=='D02']", "update": {"description": "Changed."}})), encoding="utf-8")
    monkeypatch.setenv("PCR_SPECS_DIR", str(folder))
    cache = tmp_path / "cache"
    built = versions.build("2.0", cache)
    assert versions.build("2.0", cache) == built, "built once, then reused"
    assert sorted(p.name for p in built.glob("*.yaml")) == sorted(p.name for p in folder.glob("*.yaml"))
    assert versions.current_name(built) == "2.0"
    errors = {e["code"]: e for e in yaml.safe_load((built / "errors.yaml").read_text(encoding="utf-8"))["errors"]}
    assert errors["D02"]["description"] == "Changed."
    assert [p.name for p in cache.iterdir()] == [built.name], "no staging folder left behind"
    # A folder that is in use as PCR_SPECS_DIR still finds the versions of the folder it was built from.
    monkeypatch.setenv("PCR_SPECS_DIR", str(built))
    assert list(versions.catalogue()) == ["1.0", "2.0"]
    assert versions.build("1.0") == folder


# ---- the shipped versions: the diff, exactly -------------------------------------------------------------

B, C = contract_diff.BREAKING, contract_diff.COMPATIBLE
# (change, subject, where, clients, registers) of every change 2027.1 makes, written from its overlays.
EXPECTED_CHANGES = [
    ("operation added", "ListBatches", "", C, B),
    ("request enum literal added", "AddLoans", "request /loans[]/lumpSumLoan/repaymentMethod", C, B),
    ("response enum literal added", "GetLoan", "response 200 /loan/lumpSumLoan/repaymentMethod", B, C),
    ("response member added (required)", "GetLoan", "response 200 /loan/termination/terminationReason", C, B),
    ("request member added (optional)", "Repayments", "request /repayments[]/paymentReference", C, B),
    ("request member added (required)", "TerminateLoans",
     "request /loanTerminations[]/termination/terminationReason", B, B),
    ("request enum literal added", "UpdateLoans", "request /loans[]/lumpSumLoan/repaymentMethod", C, B),
    ("error code renamed", "D40", "errors.yaml", B, B),
    ("requirement added", "BAT-014", "requirements.yaml", C, B),
    ("requirement changed", "IDN-004", "requirements.yaml", C, B),
    ("requirement changed", "RPT-032", "requirements.yaml", C, C),
]
ALL_KITS = ["authority", "credit-information-company", "lender-extract", "lender-reporting", "register"]
# The kits each change reaches: a reporting operation's change only the kits covering reporting; the renamed
# owner code (IDN-004, every operation) every register kit.
# The client kit of reporting (lender-client: CLI-… requirements name every reporting operation) is reached by
# the operations' changes, not by the register's code or its rules.
EXPECTED_KITS = {
    "ListBatches": ["lender-client", "lender-reporting", "register"],
    "TerminateLoans": ["lender-client", "lender-reporting", "register"],
    "D40": ALL_KITS,
    "BAT-014": ["lender-reporting", "register"],
}


def _shipped_diff() -> list[contract_diff.Change]:
    return contract_diff.diff(versions.build(OLD), versions.build(NEW))


def test_the_diff_of_the_shipped_versions_is_every_change_classified_for_each_side() -> None:
    got = [(c.kind, c.subject, c.location, c.client, c.register) for c in _shipped_diff()]
    assert got == EXPECTED_CHANGES


def test_each_change_reaches_the_kits_of_its_operation_or_rule() -> None:
    old, new = versions.build(OLD), versions.build(NEW)
    reqs = contract_diff.requirements_of_both(old, new)
    all_kits = [kits.load_kit(name) for name in kits.available_kits()]
    reached = {c.subject: contract_diff.affected_kits(c, all_kits, reqs) for c in contract_diff.diff(old, new)}
    for subject, expected in EXPECTED_KITS.items():
        assert reached[subject] == expected, subject


def test_no_change_between_a_version_and_itself() -> None:
    assert contract_diff.diff(versions.build(NEW), versions.build(NEW)) == []


def test_diff_cli_exit_codes_and_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", OLD, NEW, "--no-tests", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["breaking"] is True and len(doc["changes"]) == len(EXPECTED_CHANGES)
    lender = doc["kits"]["lender-reporting"]
    assert lender["side"] == "client"
    assert [doc["changes"][i]["subject"] for i in lender["breaking"]] == ["GetLoan", "TerminateLoans", "D40"]
    assert doc["kits"]["register"]["side"] == "register"
    assert main(["diff", OLD, NEW, "--no-tests", "--format", "markdown"]) == 1
    assert "| # | subject | change | where | detail | clients | registers |" in capsys.readouterr().out
    assert main(["diff", OLD, OLD, "--no-tests"]) == 0
    assert "0 change(s)" in capsys.readouterr().out
    # A folder of contract files works as well as a name (a spec pull request against main's specs/).
    assert main(["diff", str(REPO / "specs"), str(versions.build(NEW)), "--no-tests"]) == 1
    capsys.readouterr()
    assert main(["diff", OLD, "2099.9", "--no-tests"]) == 2
    assert "contract version '2099.9' is unknown; known versions: 2026.1, 2027.1" in capsys.readouterr().err


def test_the_diff_names_the_tests_a_change_reaches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", OLD, NEW, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    tests = {c["subject"]: c["tests"] for c in doc["changes"]}
    assert tests["BAT-014"] == ["suites/scenarios/reporting/test_list_batches.py::"
                                "test_list_batches_shows_own_batches_newest_first"]
    assert "suites/security/test_identity.py::test_foreign_owner_needs_country_code" in tests["D40"]
    assert tests["TerminateLoans"] and all("TerminateLoans" in t or "RPT-0" not in t for t in tests["TerminateLoans"])


def test_the_contract_lints_hold_for_the_new_version() -> None:
    """tests/test_specs.py on 2027.1's files, but for the two tests about the current files' own content."""
    env = {**os.environ, "PCR_SPECS_DIR": str(versions.build(NEW))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_specs.py",
                           "-k", "not test_accepts_termination and not test_interfaces_operations_exist"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_reports_name_the_current_version_when_none_is_chosen() -> None:
    from pcr_conformance import allure_support, evidence

    fields = evidence.fields(target=None, started_utc="", ended_utc="", specs={}, certificates=None)
    assert fields["contract_version"] == OLD
    values = allure_support.environment_values(target=None, target_name="t", kit="k", profile="p", seed="s",
                                               run_id="r", specs={})
    assert values["contract_version"] == OLD


# ---- the register under either version --------------------------------------------------------------------


def test_the_register_serves_a_new_operation_and_renamed_codes_only_under_its_version() -> None:
    from pcr_register import routes
    from pcr_register.validation import Specs

    current, upcoming = Specs.load(versions.build(OLD)), Specs.load(versions.build(NEW))
    assert "ListBatches" not in routes.served(current)
    assert "ListBatches" in routes.served(upcoming)
    routes.check_specs(current)  # an optional operation absent from the files is no error
    assert current.describe([{"errorCode": "D40"}])[0]["errorCode"] == "D40"
    assert upcoming.describe([{"errorCode": "D40"}]) == [
        {"errorCode": "D44", "errorDescription": "A foreign business ID needs its country code (countryCode)."}]


# ---- validate --version: the corpus's valid messages under 2027.1 -----------------------------------------


class _Data:
    """Artificial test data for rendering corpus cases offline (individual numbers 900-999)."""

    def __init__(self) -> None:
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def person(self, tag: str = "income") -> str:
        return identifiers.hetu(dt.date(1990, 1, 1), 900 + self._next() % 100)

    def loan_number(self) -> dict[str, str]:
        return {"type": "Other", "number": f"PCR-VERSION-{self._next():04d}"}

    def report_reference(self) -> str:
        return f"R-{self._next()}"

    def batch_reference(self, label: str) -> str:
        return f"Batch_{label}_{self._next()}"


class _Client:
    owner = {"idCodeType": "BusinessId", "idCode": "7654321-2"}


class _Clients:
    def get(self, slot: str) -> _Client:
        return _Client()


def _valid_corpus_messages(folder: Path) -> dict[str, str]:
    """{file name: operation} of every accepted case of the corpus written as a message file."""
    from suites.corpus import test_corpus

    written: dict[str, str] = {}
    for path in sorted((REPO / "suites" / "corpus").glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            if case["expect"]["status"] not in (200, 202) or case.get("raw") or "request" not in case:
                continue
            filler = test_corpus.Filler(_Data(), _Clients(), _Client())
            body = {"targetEnvironment": "Test", "owner": dict(_Client.owner), **filler.fill(copy.deepcopy(case["request"]))}
            name = f"{data['operation']}--{case['id']}.json"
            (folder / name).write_text(json.dumps(body), encoding="utf-8")
            written[name] = data["operation"]
    return written


def _validate(capsys: pytest.CaptureFixture[str], folder: Path, names: list[str], operation: str,
              *extra: str) -> dict[str, dict[str, Any]]:
    main(["validate", "--json", "--contract", "reference", "--today", dt.date.today().isoformat(),
          "--operation", operation, *extra, *(str(folder / n) for n in names)])
    return {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}


def test_validate_version_rejects_exactly_the_messages_the_new_version_changes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    written = _valid_corpus_messages(tmp_path)
    by_operation: dict[str, list[str]] = {}
    for name, operation in written.items():
        by_operation.setdefault(operation, []).append(name)
    valid: dict[str, str] = {}
    for operation, names in by_operation.items():  # the messages the current version accepts
        valid.update({n: operation for n, r in _validate(capsys, tmp_path, names, operation).items() if r["valid"]})
    assert len(valid) >= 20 and "TerminateLoans" in valid.values(), sorted(valid)
    expected = sorted(n for n, op in valid.items() if op == "TerminateLoans")  # 2027.1's one new required member
    rejected: list[str] = []
    for operation in sorted(set(valid.values())):
        names = sorted(n for n, op in valid.items() if op == operation)
        for name, r in _validate(capsys, tmp_path, names, operation, "--version", NEW).items():
            if not r["valid"]:
                rejected.append(name)
                assert [p["pointer"].rsplit("/", 1)[-1] for p in r["problems"]] == ["terminationReason"], r
    assert sorted(rejected) == expected


# ---- every kit under 2027.1, against the reference register serving it ------------------------------------


@pytest.mark.slow
def test_every_kit_is_conformant_under_the_new_version_and_the_report_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One session of the register kit (every test) with --pcr-contract-version 2027.1: the embedded register
    serves 2027.1, the suites judge by it; each kit judged from that session as tests/public_contract.py
    does. The version's own test (ListBatches, BAT-014) ran and passed; the report says 2027.1."""
    from public_contract import RUN_TIMEOUT_S, per_kit

    from pcr_conformance import resources

    cmd = [sys.executable, "-P", "-m", "pytest", str(resources.suites_dir()), *resources.suites_pytest_args(),
           "--pcr-target", "reference", "--pcr-kit", "register", "--pcr-contract-version", NEW,
           "--pcr-output", str(tmp_path), "-q", "-p", "no:cacheprovider", "--tb=no"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert (tmp_path / "summary.json").is_file(), (proc.stdout + proc.stderr)[-2000:]
    doc = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert doc["contract_version"] == NEW
    assert "contract_version=2027.1" in (tmp_path / "environment.properties").read_text(encoding="utf-8")
    outcome = doc["tests"]["suites/scenarios/reporting/test_list_batches.py::"
                           "test_list_batches_shows_own_batches_newest_first"]["outcome"]
    assert outcome == "passed"
    assert any("[ListBatches" in n for n in doc["tests"]), "the fuzz and robustness tests cover the new operation"
    monkeypatch.setenv("PCR_SPECS_DIR", str(versions.build(NEW)))  # judge each kit by 2027.1's requirements
    for name, kit in per_kit(doc).items():
        assert kit["verdict"] == "conformant" and kit["counts"]["failed"] == 0, (name, kit["counts"], kit["gaps"])
        assert kit["counts"]["broken"] == 0, name
    print(f"\n2027.1, reference register serving it: {doc['counts']}")
