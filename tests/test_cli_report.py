"""Reports: summary.json reading, the verdict table, allurerc.mjs categories, the Allure 3 HTML (fast)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pcr_conformance import report
from pcr_conformance.cli import main
from pcr_conformance.commands.run import failure_reason

SUMMARY = {
    "kit": "lender-reporting", "target": "reference", "verdict": "not-conformant",
    "counts": {"passed": 40, "failed": 2, "broken": 0, "skipped": 3, "xfailed": 1},
    "requirements": {"RPT-004": "failed", "RPT-005": "passed", "RPT-006": "passed", "BAT-011": "not-tested"},
}

FAKE_TESTS = '''
import pytest
def test_pass(): pass
def test_rule(): assert False, "RPT-004 AddLoans: expected report rejected with D02, actual accepted"
def test_security(): assert False, "SEC-006 AddLoans: expected 403 D42, actual 202"
def test_server_error(): assert False, "ENV-007 AddLoans: expected status 400, actual 500"
def test_schema(): assert False, "ENV-014 GetLoan: the 200 response does not match its schema"
def test_broken(): raise ConnectionError("connection refused")
def test_not_claimed(): pytest.skip("not claimed: capability transfer")
@pytest.mark.xfail(strict=True, reason="TICKET-1 known deviation")
def test_known(): assert False, "RPT-005 AddLoans: expected D10"
'''

EXPECTED_CATEGORIES = {
    "test_rule": "Business-rule violation",
    "test_security": "Security violation",
    "test_server_error": "Server error (5xx)",
    "test_schema": "Contract violation (schema)",
    "test_broken": "Harness or infrastructure",
    "test_not_claimed": "Not claimed (skipped)",
    "test_known": "Known deviation",
}


def test_read_summary_and_table(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY), encoding="utf-8")
    s = report.read_summary(tmp_path / "summary.json")
    assert (s.kit, s.verdict, s.met, s.failed_requirements) == ("lender-reporting", "not-conformant", 2, ["RPT-004"])
    table = report.render_table([
        report.KitOutcome("lender-reporting", "reference", 1, summary=s),
        report.KitOutcome("authority", "reference", 2, reason="target unreachable"),
    ])
    lines = table.splitlines()
    assert lines[0].split() == ["kit", "target", "verdict", "passed", "failed", "broken", "skipped",
                                "requirements", "met"]
    assert lines[2].split()[:7] == ["lender-reporting", "reference", "not-conformant", "40", "2", "0", "3"]
    assert "2 of 4 (1 not tested)" in lines[2]
    assert "could not run" in lines[3]
    assert "lender-reporting: failed requirements RPT-004" in table
    assert "authority: target unreachable" in table
    assert "lender-reporting: 1 known deviation(s)" in table


@pytest.mark.parametrize("content", ["", "[]", json.dumps({"kit": "k"})])
def test_bad_summary_is_a_report_error(content: str, tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    if content:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(report.ReportError):
        report.read_summary(path)


def test_failure_reason_of_each_could_not_run_shape() -> None:
    assert failure_reason("!!!!! _pytest.outcomes.Exit: target unreachable: refused !!!!!\n", 2) == \
        "target unreachable: refused"
    assert failure_reason("Exit: bad pool file\n", 2) == "bad pool file"
    usage = "ERROR: usage: python -m pytest [options]\npython -m pytest: error: unrecognized arguments: --x\n"
    assert failure_reason(usage, 4) == "python -m pytest: error: unrecognized arguments: --x"
    assert failure_reason("INTERNALERROR> KeyError: 'x'\n", 3) == "pytest internal error: KeyError: 'x'"
    assert failure_reason("ERROR suites/a.py - ImportError: no\nERROR suites/b.py\n", 2) == \
        "suites/a.py - ImportError: no (and 1 more)"


def test_allurerc_has_the_report_name(tmp_path: Path) -> None:
    rc = report.write_allurerc(tmp_path, 'kit "x" on y').read_text(encoding="utf-8")
    assert 'name: "kit \\"x\\" on y"' in rc
    assert "__REPORT_NAME__" not in rc


def _fake_results(tmp_path: Path) -> Path:
    (tmp_path / "test_fake.py").write_text(FAKE_TESTS, encoding="utf-8")
    folder = tmp_path / "reports" / "lender-reporting" / "reference"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:pcr_conformance",
                    str(tmp_path / "test_fake.py"), "--alluredir", str(folder / "allure-results")],
                   cwd=tmp_path, capture_output=True, timeout=120)
    assert any((folder / "allure-results").glob("*-result.json"))
    return folder


def _categories(index: Path) -> dict[str, str]:
    """{test name: category} from the single-file report's embedded widgets/categories.json."""
    m = re.search(r'd\("widgets/categories\.json","([^"]+)"\)', index.read_text(encoding="utf-8"))
    assert m, "no categories in the report"
    nodes = json.loads(base64.b64decode(m.group(1)))["nodes"]
    found = {}
    for node in nodes.values():
        if node.get("type") == "category":
            stack = list(node.get("childrenIds", []))
            while stack:
                child = nodes[stack.pop()]
                if child.get("type") == "tr":
                    found[child["name"]] = node["name"]
                stack.extend(child.get("childrenIds", []))
    return found


@pytest.mark.skipif(report.find_allure() is None, reason="Allure 3 not installed (npm ci)")
def test_html_report_with_categories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _fake_results(tmp_path)
    assert main(["report", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    index = folder / "html" / "index.html"
    assert index.is_file() and f"HTML report: {index}" in out
    assert not (folder / ".html.tmp").exists()
    assert _categories(index) == EXPECTED_CATEGORIES


def test_missing_allure_is_one_line_and_the_rest_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "k" / "t"
    (folder / "allure-results").mkdir(parents=True)
    monkeypatch.setenv("PCR_ALLURE", str(tmp_path / "no-such-allure"))
    outcome = report.generate_html(folder)
    assert not outcome.ok and "npm ci" in outcome.message and "\n" not in outcome.message
    assert not (folder / "html").exists()
    assert (folder / "allure-results").is_dir()


def test_report_of_a_folder_without_results_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no allure-results" in err and len(err.strip().splitlines()) == 1
