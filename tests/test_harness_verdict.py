"""Attribution by the named requirement, the four verdicts and the evidence fields of summary.json, on small
generated suites through pytester (no register needed: these tests never ask for a client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcr_conformance import summary
from pcr_conformance.errors import RequirementFailure, requirement_prefix
from pcr_conformance.kits import Kit, load_requirements
from pcr_conformance.outcomes import named_requirements

pytest_plugins = ["pytester"]


def _run(pytester, source: str, *, include: list[str], capabilities: list[str] | None = None,
         extra: tuple[str, ...] = ()) -> tuple[dict, object]:
    """Run `source` as suites/test_demo.py with a kit of exactly `include` (every one must), against an
    embedded target claiming `capabilities` (default: all). Returns (summary.json, the pytest result)."""
    pytester.makeini("[pytest]\npcr_suites = suites\n")
    (pytester.path / "suites").mkdir(exist_ok=True)
    (pytester.path / "suites" / "test_demo.py").write_text(source, encoding="utf-8")
    kit = pytester.path / "k.toml"
    kit.write_text(f'name = "k"\ntitle = "K"\nactors = ["nobody"]\ninclude = {json.dumps(include)}\n')
    caps = capabilities if capabilities is not None else ["reporting", "extract", "authorities", "voluntary-ban",
                                                           "transfer", "restart"]
    target = pytester.path / "t.toml"
    target.write_text(f'name = "t"\nembedded = true\ncapabilities = {json.dumps(caps)}\n')
    result = pytester.runpytest("suites", "--pcr-kit", str(kit), "--pcr-target", str(target), "--pcr-output", "out",
                                *extra)
    return json.loads((pytester.path / "out" / "summary.json").read_text()), result


HEADER = "import pytest\nfrom pcr_conformance import expect\n\n"


def test_a_failure_fails_only_the_requirement_it_names(pytester):
    source = HEADER + '''
@pytest.mark.verifies("RPT-004", "RPT-005", "RPT-006")
def test_several():
    """fails on RPT-004."""
    expect.fail("RPT-004", "AddLoans", "report rejected with D02", "accepted")


@pytest.mark.verifies("RPT-005")
def test_shows_rpt_005():
    """passes."""
'''
    doc, _ = _run(pytester, source, include=["RPT-004", "RPT-005", "RPT-006"])
    assert doc["requirements"] == {"RPT-004": "failed", "RPT-005": "passed", "RPT-006": "inconclusive"}
    assert doc["tests"]["suites/test_demo.py::test_several"]["failed_requirements"] == ["RPT-004"]
    assert doc["tests"]["suites/test_demo.py::test_several"]["reason"].startswith("RPT-004 AddLoans: expected")
    details = doc["requirement_results"]
    assert details["RPT-004"]["tests"] == ["suites/test_demo.py::test_several"]
    assert details["RPT-006"]["reason"] == "its test(s) stopped on RPT-004 before showing it"
    assert doc["unattributed_failures"] == [] and doc["verdict"] == "not-conformant"


def test_a_failure_naming_a_requirement_the_test_does_not_verify_fails_that_one(pytester):
    """A batch stuck in a reporting test (client.wait_batch raises BAT-010) fails BAT-010, not RPT-004."""
    source = HEADER + '''
@pytest.mark.verifies("RPT-004")
def test_stuck():
    """a helper raises BAT-010."""
    raise expect.RequirementFailure("BAT-010", "GetBatchStatus", "a final state within 1 s", "'Processing'")
'''
    doc, _ = _run(pytester, source, include=["RPT-004", "BAT-010"])
    assert doc["requirements"] == {"BAT-010": "failed", "RPT-004": "inconclusive"}


def test_plain_assertion_errors_are_attributed_by_their_prefix(pytester):
    """The fuzz checks raise plain AssertionErrors, several joined by newlines; each line's ID counts."""
    source = HEADER + '''
@pytest.mark.verifies("ENV-005", "ENV-014", "ENV-015")
def test_fuzz_like():
    """two checks fail."""
    raise AssertionError("ENV-005 POST /AddLoans -> 400: expected the error object, actual {}\\n"
                         "ENV-014 POST /AddLoans -> 400: expected a documented status, actual 418")
'''
    doc, _ = _run(pytester, source, include=["ENV-005", "ENV-014", "ENV-015"])
    assert doc["requirements"] == {"ENV-005": "failed", "ENV-014": "failed", "ENV-015": "inconclusive"}


