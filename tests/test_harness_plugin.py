"""The pytest plugin, run on small generated suites through pytester (no register needed here)."""

import json

import pytest

pytest_plugins = ["pytester"]


def _suite(pytester, source, name="test_demo.py"):
    # The kit's own suites folder is resources.suites_dir(); a project's own suites are named by `pcr_suites`.
    pytester.makeini("[pytest]\npcr_suites = suites\n")
    pytester.mkdir("suites")
    (pytester.path / "suites" / name).write_text(source, encoding="utf-8")


def test_unknown_verifies_id_is_a_collection_error(pytester):
    _suite(pytester, 'import pytest\n\n@pytest.mark.verifies("RPT-999")\ndef test_x():\n    """x."""\n')
    result = pytester.runpytest("suites")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*unknown requirement ID(s) RPT-999*"])


def test_suite_test_without_verifies_is_a_collection_error(pytester):
    _suite(pytester, 'def test_x():\n    """x."""\n')
    result = pytester.runpytest("suites")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*needs @pytest.mark.verifies*"])


def test_tests_outside_suites_are_untouched(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--pcr-output", "out", "--pcr-kit", "authority")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out" / "summary.json").exists()


OUTCOMES = '''
import pytest
from pcr_conformance.errors import TargetUnreachable


@pytest.mark.verifies("RPT-005")
def test_passes():
    """passes."""


@pytest.mark.verifies("RPT-004")
def test_fails():
    """fails."""
    raise AssertionError("RPT-004 AddLoans: expected D02, actual Accepted")


@pytest.mark.verifies("RPT-006")
def test_broken():
    """could not run."""
    raise TargetUnreachable("AddLoans: connection refused", kind="connect")


@pytest.mark.verifies("RPT-007")
@pytest.mark.capability("nope")
def test_unclaimed():
    """not claimed."""


@pytest.mark.verifies("EXT-001")
def test_other_kit():
    """deselected by lender-reporting."""
'''


def test_summary_outcomes_and_kit_deselection(pytester):
    _suite(pytester, OUTCOMES)
    result = pytester.runpytest("suites", "--pcr-kit", "lender-reporting", "--pcr-output", "out", "-rs")
    result.assert_outcomes(passed=1, failed=2, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["*not claimed*capability 'nope'*"])
    out = pytester.path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kit"] == "lender-reporting" and summary["target"] == "reference"
    assert summary["counts"] == {"passed": 1, "failed": 1, "broken": 1, "skipped": 1, "xfailed": 0, "informative": 0}
    reqs = summary["requirements"]
    assert reqs["RPT-005"] == "passed" and reqs["RPT-004"] == "failed"
    assert reqs["RPT-006"] == "not-run" and reqs["RPT-007"] == "skipped"
    assert "EXT-001" not in reqs and reqs["RPT-001"] == "not-run"
    assert summary["verdict"] == "not-conformant"
    assert summary["profile"] == "certification" and summary["run_id"] and summary["spec_hashes"]
    assert "kit=lender-reporting" in (out / "environment.properties").read_text()
    names = [c["name"] for c in json.loads((out / "categories.json").read_text())]
    assert "Known deviation" in names and "Harness or infrastructure" in names


