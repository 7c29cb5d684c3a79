"""One run, every test once (issue 12): several kits in one session, each kit's report derived from it; the
robustness prefilter, Retry-After, the self-test's forked runs."""

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from pcr_conformance import allure_support, contract, forked, kit_reports
from pcr_conformance.deadline import retry_after_s

pytest_plugins = ["pytester"]

TWO_KITS = '''
import os
import pytest


def _count(name):
    with open(os.environ["PCR_TEST_COUNTER"], "a", encoding="utf-8") as f:
        f.write(name + "\\n")


@pytest.mark.verifies("AUT-001")
def test_authority_only():
    """runs for the authority kit."""
    _count("authority_only")


@pytest.mark.verifies("BAN-001")
def test_cic_only():
    """runs for the credit information company kit."""
    _count("cic_only")
    raise AssertionError("BAN-001 GetVoluntaryBan: expected 403, actual 200")


@pytest.mark.verifies("AUT-001", "BAN-001")
def test_both():
    """belongs to both kits."""
    _count("both")


@pytest.mark.verifies("RPT-004")
def test_neither():
    """belongs to no kit of the session."""
    _count("neither")
'''


def test_two_kits_in_one_session_run_each_test_once_and_count_it_in_each(pytester, monkeypatch):
    counter = pytester.path / "ran.txt"
    monkeypatch.setenv("PCR_TEST_COUNTER", str(counter))
    pytester.makeini("[pytest]\npcr_suites = suites\n")
    pytester.mkdir("suites")
    (pytester.path / "suites" / "test_demo.py").write_text(TWO_KITS, encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "suites", "--pcr-kit", "authority", "--pcr-kit", "credit-information-company", "--pcr-output", "out",
        "--alluredir", "out/.session/allure-results", "--junitxml", "out/.session/junit.xml")
    result.assert_outcomes(passed=2, failed=1, deselected=1)
    assert sorted(counter.read_text().split()) == ["authority_only", "both", "cic_only"]  # each once
    out = pytester.path / "out"
    authority = json.loads((out / "authority" / "summary.json").read_text())
    cic = json.loads((out / "credit-information-company" / "summary.json").read_text())
    assert sorted(authority["tests"]) == ["suites/test_demo.py::test_authority_only", "suites/test_demo.py::test_both"]
    assert sorted(cic["tests"]) == ["suites/test_demo.py::test_both", "suites/test_demo.py::test_cic_only"]
    assert authority["counts"]["passed"] == 2 and authority["counts"]["failed"] == 0
    assert cic["counts"]["passed"] == 1 and cic["counts"]["failed"] == 1
    assert cic["requirements"]["BAN-001"] == "failed" and authority["requirements"]["AUT-001"] == "passed"
    assert authority["run_id"] == cic["run_id"]  # one session
    for kit, title, n in (("authority", "Authority data ordering", 2),
                          ("credit-information-company", "Credit information company", 2)):
        folder = out / kit
        suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
        assert suite is not None and suite.get("tests") == str(n)
        results = [json.loads(p.read_text()) for p in (folder / "allure-results").glob("*-result.json")]
        assert len(results) == n
        assert all({"name": "parentSuite", "value": title} in r["labels"] for r in results)
        assert (folder / "environment.properties").read_text().count(f"kit={kit}") == 1
        attachments = {a["source"] for r in results for a in r.get("attachments") or []}
        assert all((folder / "allure-results" / a).is_file() for a in attachments)