def test_a_failure_naming_no_requirement_is_unattributed_and_leaves_the_verdict_incomplete(pytester):
    source = HEADER + '''
@pytest.mark.verifies("RPT-004", "RPT-005")
def test_bare_assert():
    """a bare assert."""
    assert 1 == 2


@pytest.mark.verifies("RPT-006")
def test_unknown_id():
    """names an ID the register does not have."""
    raise AssertionError("XYZ-999 AddLoans: expected x, actual y")


@pytest.mark.verifies("RPT-006")
def test_outside_kit():
    """names a requirement the kit does not select."""
    expect.fail("EXT-001", "GetCreditRegisterExtract", "200", "500")
'''
    doc, result = _run(pytester, source, include=["RPT-004", "RPT-005", "RPT-006"])
    result.assert_outcomes(failed=3)
    assert doc["requirements"] == {"RPT-004": "inconclusive", "RPT-005": "inconclusive", "RPT-006": "inconclusive"}
    why = {u["test"].rsplit("::", 1)[1]: u["why"] for u in doc["unattributed_failures"]}
    assert why == {"test_bare_assert": "the failure names no requirement",
                   "test_unknown_id": "the failure names XYZ-999, not a known requirement",
                   "test_outside_kit": "the failure names EXT-001, which kit k does not select"}
    assert doc["verdict"] == "incomplete" and doc["counts"]["failed"] == 3
    assert {g["requirement"] for g in doc["gaps"]} == {"RPT-004", "RPT-005", "RPT-006"}


def test_skipped_must_requirements_make_the_verdict_incomplete_naming_the_slot(pytester):
    source = HEADER + '''
@pytest.mark.verifies("SEC-007")
def test_needs_second_lender():
    """needs a slot the target lacks."""
    pytest.skip("not claimed: identity slot 'second_lender' is not configured in target 't'")


@pytest.mark.verifies("RPT-004")
def test_passes():
    """passes."""


@pytest.mark.verifies("ENV-016")
def test_should_level_gap_does_not_decide():
    """a should-requirement is not deciding."""
    pytest.skip("not claimed: identity slot 'kela' is not configured in target 't'")
'''
    doc, _ = _run(pytester, source, include=["SEC-007", "RPT-004", "ENV-016"])
    assert doc["requirements"] == {"ENV-016": "skipped", "RPT-004": "passed", "SEC-007": "skipped"}
    assert doc["verdict"] == "incomplete" and doc["error"] is None
    assert [(g["requirement"], g["status"], g["reason"]) for g in doc["gaps"]] == [
        ("SEC-007", "skipped", "no certificate for slot second_lender")]
    assert doc["gaps"][0]["needs"] == ["no certificate for slot second_lender"]


def test_unclaimed_capability_makes_requirements_not_applicable_and_can_be_conformant(pytester):
    source = HEADER + '''
@pytest.mark.verifies("RPT-007")
@pytest.mark.capability("transfer")
def test_transfer():
    """needs the transfer capability."""


@pytest.mark.verifies("EXT-001")
@pytest.mark.capability("extract")
def test_extract():
    """needs the extract capability."""


@pytest.mark.verifies("RPT-004")
def test_passes():
    """passes."""
'''
    doc, result = _run(pytester, source, include=["RPT-007", "EXT-001", "RPT-004", "BAT-011"],
                       capabilities=["reporting"])
    result.assert_outcomes(passed=1, skipped=2)
    assert doc["requirements"] == {"BAT-011": "not-applicable", "EXT-001": "not-applicable",
                                   "RPT-004": "passed", "RPT-007": "not-applicable"}
    assert doc["requirement_results"]["RPT-007"]["reason"] == "applies when the target claims transfer"
    assert doc["verdict"] == "conformant" and doc["gaps"] == []
    assert doc["capabilities"] == ["reporting"]
    assert doc["requirement_counts"]["not-applicable"] == 3


