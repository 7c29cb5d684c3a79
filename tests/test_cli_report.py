"""Reports: summary.json reading, the verdict table, allurerc.mjs categories, history and quality gate, the
verdict page and the Allure 3 HTML (fast, but for the two real runs that keep a history)."""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcr_conformance import allure_build, report, verdict_page
from pcr_conformance.allure_support import stable_id
from pcr_conformance.cli import main
from pcr_conformance.commands.run import failure_reason
from pcr_conformance.kits import load_requirements

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
    rc = allure_build.write_allurerc(tmp_path, 'kit "x" on y').read_text(encoding="utf-8")
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


def _embedded(allure_html: Path, name: str) -> list[str]:
    """The base64 payloads the single-file report embeds under names matching the regex `name`."""
    return re.findall(rf'd\("{name}","([^"]+)"\)', allure_html.read_text(encoding="utf-8"))


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


@pytest.mark.skipif(allure_build.find_allure() is None, reason="Allure 3 not installed (npm ci)")
def test_html_report_with_categories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _fake_results(tmp_path)
    assert main(["report", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    allure_html = folder / "html" / "allure.html"
    assert allure_html.is_file() and f"HTML report: {allure_html}" in out  # no summary.json: no verdict page
    assert not (folder / "html" / "index.html").exists()
    assert not (folder / ".html.tmp").exists()
    assert _categories(allure_html) == EXPECTED_CATEGORIES


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


# ---- the verdict page, history, quality gate ---------------------------------------------------------------

STATUSES = ("passed", "failed", "inconclusive", "skipped", "not-applicable", "not-run", "not-tested")
VERDICT_WORDS = ("conformant", "not-conformant", "incomplete", "error")


def _synthetic(folder: Path, verdict: str = "not-conformant", *, new_fields: bool = True) -> dict[str, str]:
    """A report folder with summary.json (one requirement per status) and hand-written Allure results.

    new_fields: the summary as the verdict engine writes it (requirement objects with reason and tests,
    started_utc, tool_version...); without, the older shape (status strings, tests only under `tests`)."""
    rids = list(load_requirements())[:len(STATUSES)]
    status_of = dict(zip(rids, STATUSES, strict=True))
    outcome_of = {"passed": "passed", "failed": "failed", "inconclusive": "passed", "skipped": "skipped",
                  "not-applicable": "skipped", "not-run": "broken"}
    tests = {f"suites/x/test_{rid.lower().replace('-', '_')}.py::test_it[{rid}]":
             {"outcome": outcome_of[status], "verifies": [rid]}
             for rid, status in status_of.items() if status in outcome_of}
    results = folder / "allure-results"
    results.mkdir(parents=True)
    for i, (nodeid, t) in enumerate(tests.items()):
        module, name = nodeid.split("::")
        result = {"uuid": f"00000000-0000-0000-0000-{i:012d}", "name": name, "status": t["outcome"],
                  "fullName": module[:-3].replace("/", ".") + "#" + name.split("[")[0], "start": 1, "stop": 2,
                  "labels": [{"name": "as_id", "value": stable_id(nodeid)},
                             *({"name": "requirement", "value": r} for r in t["verifies"])]}
        (results / f"{result['uuid']}-result.json").write_text(json.dumps(result), encoding="utf-8")
    if new_fields:
        requirements: dict[str, object] = {
            rid: {"status": st, "reason": f"why {st}",
                  "tests": [n for n, t in tests.items() if rid in t["verifies"]]} for rid, st in status_of.items()}
        extra = {"started_utc": "2026-01-02T03:04:05Z", "ended_utc": "2026-01-02T03:09:05Z",
                 "tool_version": "9.9.9", "git_commit": "abcdef1234567890", "capabilities": ["transfer"]}
    else:
        requirements, extra = dict(status_of), {}
    summary = {"kit": "lender-reporting", "kit_title": "Lender reporting", "target": "reference", "verdict": verdict,
               "counts": {"passed": 2, "failed": 1, "broken": 1, "skipped": 2, "xfailed": 0},
               "deciding_levels": ["must"], "requirements": requirements, "tests": tests, "suite_version": "0.1.0",
               "profile": "certification", "seed": "derandomized", "run_id": "run-1", **extra}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return status_of


def _links(index: Path) -> list[str]:
    return re.findall(r'href="([^"]+)"', index.read_text(encoding="utf-8"))


@pytest.mark.parametrize("new_fields", [True, False], ids=["with-verdict-engine-fields", "older-summary"])
@pytest.mark.parametrize("verdict", VERDICT_WORDS)
def test_verdict_page_shows_verdict_and_every_requirement(verdict: str, new_fields: bool, tmp_path: Path) -> None:
    folder = tmp_path / "lender-reporting" / "reference"
    status_of = _synthetic(folder, verdict, new_fields=new_fields)
    (folder / "html").mkdir()
    (folder / "html" / verdict_page.ALLURE_FILE).write_text("<html></html>", encoding="utf-8")
    index = verdict_page.write(folder, folder / "html", allure=True, gate="passed")
    assert index == folder / "html" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert f'<div class="word">{verdict}</div>' in page and verdict_page.VERDICTS[verdict][0] in page
    assert "Lender reporting" in page and "reference" in page and "Allure quality gate" in page
    requirements = load_requirements()
    for rid, status in status_of.items():
        row = re.search(rf'<tr id="{rid}" class="s-{status}">(.*?)</tr>', page, re.S)
        assert row, f"no row for {rid} ({status})"
        assert html_lib.escape(requirements[rid].title) in row.group(1)
        assert f'<td class="level{" deciding" if requirements[rid].level == "must" else ""}">' in row.group(1)
        assert f'<span class="pill" style="background:{verdict_page.STATUS_COLOURS[status]}">{status}</span>' \
            in row.group(1)
        if status != "not-tested":
            uuid = json.loads(next(p for p in (folder / "allure-results").glob("*-result.json")
                                   if f"[{rid}]" in p.read_text(encoding="utf-8")).read_text(encoding="utf-8"))["uuid"]
            assert f'href="allure.html#{hashlib.md5(uuid.encode()).hexdigest()}"' in row.group(1)
    assert len(re.findall(r'<tr id="', page)) == len(status_of)
    if new_fields:
        assert "2026-01-02T03:04:05Z" in page and "9.9.9 (abcdef123456)" in page and "why inconclusive" in page
    rows = set(re.findall(r'<tr id="([^"]+)"', page))
    for link in _links(index):  # no external resource; every link is a file beside the page or a row of it
        file, _, fragment = link.partition("#")
        assert "//" not in link and ((index.parent / file).is_file() if file else fragment in rows), link
    attention = page[page.index("Not shown to be met"):].split("</p>")[0]
    assert re.findall(r'href="#([^"]+)"', attention) == [r for s in ("failed", "inconclusive", "not-run")
                                                         for r, st in status_of.items() if st == s]


def test_verdict_page_without_allure_names_the_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "k" / "t"
    _synthetic(folder)
    monkeypatch.setenv("PCR_ALLURE", str(tmp_path / "no-such-allure"))
    outcome = report.generate_html(folder)
    assert not outcome.ok and "npm ci" in outcome.message and outcome.index == str(folder / "html" / "index.html")
    page = (folder / "html" / "index.html").read_text(encoding="utf-8")
    assert "allure.html" not in page and "npm ci" in page and "::test_it[" in page
    assert not (folder / "html" / "allure.html").exists()


def test_allurerc_has_history_and_the_quality_gate_of_the_deciding_levels(tmp_path: Path) -> None:
    rc = allure_build.write_allurerc(tmp_path, "k on t", ["must", "should"]).read_text(encoding="utf-8")
    assert "__" not in rc.replace("__REPORT_NAME__", "")
    assert 'historyPath: "./history.jsonl"' in rc and 'process.env.PCR_ALLURE_APPEND_HISTORY === "1"' in rc
    gate = rc[rc.index("qualityGate:"):]
    assert 'id: "deciding-requirement-failed"' in gate and "maxFailures: 0" in gate
    assert 'id: "test-could-not-run"' in gate and "minTestsCount: 1" in gate
    assert 'const DECIDING_SEVERITIES = ["critical", "normal"];' in rc


def _gate_folder(tmp_path: Path, failing: str) -> Path:
    """Results of three tests; `failing` names one that fails (with its severity) or is broken."""
    folder = tmp_path / failing
    results = folder / "allure-results"
    results.mkdir(parents=True)
    for i, (status, severity) in enumerate([("passed", "critical"), ("passed", "normal"),
                                            {"must": ("failed", "critical"), "should": ("failed", "normal"),
                                             "broken": ("broken", "minor"), "none": ("passed", "minor")}[failing]]):
        (results / f"u{i}-result.json").write_text(json.dumps(
            {"uuid": f"u{i}-{failing}", "name": f"t{i}", "fullName": f"m#t{i}", "status": status, "start": 1, "stop": 2,
             "historyId": f"h{i}", "labels": [{"name": "severity", "value": severity}]}), encoding="utf-8")
    allure_build.write_allurerc(folder, "gate")
    return folder


@pytest.mark.skipif(allure_build.find_allure() is None, reason="Allure 3 not installed (npm ci)")
@pytest.mark.parametrize(("failing", "gate"), [
    ("none", "passed"), ("should", "passed"),
    ("must", "failed: deciding-requirement-failed/maxFailures"), ("broken", "failed: test-could-not-run/maxFailures")])
def test_the_quality_gate_mirrors_the_verdict(failing: str, gate: str, tmp_path: Path) -> None:
    folder = _gate_folder(tmp_path, failing)
    assert allure_build.quality_gate(folder) == gate
    assert sorted(p.name for p in folder.iterdir()) == ["allure-results", "allurerc.mjs"]  # no history, no output


@pytest.mark.skipif(allure_build.find_allure() is None, reason="Allure 3 not installed (npm ci)")
def test_kits_built_in_one_node_process_keep_their_own_gate_and_history(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Several kits' reports from one Node process (allure_kit.mjs builds them at the same time): each its own
    quality gate and its own history file in its own folder, nothing where the process was started."""
    monkeypatch.setattr(allure_build, "HTML_PROCESSES", 1)
    _synthetic(tmp_path / "synthetic")
    folders = [_gate_folder(tmp_path, failing) for failing in ("none", "must", "broken")]
    for folder in folders:
        shutil.copy(tmp_path / "synthetic" / "summary.json", folder / "summary.json")  # for the verdict page
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for _ in range(2):  # the second time regenerates: no second history point
        outcomes = list(report.generate_html_of([(folder, f"gate {folder.name}") for folder in folders]))
        assert [o.ok for o in outcomes] == [True] * 3, [o.message for o in outcomes]
    gates = {f.name: re.search(r"Allure quality gate</th><td>([^<]*)", (f / "html" / "index.html").read_text(
        encoding="utf-8")).group(1) for f in folders}
    assert gates == {"none": "passed", "must": "failed: deciding-requirement-failed/maxFailures",
                     "broken": "failed: test-could-not-run/maxFailures"}
    for folder in folders:
        points = report.history_points(folder)
        assert len(points) == 1 and points[0]["name"] == f"gate {folder.name}"
        statuses = sorted(r["status"] for r in points[0]["testResults"].values())
        assert statuses == sorted(["passed", "passed", {"none": "passed", "must": "failed", "broken": "broken"}[
            folder.name]])
    assert list(elsewhere.iterdir()) == []


# The kit of the two history runs: requirements of the reporting and the extract API with corpus cases and
# scenarios (passing tests with HTTP attachments, each a row of the verdict page linked into Allure).
HISTORY_KIT = """name = "history"
title = "History (a few tests)"
actors = ["nobody"]
include = ["RPT-003", "RPT-039", "BAT-007", "EXT-001"]
"""


@pytest.mark.slow
@pytest.mark.skipif(allure_build.find_allure() is None, reason="Allure 3 not installed (npm ci)")
def test_two_runs_keep_a_history_and_the_page_links_into_allure(tmp_path: Path) -> None:
    """Two real runs with HTML of a small kit (HISTORY_KIT: the history, the links and the quality gate are the
    same for a few tests as for a whole kit's)."""
    reports = tmp_path / "reports"
    kit = tmp_path / "history.toml"
    kit.write_text(HISTORY_KIT, encoding="utf-8")
    folder = reports / "history" / "reference"
    env = {**os.environ, "COLUMNS": "240"}
    for run in (1, 2):
        proc = subprocess.run([sys.executable, "-m", "pcr_conformance.cli", "run", "--kit", str(kit),
                               "--output", str(reports)], capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        assert len(report.history_points(folder)) == run
    assert main(["report", str(folder)]) == 0  # regenerating adds no point to the history
    assert len(report.history_points(folder)) == 2
    allure_html = folder / "html" / "allure.html"
    assert _embedded(allure_html, r"data/history/[^\"]+\.json")  # the earlier run, for trends and flaky tests
    index = folder / "html" / "index.html"
    page = index.read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert f'<div class="word">{summary["verdict"]}</div>' in page
    assert set(re.findall(r'<tr id="([A-Z]{3}-\d{3})"', page)) == set(summary["requirements"])
    links = _links(index)
    test_links = [link for link in links if "#" in link]
    assert len(test_links) >= len(summary["tests"])
    embedded = allure_html.read_text(encoding="utf-8")
    for link in links:
        file, _, fragment = link.partition("#")
        assert not file or (index.parent / file).is_file()
        if file and fragment:
            assert f'd("data/test-results/{fragment}.json"' in embedded, link
    assert "Allure quality gate</th><td>passed" in page