def test_expectations_are_strict_xfail(pytester):
    _suite(pytester, OUTCOMES)
    exp = pytester.path / "exp.toml"
    exp.write_text('[[deviation]]\ntest = "suites/test_demo.py::test_fails"\nticket = "PCR-1"\nreason = "D02"\n'
                   '[[deviation]]\ntest = "suites/test_demo.py::test_passes"\nticket = "PCR-2"\nreason = "fixed"\n'
                   '[[deviation]]\ntest = "suites/test_demo.py::test_typo"\nticket = "PCR-3"\n')
    result = pytester.runpytest("suites", "--pcr-kit", "lender-reporting", "--pcr-expectations", str(exp),
                                "--pcr-output", "out")
    result.assert_outcomes(failed=2, xfailed=1, skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*PCR-2*", "*expectations name tests that were not collected*"])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["counts"]["xfailed"] == 1 and summary["requirements"]["RPT-004"] == "failed"
    # The stale expectation (strict XPASS) names no requirement: an unattributed failure, RPT-005 inconclusive.
    assert summary["requirements"]["RPT-005"] == "inconclusive"
    stale = [u for u in summary["unattributed_failures"] if u["test"] == "suites/test_demo.py::test_passes"]
    assert stale and "remove the expectations entry" in stale[0]["why"]
    assert [d["ticket"] for d in summary["known_deviations"]] == ["PCR-1", "PCR-2"]
    assert summary["verdict"] == "incomplete"  # the stale PCR-2 and the broken test leave gaps; PCR-1 decides nothing
    assert summary["unmatched_expectations"] == ["suites/test_demo.py::test_typo"]


def test_known_deviation_alone_does_not_decide(pytester):
    _suite(pytester, 'import pytest\n\n@pytest.mark.verifies("RPT-004")\ndef test_fails():\n    """x."""\n'
                     '    raise AssertionError("RPT-004 AddLoans: expected D02, actual Accepted")\n')
    exp = pytester.path / "exp.toml"
    exp.write_text('[[deviation]]\ntest = "suites/test_demo.py::test_fails"\nticket = "PCR-1"\nreason = "D02"\n')
    kit = pytester.path / "one.toml"
    kit.write_text('name = "one"\ntitle = "One"\nactors = ["nobody"]\ninclude = ["RPT-004"]\n')
    result = pytester.runpytest("suites", "--pcr-expectations", str(exp), "--pcr-output", "out", "--pcr-kit", str(kit))
    result.assert_outcomes(xfailed=1)
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["verdict"] == "conformant" and summary["requirements"]["RPT-004"] == "failed"


def test_unreachable_target_exits_2_with_error_summary(pytester, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("lender")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "c.key"))
    target = pytester.path / "down.toml"
    target.write_text(f'''name = "down"
timeout_s = 1
capabilities = ["reporting"]
[base_urls]
reporting = "https://127.0.0.1:9"
[tls]
ca_bundle = "{tmp_path / 'ca.pem'}"
[identities.lender]
cert = "{tmp_path / 'c.pem'}"
key = "{tmp_path / 'c.key'}"
owner = {{ idCodeType = "BusinessId", idCode = "9900101-0" }}
''')
    _suite(pytester, 'import pytest\n\n@pytest.mark.verifies("RPT-003")\ndef test_x(pcr_clients):\n    """x."""\n')
    result = pytester.runpytest("suites", "--pcr-target", str(target), "--pcr-output", "out")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*unreachable*"])
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["verdict"] == "error" and "unreachable" in summary["error"]


PROFILE_SUITE = '''
import pytest
from hypothesis import given, settings, strategies as st


@pytest.mark.verifies("RPT-005")
def test_suite_runs_under_the_kit_profile():
    """the certification profile, inside the call only."""
    assert settings.get_current_profile_name() == "certification"
    assert settings.default.derandomize and settings.default.max_examples == 25


@pytest.mark.verifies("RPT-005")
@given(st.integers())
def test_suite_hypothesis_test(n):
    """a given-test of the suites gets the profile too."""
    assert settings.default.derandomize
'''

UNRELATED = '''
from hypothesis import given, settings, strategies as st

# The project's own profile (explicit, so the check does not depend on Hypothesis' "ci" profile under CI=true).
settings.register_profile("unrelated", max_examples=100, derandomize=False)
settings.load_profile("unrelated")
SEEN = []


@settings(max_examples=7)
@given(st.integers())
def test_own_settings(n):
    SEEN.append(n)
    assert settings.default.max_examples != 25 and not settings.default.derandomize


def test_z_after_the_suite_tests():
    assert len(SEEN) == 7  # its own max_examples, not the kit profile's 25
    assert settings.get_current_profile_name() == "unrelated"
    assert not settings.default.derandomize and settings.default.max_examples == 100
'''


def test_hypothesis_profile_applies_to_suite_tests_only(pytester):
    """An unrelated Hypothesis test in the same session keeps its own settings, before and after suite tests."""
    _suite(pytester, PROFILE_SUITE)
    pytester.makepyfile(test_a_unrelated_first=UNRELATED.replace("test_z_after_the_suite_tests", "test_before"),
                        test_z_unrelated_last=UNRELATED)
    result = pytester.runpytest("test_a_unrelated_first.py", "suites", "test_z_unrelated_last.py",
                                "--pcr-kit", "lender-reporting", "-p", "no:randomly")
    result.assert_outcomes(passed=6)