def test_every_test_broken_is_error_and_some_broken_is_incomplete(pytester):
    broken = HEADER + '''
from pcr_conformance.errors import TargetUnreachable


@pytest.mark.verifies("RPT-004")
def test_broken():
    """could not run."""
    raise TargetUnreachable("AddLoans: connection refused", kind="connect")
'''
    doc, _ = _run(pytester, broken, include=["RPT-004"])
    assert doc["verdict"] == "error" and "every test that ran was broken" in doc["error"]
    assert doc["requirements"] == {"RPT-004": "not-run"}
    some = broken + '''

@pytest.mark.verifies("RPT-005")
def test_passes():
    """passes."""
'''
    doc, _ = _run(pytester, some, include=["RPT-004", "RPT-005"])
    assert doc["verdict"] == "incomplete"
    assert doc["gaps"][0]["reason"] == "its test(s) could not run: TargetUnreachable: AddLoans: connection refused"


def test_summary_carries_the_evidence_fields(pytester):
    source = HEADER + '''
@pytest.mark.verifies("RPT-004")
def test_passes():
    """passes."""
'''
    doc, _ = _run(pytester, source, include=["RPT-004"])
    assert doc["verdict"] == "conformant"
    for key in ("started_utc", "ended_utc"):
        assert len(doc[key]) == 20 and doc[key].endswith("Z"), doc[key]
    assert doc["started_utc"] <= doc["ended_utc"]
    from pcr_conformance.cli import version
    assert doc["tool_version"] == version()
    assert doc["git_commit"] is None or len(doc["git_commit"]) == 40  # the checkout's HEAD when run from one
    assert doc["spec_versions"]["reporting.yaml"] and set(doc["spec_versions"]) <= set(doc["spec_hashes"])
    assert doc["capabilities"] and doc["base_urls"] == {} and doc["identities"] == {}  # the register never started
    assert doc["profile"] == "certification" and doc["seed"] is not None and doc["run_id"]
    for old in ("kit", "kit_title", "target", "counts", "deciding_levels", "tests", "known_deviations",
                "stakeholder", "suite_version", "duration_s", "unmatched_expectations"):
        assert old in doc, old


# ---- units --------------------------------------------------------------------------------------------


def test_requirement_failure_carries_its_fields_and_message():
    e = RequirementFailure("RPT-004", "AddLoans", "report rejected with D02", "accepted")
    assert isinstance(e, AssertionError) and e.requirement == "RPT-004" and e.operation == "AddLoans"
    assert str(e) == "RPT-004 AddLoans: expected report rejected with D02, actual accepted"
    import pickle
    again = pickle.loads(pickle.dumps(e))
    assert again.requirement == "RPT-004" and str(again) == str(e)
    assert requirement_prefix(" RPT-004 AddLoans: x") == "RPT-004" and requirement_prefix("assert 1 == 2") is None


def test_named_requirements_of_groups_and_plain_messages():
    group = ExceptionGroup("two", [RequirementFailure("SEC-007", "GetLoan", "404", "200"),
                                   AssertionError("ENV-005 GetLoan: expected x, actual y")])
    assert named_requirements(group) == ["SEC-007", "ENV-005"]
    assert named_requirements(AssertionError("assert 200 == 404")) == []
    assert named_requirements(AssertionError("RPT-004AddLoans no space")) == []


def test_expect_fail_raises_requirement_failure():
    from pcr_conformance import expect

    with pytest.raises(RequirementFailure) as info:
        expect.that(False, "RPT-004", "AddLoans", "D02", "accepted")
    assert info.value.requirement == "RPT-004" and info.value.expected == "D02"


@pytest.mark.parametrize(("reason", "short"), [
    ("not claimed: identity slot 'second_lender' is not configured in target 'x'", "no certificate for slot second_lender"),
    ("not claimed: target 'x' does not claim capability 'transfer'", "capability transfer not claimed"),
    ("not claimed: extra_certificates.expired is not configured in target 'x'",
     "no expired certificate (extra_certificates.expired)"),
    ("not claimed: target 'x' is read-only and this test changes data", "the target is read-only"),
    ("not claimed: the data pool has no person tagged 'deceased'", "the data pool has no person tagged 'deceased'"),
])
def test_short_reasons(reason, short):
    assert summary.short_reason(reason) == short


def test_known_deviation_without_a_named_requirement_counts_for_the_tests_requirements():
    reqs = load_requirements()
    kit = Kit(name="k", title="K", actors=("nobody",), include=("RPT-004", "RPT-005"))
    selected = kit.selected(reqs)
    verifies = {"t::a": ["RPT-004", "RPT-005"]}
    statuses = summary.requirement_statuses(selected, verifies, {"t::a": "xfailed"}, {"t::a": []}, {})
    assert statuses == {"RPT-004": "failed", "RPT-005": "failed"}
    statuses = summary.requirement_statuses(selected, verifies, {"t::a": "xfailed"}, {"t::a": ["RPT-004"]}, {})
    assert statuses == {"RPT-004": "failed", "RPT-005": "inconclusive"}


