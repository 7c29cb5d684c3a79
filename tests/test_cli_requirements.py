"""`pcr-conformance requirements`: the register with the tests verifying each requirement."""

from __future__ import annotations

import json

import pytest

from pcr_conformance import kits
from pcr_conformance.cli import main


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["requirements", "--json"]) == 0
    return json.loads(out.getvalue())


def test_every_requirement_is_listed_with_its_tests(rows: list[dict]) -> None:
    assert [r["id"] for r in rows] == list(kits.load_requirements())
    tested = [r for r in rows if r["tests"]]
    assert tested, "no test verifies any requirement"
    assert all("::" in node for r in tested for node in r["tests"])


def test_uncovered_lists_must_requirements_without_test_or_reason(rows: list[dict],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    expected = sorted(r["id"] for r in rows if r["level"] == "must" and not r["tests"] and not r["not_tested"])
    code = main(["requirements", "--uncovered", "--json"])
    shown = sorted(r["id"] for r in json.loads(capsys.readouterr().out))
    assert shown == expected
    assert code == (1 if expected else 0)


def test_kit_selects_its_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--kit", "lender-extract", "--json"]) == 0
    ids = {r["id"] for r in json.loads(capsys.readouterr().out)}
    selected = set(kits.load_kit("lender-extract").selected(kits.load_requirements()))
    assert ids == selected


def test_unknown_kit_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--kit", "no-such-kit"]) == 2
    assert "no-such-kit" in capsys.readouterr().err


def test_faults_and_distinct_failing_tests_per_requirement(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each requirement lists the faults breaking it (`pcr-register faults`) with the last self-test's result."""
    results = {"fail_cap": 10, "faults": [
        {"name": "skip_d02", "requirement": "RPT-004", "detected": True, "named": True, "tests_failed": 1,
         "failing_tests": ["suites.corpus.test_corpus::test_corpus[AddLoans::amount-paid]"]},
        {"name": "accept_duplicate_loan_number", "requirement": "RPT-005", "detected": False, "named": False,
         "tests_failed": 0, "failing_tests": []},
        {"name": "skip_d40", "requirement": "IDN-004", "detected": True, "named": True, "tests_failed": 10,
         "failing_tests": [f"s::t{i}" for i in range(10)]}]}
    file = tmp_path / "st.json"
    file.write_text(json.dumps(results), encoding="utf-8")
    assert main(["requirements", "--json", "--selftest", str(file)]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["RPT-004"]["proven"] and rows["RPT-004"]["faults"][0]["tests_failed"] == 1
    assert not rows["RPT-005"]["proven"] and rows["RPT-005"]["faults"][0]["run"]
    ran = {"skip_d02", "accept_duplicate_loan_number", "skip_d40"}
    others = [f for r in rows.values() for f in r["faults"] if f["name"] not in ran]
    assert others and not any(f["run"] or f["detected"] for f in others)
    assert main(["requirements", "--selftest", str(file)]) == 0
    text = capsys.readouterr().out
    assert "fault skip_d02: detected by 1 distinct failing test(s) (WARNING: one test only)" in text
    assert "fault accept_duplicate_loan_number: NOT detected" in text
    assert "fault skip_d40: detected by at least 10 distinct failing tests (the run stops at 10)" in text
    assert "proven by a detected fault" in text.splitlines()[-1]


def test_unproven_lists_testable_requirements_without_a_fault(capsys: pytest.CaptureFixture[str]) -> None:
    from pcr_conformance import selftest

    with_fault = {f.requirement for f in selftest.load_faults()}
    expected = sorted(r.id for r in kits.load_requirements().values() if not r.not_tested and r.id not in with_fault)
    code = main(["requirements", "--unproven", "--json"])
    assert sorted(r["id"] for r in json.loads(capsys.readouterr().out)) == expected
    assert code == (1 if expected else 0)


def test_a_selftest_file_that_is_not_one_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text('{"faults": 3}', encoding="utf-8")
    assert main(["requirements", "--selftest", str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert main(["requirements", "--selftest", str(tmp_path / "missing.json")]) == 2
    assert "selftest --json" in capsys.readouterr().err