def test_junit_broken_is_error_and_requirements_are_properties(pytester):
    """A TargetUnreachable in the test body is an <error> (pytest's junitxml would write a <failure>); an
    AssertionError stays a <failure>; every test case names its requirement IDs as properties."""
    import xml.etree.ElementTree as ET

    _suite(pytester, OUTCOMES)
    result = pytester.runpytest("suites", "--pcr-kit", "lender-reporting", "--pcr-output", "out",
                                "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=2, skipped=1, deselected=1)  # pytest's own counts are unchanged
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["test_broken"].find("failure") is None
    assert "TargetUnreachable" in cases["test_broken"].find("error").get("message")
    assert cases["test_fails"].find("failure") is not None and cases["test_fails"].find("error") is None
    props = {name: [(p.get("name"), p.get("value")) for p in c.iter("property")] for name, c in cases.items()}
    assert props["test_fails"] == [("requirement", "RPT-004")]
    assert props["test_unclaimed"] == [("requirement", "RPT-007")]  # skipped tests carry them too


PARAM_IDS = '''
import pytest


@pytest.mark.verifies("AUT-001")
@pytest.mark.parametrize(("operation", "api", "case"), [
    pytest.param("OrderData", "authorities", {"id": "a"}, id="OrderData::missing-legal-basis"),
    pytest.param("GetDistribution", "authorities", {"id": "b"}, id="GetDistribution::unknown-order"),
])
def test_corpus(operation, api, case):
    """a corpus-like case."""


@pytest.mark.verifies("RPT-005")
def test_plain():
    """not parametrized."""
'''


def _allure_results(folder):
    return {r["name"]: r for r in (json.loads(p.read_text()) for p in folder.glob("*-result.json"))}


def test_allure_full_name_and_grouping_of_ids_with_colons(pytester):
    from allure_commons.utils import md5

    _suite(pytester, PARAM_IDS, name="test_corpus.py")
    result = pytester.runpytest("suites", "--alluredir", "ar", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    results = _allure_results(pytester.path / "ar")
    case = results["test_corpus[OrderData::missing-legal-basis]"]
    nodeid = "suites/test_corpus.py::test_corpus[OrderData::missing-legal-basis]"
    assert case["fullName"] == "suites.test_corpus#test_corpus[OrderData::missing-legal-basis]"
    assert case["testCaseId"] == md5(case["fullName"]) and case["historyId"] == md5(nodeid)
    assert case["titlePath"] == ["suites", "test_corpus.py"]
    labels = {(lb["name"], lb["value"]) for lb in case["labels"]}
    assert {("epic", "authorities"), ("feature", "OrderData"), ("subSuite", "OrderData")} <= labels
    assert not any(lb["value"].startswith("test_corpus[") for lb in case["labels"])
    other = results["test_corpus[GetDistribution::unknown-order]"]
    assert other["historyId"] != case["historyId"] and ("feature", "GetDistribution") in {
        (lb["name"], lb["value"]) for lb in other["labels"]}
    assert results["test_plain"]["fullName"] == "suites.test_corpus#test_plain"


REFUSED = '''
import pytest
from pcr_conformance.client import IdentityRefused

LINE = "identity slot lender: the register refused the client certificate (TLS handshake: x): certificate expired"


@pytest.mark.verifies("RPT-005")
def test_needs_lender_1():
    """broken by the refused slot."""
    raise IdentityRefused("lender", LINE)


@pytest.mark.verifies("RPT-006")
def test_needs_lender_2():
    """broken by the refused slot."""
    raise IdentityRefused("lender", LINE)


@pytest.mark.verifies("RPT-004")
def test_fails():
    """a real failure."""
    raise AssertionError("RPT-004 AddLoans: expected D02, actual Accepted")
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_refused_identity_is_said_once(pytester, workers):
    _suite(pytester, REFUSED)
    result = pytester.runpytest_subprocess("suites", "--pcr-kit", "lender-reporting", "--pcr-output", "out",
                                           "--junitxml", "junit.xml", "-rfE", *workers)
    out = result.stdout.str()
    lines = [ln for ln in out.splitlines() if "identity slot lender:" in ln]
    assert lines == [f"{lines[0].split(' [')[0]} [2 test(s) needing slot lender broken, not failed]"], out
    assert "FAILED suites/test_demo.py::test_fails - AssertionError: RPT-004" in out  # real failures stay listed
    assert "test_needs_lender" not in out
    result.stdout.fnmatch_lines(["*3 failed*"])  # pytest's own count and exit code are unchanged
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["counts"]["broken"] == 2 and summary["counts"]["failed"] == 1
    junit = (pytester.path / "junit.xml").read_text()
    assert 'errors="2"' in junit and 'failures="1"' in junit


def test_a_call_with_a_lone_surrogate_escape_renders_as_utf8() -> None:
    """ENV-018's requests carry "\\ud800": the attachment keeps the escape instead of failing the teardown."""
    from pcr_conformance.calllog import Call

    call = Call(slot="lender", operation="GetLoan", method="POST", url="https://x/GetLoan",
                request_headers={"Content-Type": "application/json"}, request_body='{"number": "\\ud800"}',
                status=500, response_body='{"detail": "\\udfff"}')
    for text in (call.render_request(), call.render_response()):
        text.encode("utf-8")
    assert '"\\ud800"' in call.render_request() and '"\\udfff"' in call.render_response()
    assert '"é"' in Call(slot="l", operation="GetLoan", method="POST", url="u", request_headers={},
                         request_body='{"n": "\\u00e9"}').render_request()



def test_a_large_body_is_shown_as_sent_and_whole() -> None:
    """A robustness case's 20 000-element array stays one line in its call's attachment (indenting it would make
    every kit's report five times heavier), whole in the request section and in the curl command."""
    import json

    from pcr_conformance.calllog import PRETTY_LIMIT, Call

    big = json.dumps({"reports": [0] * 20_000})
    assert len(big) > PRETTY_LIMIT
    call = Call(slot="lender", operation="AddLoans", method="POST", url="https://x/AddLoans",
                request_headers={}, request_body=big, status=400, response_body='{"statusMessage": "x"}')
    assert call.render_request().endswith(big)  # whole and as sent
    assert big in call.render_curl()  # the curl repeats the request exactly
    text = call.render()
    assert text.count(big) == 2 and '{\n  "statusMessage": "x"\n}' in text  # request and curl; short bodies indented
    small = Call(slot="l", operation="GetLoan", method="POST", url="u", request_headers={}, request_body='{"a": 1}')
    assert small.render_request().endswith('{\n  "a": 1\n}')


TWO_CALLS = '''
import pytest
from pcr_conformance.calllog import Call
from pcr_conformance.plugin_state import LOG


@pytest.mark.verifies("RPT-005")
def test_two_calls(request):
    """records two calls into its call log, as its ApiClients would: one answered, one without an answer."""
    log = request.node.stash[LOG]
    log.add(Call(slot="lender", operation="AddLoans", method="POST", url="https://r/AddLoans",
                 request_headers={"BatchReference": "B1"}, request_body='{"idCode": "010594Y9032"}',
                 status=202, response_body='{"batchId": "b-1"}', cacert="/ca.pem", cert="/lender.pem"))
    log.add(Call(slot="lender", operation="GetBatchStatus", method="POST", url="https://r/GetBatchStatus",
                 request_headers={}, request_body='{"batchId": "b-1"}', error="ReadTimeout: timed out"))
'''


def test_a_two_call_test_has_one_attachment_per_call_and_no_call_sequence(pytester):
    """Each call is one attachment holding its request, response and curl sections in that order (issue 12: one
    file per call instead of three, and no separate call sequence); --pcr-mask-pii masks every section."""
    from pcr_conformance.calllog import CURL_HEADING, CURL_NOTE, REQUEST_HEADING, RESPONSE_HEADING

    _suite(pytester, TWO_CALLS)
    result = pytester.runpytest("suites", "--alluredir", "ar", "--pcr-mask-pii")
    result.assert_outcomes(passed=1)
    [test] = _allure_results(pytester.path / "ar").values()
    assert [a["name"] for a in test["attachments"]] == [
        "1. AddLoans (lender): POST -> 202",
        "2. GetBatchStatus (lender): POST -> no response (ReadTimeout: timed out)"]
    assert len(list((pytester.path / "ar").glob("*-attachment*"))) == 2
    texts = [(pytester.path / "ar" / a["source"]).read_text(encoding="utf-8") for a in test["attachments"]]
    sections = []
    for text in texts:
        request, rest = text.removeprefix(REQUEST_HEADING + "\n").split("\n\n" + RESPONSE_HEADING + "\n")
        response, curl = rest.split("\n\n" + CURL_HEADING + "\n")
        sections.append((request, response, curl))
    (request, response, curl), (request2, response2, curl2) = sections
    assert request.startswith("POST https://r/AddLoans\nBatchReference: B1\n\n") and '"idCode": "010594Y****"' in request
    assert response.startswith("HTTP 202") and response.endswith('{\n  "batchId": "b-1"\n}')
    assert curl.startswith(CURL_NOTE) and "--cacert certs/ca.pem" in curl and "--cert certs/lender.pem" in curl
    assert "010594Y****" in curl and "010594Y9032" not in texts[0]
    assert request2.startswith("POST https://r/GetBatchStatus") and '"batchId": "b-1"' in request2
    assert response2.startswith("no response after") and response2.endswith("ReadTimeout: timed out")
    assert "curl -sS -i -X POST https://r/GetBatchStatus" in curl2

READINGS_SUITE = '''
import pytest
from pcr_conformance import judging
from pcr_conformance.errors import RequirementFailure


@pytest.mark.verifies("RPT-016")
def test_modelled_rule_fails():
    """fails on a modelled requirement."""
    raise RequirementFailure("RPT-016", "AddLoans", "D11", "Q11")


@pytest.mark.verifies("RPT-004")
def test_public_rule_fails():
    """fails on a public requirement."""
    raise RequirementFailure("RPT-004", "AddLoans", "rejected", "accepted")


@pytest.mark.verifies("RPT-005")
def test_soft_finding_and_observed_value():
    """passes, leaving a finding and a value."""
    judging.informative("ENV-023", "GetBatchStatus", "acceptedCount", "absent")
    judging.observe("error_codes.D11", "Q11", "AddLoans")
'''


@pytest.mark.parametrize("contract", ["public", "reference"])
def test_modelled_failures_are_informative_under_the_public_reading(pytester, contract):
    _suite(pytester, READINGS_SUITE)
    result = pytester.runpytest("suites", "--pcr-kit", "lender-reporting", "--pcr-output", "out",
                                "--pcr-contract", contract, "--junitxml", "junit.xml", "--alluredir", "allure")
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["contract"] == contract
    tests = summary["tests"]
    modelled = tests["suites/test_demo.py::test_modelled_rule_fails"]
    reqs = summary["requirement_results"]
    assert tests["suites/test_demo.py::test_public_rule_fails"]["outcome"] == "failed"
    assert summary["verdict"] == "not-conformant" and reqs["RPT-004"]["status"] == "failed"
    assert summary["observed_values"]["error_codes.D11"] == {"Q11": ["suites/test_demo.py::test_soft_finding_and_observed_value"]}
    assert reqs["ENV-023"]["informative_findings"][0]["message"].startswith("ENV-023 GetBatchStatus")
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="observed" value="error_codes.D11=Q11"' in junit
    if contract == "public":
        result.assert_outcomes(passed=2, failed=1, deselected=0)
        assert modelled["outcome"] == "informative" and summary["counts"]["informative"] == 1
        assert reqs["RPT-016"]["status"] == "informative" and reqs["RPT-016"]["observed_status"] == "failed"
        assert reqs["ENV-023"]["status"] == "informative" and reqs["ENV-023"]["observed_status"] == "failed"
        assert "RPT-016" not in [g["requirement"] for g in summary["gaps"]]
        assert 'name="informative" value="RPT-016 AddLoans: expected D11, actual Q11"' in junit
        allure = [json.loads(p.read_text()) for p in (pytester.path / "allure").glob("*-result.json")]
        informative = [r for r in allure if r["name"] == "test_modelled_rule_fails"][0]
        assert informative["status"] == "passed"
        assert {"name": "tag", "value": "informative"} in informative["labels"]
    else:
        result.assert_outcomes(passed=1, failed=2)
        assert modelled["outcome"] == "failed" and reqs["RPT-016"]["status"] == "failed"
        assert summary["counts"]["informative"] == 0
