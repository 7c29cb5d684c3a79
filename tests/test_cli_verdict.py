"""Verdicts against the real reference register: a seeded fault fails exactly its requirement in summary.json;
a target with fewer identities ends incomplete (exit 3) naming what is missing; an unclaimed capability makes
its requirements not-applicable and the verdict can still be conformant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pcr_conformance import selftest
from pcr_conformance.collect import collect_verifies

REPO = Path(__file__).resolve().parents[1]

# One fault per family, each breaking one requirement whose tests include one verifying several requirements
# (so a failure there must not fail the others): reporting, extract, authorities, voluntary-ban, security,
# envelope.
FAULTS = {
    "accept_duplicate_loan_number": "RPT-005",
    "extract_includes_ended_loans": "EXT-007",
    "authority_sees_all_credits": "AUT-006",
    "ban_without_consent": "BAN-002",
    "leak_other_lenders_loans": "SEC-007",
    "accept_unknown_members": "ENV-010",
}


@pytest.fixture(scope="module")
def verifies() -> dict[str, list[str]]:
    return collect_verifies()


def test_one_seeded_fault_fails_exactly_its_requirement(verifies, tmp_path: Path) -> None:
    def one(item: tuple[str, str]) -> tuple[str, str, dict]:
        fault, requirement = item
        nodes = selftest.tests_verifying(verifies, requirement)
        workdir = tmp_path / fault
        workdir.mkdir()
        outcome = selftest.run_pytest(nodes, faults=fault, target="reference", kit="register", workdir=workdir,
                                      timeout_s=120)
        assert outcome.failed, f"{fault}: no test failed ({outcome})"
        return fault, requirement, json.loads((workdir / "summary.json").read_text(encoding="utf-8"))

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, FAULTS.items()))
    for fault, requirement, doc in results:
        failed = {rid for rid, status in doc["requirements"].items() if status == "failed"}
        assert failed == {requirement}, (fault, failed)
        assert doc["verdict"] == "not-conformant" and doc["unattributed_failures"] == [], fault
        several = [n for n in selftest.tests_verifying(verifies, requirement) if len(verifies[n]) > 1]
        assert several, f"{fault}: no targeted test verifies several requirements"
        for node in several:
            others = set(verifies[node]) - {requirement}
            assert all(doc["requirements"][r] in ("passed", "inconclusive") for r in others), (fault, node)
        assert any(doc["tests"][n]["failed_requirements"] == [requirement] for n in doc["tests"]), fault


KIT = '''name = "verdict-probe"
title = "Verdict probe"
actors = ["nobody"]
include = ["RPT-005", "RPT-007", "SEC-007", "SEC-008", "AUT-006", "EXT-004"]
'''


def _run(tmp_path: Path, target_text: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    (tmp_path / "kit.toml").write_text(KIT, encoding="utf-8")
    (tmp_path / "t.toml").write_text(target_text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PCR_REGISTER_FAULTS"}
    proc = subprocess.run([sys.executable, "-m", "pcr_conformance.cli", "run", "--target", str(tmp_path / "t.toml"),
                           "--kit", str(tmp_path / "kit.toml"), "--output", str(tmp_path / "reports"), "--no-html"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    doc = json.loads((tmp_path / "reports" / "verdict-probe" / "t" / "summary.json").read_text(encoding="utf-8"))
    return proc, doc


def test_fewer_identities_end_incomplete_with_exit_3_naming_each_gap(tmp_path: Path) -> None:
    proc, doc = _run(tmp_path, 'name = "t"\nembedded = true\n'
                               'capabilities = ["reporting", "extract", "authorities", "voluntary-ban", "restart"]\n'
                               'slots = ["lender", "lender_extract", "authority"]\n')
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr
    assert doc["verdict"] == "incomplete"
    gaps = {g["requirement"]: g for g in doc["gaps"]}
    assert {"SEC-007", "SEC-008", "AUT-006", "EXT-004"} <= set(gaps), gaps
    assert gaps["SEC-008"]["reason"] == "no certificate for slot second_lender"
    assert "no certificate for slot consumer_authority" in gaps["AUT-006"]["reason"]
    assert "no certificate for slot noperm_extract" in gaps["EXT-004"]["reason"]
    assert doc["requirements"]["RPT-005"] == "passed"
    assert doc["requirements"]["RPT-007"] == "not-applicable" and "RPT-007" not in gaps  # transfer not claimed
    out = proc.stdout
    assert "incomplete" in out and "SEC-008 skipped (no certificate for slot second_lender)" in out, out[-3000:]
    # The evidence: only the configured slots, each with its certificate's subject, fingerprint and notAfter.
    assert set(doc["identities"]) == {"lender", "lender_extract", "authority"}
    lender = doc["identities"]["lender"]
    assert lender["subject"] and len(lender["sha256"].split(":")) == 32 and lender["not_after"].endswith("Z")
    assert lender["role"] == "reporting" and "key" not in lender
    assert doc["capabilities"] == ["reporting", "extract", "authorities", "voluntary-ban", "restart"]
    assert doc["base_urls"]["reporting"].startswith("https://127.0.0.1:")
    assert doc["started_utc"] <= doc["ended_utc"]


def test_unclaimed_capability_is_not_applicable_and_the_verdict_conformant(tmp_path: Path) -> None:
    proc, doc = _run(tmp_path, 'name = "t"\nembedded = true\n'
                               'capabilities = ["reporting", "extract", "authorities", "voluntary-ban", "restart"]\n')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert doc["verdict"] == "conformant" and doc["gaps"] == []
    assert doc["requirements"]["RPT-007"] == "not-applicable"
    assert {doc["requirements"][r] for r in ("RPT-005", "SEC-007", "SEC-008", "AUT-006", "EXT-004")} == {"passed"}
    assert len(doc["identities"]) == 10 and "expired" in doc["extra_certificates"]