def test_a_kit_junit_keeps_only_its_cases_and_recounts(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text('<testsuites><testsuite name="pytest" tests="3" failures="1" errors="1" skipped="0" time="3">'
                   '<testcase classname="suites.test_a" name="test_x" time="1"/>'
                   '<testcase classname="suites.test_a" name="test_y" time="1"><failure message="m"/></testcase>'
                   '<testcase classname="suites.test_a" name="test_z" time="1"><error message="e"/></testcase>'
                   '</testsuite></testsuites>', encoding="utf-8")
    tree = ET.parse(xml)
    kit_reports.write_junit(tree, tmp_path / "k" / "junit.xml", ["suites/test_a.py::test_x", "suites/test_a.py::test_z"])
    suite = ET.parse(tmp_path / "k" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite.iter("testcase")] == ["test_x", "test_z"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    assert len(tree.getroot().find("testsuite").findall("testcase")) == 3  # the session's file is unchanged


def test_a_kit_keeps_the_fixture_containers_that_show_something() -> None:
    """A passed set-up and tear-down with nothing attached is left out of a kit's results; a fixture that did
    not pass, or one with an attachment, stays."""
    plain = {"befores": [{"name": "pcr_clients", "status": "passed"}], "afters": [{"name": "pcr_clients::<lambda>"}]}
    assert not allure_support.shows_something(plain)
    assert not allure_support.shows_something({"children": ["u"]})
    broken = {"befores": [{"name": "pcr_target", "status": "broken", "statusDetails": {"message": "no register"}}]}
    assert allure_support.shows_something(broken)
    failed_after = {**plain, "afters": [{"name": "pcr_cleanup::1", "status": "failed"}]}
    assert allure_support.shows_something(failed_after)
    attached = {"befores": [{"name": "known_loan", "status": "passed", "steps": [
        {"name": "add", "attachments": [{"name": "1. AddLoans", "source": "a-attachment.txt"}]}]}]}
    assert allure_support.shows_something(attached)


FIXTURES = '''
import allure
import pytest


@pytest.fixture
def plain():
    yield 1


@pytest.fixture
def attaching():
    allure.attach("set-up call", name="1. AddLoans", attachment_type=allure.attachment_type.TEXT)
    yield 2


@pytest.fixture
def failing_teardown():
    yield 3
    raise RuntimeError("clean-up refused")


@pytest.mark.verifies("AUT-001")
def test_plain(plain):
    """a passed fixture with nothing attached."""


@pytest.mark.verifies("AUT-001")
def test_attaching(attaching):
    """a fixture with an attachment."""


@pytest.mark.verifies("AUT-001")
def test_failing_teardown(failing_teardown):
    """a fixture whose tear-down fails."""
'''


def _container_fixtures(results: Path) -> list[str]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in results.glob("*-container.json")]
    return sorted(f["name"] for d in docs for f in d.get("befores") or [])


@pytest.mark.parametrize("kit_folders", [True, False])
def test_a_kit_session_writes_only_the_fixture_containers_that_show_something(pytester, kit_folders):
    """In a kit-folder session the passed, silent set-up is never written (kit_reports would drop it); a plain
    pytest session with --alluredir keeps allure-pytest's every container."""
    pytester.makeini("[pytest]\npcr_suites = suites\n")
    pytester.mkdir("suites")
    (pytester.path / "suites" / "test_fixtures.py").write_text(FIXTURES, encoding="utf-8")
    args = ["suites", "--pcr-kit", "authority", "--pcr-output", "out", "--alluredir", "out/.session/allure-results"]
    result = pytester.runpytest_subprocess(*args, *(["--pcr-kit-folders"] if kit_folders else []))
    result.assert_outcomes(passed=3, errors=1)
    written = _container_fixtures(pytester.path / "out" / ".session" / "allure-results")
    if kit_folders:
        assert written == ["attaching", "failing_teardown"]
        assert _container_fixtures(pytester.path / "out" / "authority" / "allure-results") == written
    else:
        assert written == ["attaching", "failing_teardown", "plain"]


@pytest.mark.parametrize("text", [
    "Traceback (most recent call last)", 'File "app.py", line 1', "uses ſqlite3", "ınsert ınto loans",
    "SELECT id\n FROM loans", "at com.x.Y(Z.java:12)", "System.IOException", "nothing here", "a selection from",
    "/usr/lib/python3", "x" * 10_000 + "uvicorn"])
def test_the_internals_prefilter_finds_what_the_regex_finds(text):
    """SEC-011: the word prefilter never hides a match of INTERNALS (case folding included)."""
    found = contract.INTERNALS.search(text)
    assert contract.leaked_internals(text) == (found.group(0) if found else None)



def test_an_answer_quoting_the_request_back_leaks_nothing():
    """SEC-011: a member name the client sent, quoted back in the error description, is not an internal; a
    leak beside it still is."""
    answer = '{"errorDescription": "Unknown member \'/USR/LIB/PYTHON\'."}'
    assert contract.leaked_internals(answer) == "/USR/LIB/PYTHON"
    assert contract.leaked_internals(answer, sent='{"/USR/LIB/PYTHON": null}') is None
    leaking = answer + ' File "/srv/app/handlers.py", line 3'
    assert contract.leaked_internals(leaking, sent='{"/USR/LIB/PYTHON": null}') == 'File "/srv/app/handlers.py"'
    # The scenario-side check reads the request from the answer: what it sent is the client's own text.
    request = httpx.Request("POST", "https://register.example/AddLoans", content=b'{"/USR/LIB/PYTHON": null}')
    contract.no_internals(httpx.Response(400, text=answer, request=request), "AddLoans")
    with pytest.raises(AssertionError, match="SEC-011"):
        contract.no_internals(httpx.Response(400, text=leaking, request=request), "AddLoans")
    with pytest.raises(AssertionError, match="SEC-011"):  # an answer without its request (a raw exchange's)
        contract.no_internals(httpx.Response(400, text=answer), "AddLoans")


def test_retry_after_is_read_as_seconds_or_a_date():
    assert retry_after_s("2") == 2.0
    assert retry_after_s("") is None and retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: ask again now
    assert 3500 < retry_after_s(httpx.Response(200, headers={"Retry-After": "3600"}).headers["retry-after"]) <= 3600


@pytest.mark.skipif(not forked.available(), reason="forked runs need Linux")
def test_forked_runs_report_pytest_exit_codes_logs_and_time_limits(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    print('hello from the child')\n", encoding="utf-8")
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert False\n", encoding="utf-8")
    (tmp_path / "test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(60)\n", encoding="utf-8")
    jobs = [forked.Job([str(tmp_path / f"test_{n}.py"), "-p", "no:cacheprovider", "-s", "-p", "no:pcr_conformance"],
                       tmp_path / n, {"PCR_DEMO": n}, 30 if n != "slow" else 1, key=n) for n in ("ok", "bad", "slow")]
    done: dict[str, forked.Done] = {}

    def on_done(d: forked.Done) -> list[forked.Job]:
        done[str(d.job.key)] = d
        return []

    forked.run_all(jobs, parallel=3, on_done=on_done)
    assert done["ok"].exit_code == 0 and "hello from the child" in (tmp_path / "ok" / "pytest.log").read_text()
    assert done["bad"].exit_code == 1
    assert done["slow"].exit_code == -1 and done["slow"].duration_s < 20
    assert "PCR_DEMO" not in os.environ  # the job's environment stayed in its child


def test_the_run_is_one_session_with_every_kit(tmp_path):
    from pcr_conformance.commands.run import RunConfig, session_command

    config = RunConfig(target="reference", target_name="reference", kits=("a", "b"), kit_args=("a", str(tmp_path)),
                       profile="certification", output=tmp_path, html=False, mask_pii=False, timeout_s=5,
                       suites=tmp_path / "suites")
    cmd = session_command(config, tmp_path / "root")
    assert cmd.count("--pcr-kit") == 2 and cmd[cmd.index("--pcr-kit") + 1] == "a" and str(tmp_path) in cmd
    assert "--pcr-kit-folders" in cmd and cmd[cmd.index("--pcr-output") + 1] == str(tmp_path / "root")
    assert cmd[cmd.index("--alluredir") + 1] == str(Path(tmp_path / "root" / ".session" / "allure-results"))