def test_worst_exit_code_order():
    from pcr_conformance.cli import worst_exit_code

    assert worst_exit_code([0, 3, 1]) == 1 and worst_exit_code([3, 0]) == 3 and worst_exit_code([1, 2, 3]) == 2
    assert worst_exit_code([0, 0]) == 0 and worst_exit_code([]) == 0


def test_incomplete_kit_outcome_has_exit_3_and_names_the_gaps(tmp_path: Path):
    from pcr_conformance.commands.run import RunConfig, _outcome

    doc = {"kit": "k", "target": "t", "verdict": "incomplete", "counts": {"passed": 1}, "requirements": {},
           "gaps": [{"requirement": "SEC-007", "status": "skipped", "reason": "no certificate for slot second_lender"}]}
    (tmp_path / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    config = RunConfig(target="t", target_name="t", kits=("k",), kit_args=("k",), profile="certification",
                       output=tmp_path, html=False, mask_pii=False, timeout_s=1, suites=tmp_path)
    outcome = _outcome("k", config, 0, "", tmp_path)
    assert outcome.exit_code == 3 and not outcome.fatal
    assert outcome.reason == ("incomplete: 1 deciding requirement(s) not shown: SEC-007 skipped "
                              "(no certificate for slot second_lender)")


def test_certificate_evidence(tmp_path: Path):
    trustme = pytest.importorskip("trustme")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from pcr_conformance import evidence

    ca = trustme.CA()
    cert = ca.issue_cert("lender.example.invalid")
    pem = tmp_path / "c.pem"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    info = evidence.certificate_info(str(pem))
    parsed = x509.load_pem_x509_certificate(pem.read_bytes())
    assert info["sha256"] == parsed.fingerprint(hashes.SHA256()).hex(":").upper()
    assert info["subject"] == parsed.subject.rfc4514_string() and info["not_after"].endswith("Z")
    assert "key" not in json.dumps(info).lower().replace("keyusage", "")
    assert "error" in evidence.certificate_info(str(tmp_path / "missing.pem"))


def test_git_commit_of_a_checkout_and_of_no_checkout(tmp_path: Path):
    from pcr_conformance import evidence, resources

    assert evidence.git_commit(tmp_path) == {"git_commit": None, "git_dirty": None}
    root = resources.checkout()
    if root is not None and (root / ".git").exists():
        got = evidence.git_commit(root)
        assert len(got["git_commit"]) == 40 and isinstance(got["git_dirty"], bool)


def test_selftest_names_a_fault_by_the_failed_requirement_of_summary_json(tmp_path: Path):
    from pcr_conformance import selftest

    doc = {"verdict": "not-conformant", "requirements": {"RPT-004": "failed", "RPT-005": "inconclusive",
                                                         "ENV-014": "failed"}}
    (tmp_path / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    assert selftest.read_summary(tmp_path / "summary.json") == ("not-conformant", ("ENV-014", "RPT-004"))
    assert selftest.read_summary(tmp_path / "none.json") == ("", ())
    fault = selftest.Fault("skip_d02", "RPT-004", "")
    result = selftest.FaultResult(fault, tests_selected=2)
    run = selftest.RunOutcome(1, 1, 0, 1, ("RPT-004 AddLoans: x",), 1.0, verdict="not-conformant",
                              failed_requirements=("ENV-014", "RPT-004"), failing_tests=("suites.a::test_x",))
    selftest._record(result, run)
    assert result.detected and result.named and result.also_failed == ["ENV-014"]
    assert result.tests_failed == 1 and result.failing_tests == ["suites.a::test_x"]
    control = selftest.RunOutcome(0, 0, 0, 301, (), 50.0, verdict="conformant")
    assert selftest.selftest_passed([result], control)
    assert not selftest.selftest_passed([result], selftest.RunOutcome(0, 0, 0, 3, (), 1.0, verdict="incomplete"))
    matrix = selftest.render_matrix([result], control)
    assert "ENV-014" in matrix and "and only it failed for 0/1" in matrix and "verdict conformant" in matrix
    assert "WARNING: 1 fault(s) caught by one test only" in matrix and "skip_d02" in matrix.splitlines()[-3]
    assert selftest.to_json([result], control)["score"] == {"detected": 1, "named": 1, "exact": 0, "total": 1,
                                                            "public_total": 1, "public_detected": 1}


def test_selftest_counts_distinct_failing_tests_over_both_passes(tmp_path: Path) -> None:
    from pcr_conformance import selftest

    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite><testcase classname="suites.x" name="test_a"><failure message="RPT-004 m"/>'
        '</testcase><testcase classname="suites.x" name="test_b"/><testcase classname="suites.y" name="test_c">'
        '<failure message="RPT-004 n"/></testcase></testsuite></testsuites>', encoding="utf-8")
    assert selftest.failing_test_ids(tmp_path / "junit.xml") == ("suites.x::test_a", "suites.y::test_c")
    assert selftest.failing_test_ids(tmp_path / "none.xml") == ()
    result = selftest.FaultResult(selftest.Fault("skip_d02", "RPT-004", ""), tests_selected=1)
    targeted = selftest.outcome_of(tmp_path, 1, 1.0)
    selftest._record(result, targeted)
    selftest._record(result, selftest.RunOutcome(1, 2, 0, 5, (), 2.0, failing_tests=("suites.x::test_a", "suites.z::t")))
    assert result.tests_failed == 3  # test_a failed in both passes: once
    assert selftest.to_json([result], selftest.RunOutcome(0, 0, 0, 1, (), 1.0))["faults"][0]["failing_tests"] == [
        "suites.x::test_a", "suites.y::test_c", "suites.z::t"]


def test_selftest_fails_for_a_testable_requirement_without_a_fault_and_warns_for_one_test_only() -> None:
    from pcr_conformance import selftest

    fault = selftest.Fault("skip_d02", "RPT-004", "")
    result = selftest.FaultResult(fault, tests_selected=2, detected=True, named=True, tests_failed=2,
                                  failing_tests=["a::x", "a::y"])
    control = selftest.RunOutcome(0, 0, 0, 301, (), 50.0, verdict="conformant")
    assert selftest.selftest_passed([result], control, unproven=[])
    assert not selftest.selftest_passed([result], control, unproven=["EXT-005"])
    matrix = selftest.render_matrix([result], control, unproven=["EXT-005"])
    assert "testable requirements without a fault: 1" in matrix and "EXT-005" in matrix
    assert matrix.splitlines()[-1] == "selftest: 2 passed, 1 failed" and "WARNING" not in matrix
    assert "not checked (only some faults ran)" in selftest.render_matrix([result], control)
    doc = selftest.to_json([result], control, unproven=["EXT-005"])
    assert doc["unproven_requirements"] == ["EXT-005"] and not doc["passed"] and doc["single_test_faults"] == []
    # The register's own testable requirements: those with a fault are never listed, not_tested ones never.
    from pcr_conformance import kits

    # The register kit's requirements: the client requirements (CLI-…) are proven by seeded client faults.
    reqs = kits.load_kit("register").selected(kits.load_requirements())
    assert not any(r.startswith("CLI-") for r in reqs)
    missing = selftest.unproven_requirements([fault])
    assert "RPT-004" not in missing and all(not reqs[r].not_tested for r in missing)
    assert set(missing) | {"RPT-004"} == {r for r, q in reqs.items() if not q.not_tested}


def test_selftest_runs_fuzz_tests_only_for_a_fault_the_authored_tests_miss() -> None:
    from pcr_conformance import selftest

    verifies = {"suites/corpus/test_corpus.py::test_corpus[a]": ["ENV-015"],
                "suites/fuzz/test_extract.py::test_fuzz[GetLoan]": ["ENV-015", "SEC-011"],
                "suites/security/test_input.py::test_x": ["SEC-011"]}
    assert selftest.stages(verifies, "ENV-015") == [
        ("targeted", ["suites/corpus/test_corpus.py::test_corpus[a]"]),
        ("fuzz", ["suites/fuzz/test_extract.py::test_fuzz[GetLoan]"]), ("kit", [])]
    assert selftest.stages(verifies, "ENV-023") == [("kit", [])]
    assert [label for label, _ in selftest.stages({"suites/fuzz/t.py::f": ["ENV-014"]}, "ENV-014")] == ["fuzz", "kit"]
