"""A fuzz test's Allure result carries its calls like every other test's: the failing case and a sample of the
passing ones, each as one attachment holding its request, response and curl. Run on the real fuzz suite against
the reference register with a seeded fault (error answers without a correlationId, ENV-005), so a case fails."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from pcr_conformance import resources
from pcr_conformance.calllog import CURL_HEADING, REQUEST_HEADING, RESPONSE_HEADING

REPO = Path(__file__).resolve().parents[1]


def test_fuzz_attaches_failing_and_sampled_passing_cases(tmp_path: Path) -> None:
    cmd = [sys.executable, "-P", "-m", "pytest", str(REPO / "suites" / "fuzz" / "test_authorities.py"),
           *resources.suites_pytest_args(), "-k", "OrderData", "--pcr-kit", "authority",
           "--alluredir", str(tmp_path / "ar"), "--junitxml", str(tmp_path / "junit.xml"),
           "--pcr-output", str(tmp_path), "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PCR_REGISTER_FAULTS": "missing_correlation_id"})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    [result] = [json.loads(p.read_text()) for p in (tmp_path / "ar").glob("*-result.json")]
    assert result["name"] == "test_fuzz[OrderData]" and result["status"] == "failed"
    assert result["fullName"] == "suites.fuzz.test_authorities#test_fuzz[OrderData]"
    assert ("epic", "authorities") in {(lb["name"], lb["value"]) for lb in result["labels"]}
    names = [a["name"] for a in result["attachments"]]
    failing = [n for n in names if "failing case: ENV-005" in n]
    passing = [n for n in names if "passing case" in n]
    assert len(failing) == 1 and re.fullmatch(r"\d+\. OrderData \(authority, failing case: ENV-005.*\): POST -> 4\d\d",
                                              failing[0]), names  # one case, one attachment
    assert passing and all(re.fullmatch(r"\d+\. OrderData \(authority, passing case \d+\): POST -> \d{3}", n)
                           for n in passing), names
    assert "call sequence" not in names
    files = {a["name"]: tmp_path / "ar" / a["source"] for a in result["attachments"]}
    text = files[failing[0]].read_text(encoding="utf-8")
    request, _, rest = text.removeprefix(REQUEST_HEADING + "\n").partition("\n\n" + RESPONSE_HEADING + "\n")
    response, _, curl = rest.partition("\n\n" + CURL_HEADING + "\n")
    assert request.startswith("POST https://127.0.0.1:") and "/OrderData" in request.splitlines()[0]
    assert "--cacert certs/ca.pem" in curl and "--cert certs/authority.pem" in curl and "pcr-embedded" not in curl
    assert response.startswith("HTTP 4") and "correlationId" not in response
    case = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite/testcase")
    assert case.find("failure") is not None  # a check failure is a failure, not an error
    assert {p.get("value") for p in case.iter("property") if p.get("name") == "requirement"} == \
        {"ENV-005", "ENV-014", "ENV-015", "ENV-023", "SEC-011"}
