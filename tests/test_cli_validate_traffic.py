"""`validate --response` and `validate --har` on answers recorded from the reference register and from its
public-minimal variant (a different correct register), under both readings of the contract.

The answers are recorded here, in the test, from registers started as the embedded target starts them; only
artificial identity codes from the register's own pool are used.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcr_conformance import embedded, messages
from pcr_conformance.cli import main
from pcr_conformance.client import ssl_context
from pcr_conformance.target import load_target, replace

pytestmark = pytest.mark.slow


def _post(client: httpx.Client, base: str, operation: str, body: dict[str, Any],
          headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(f"{base}/{operation}", json=body, headers=headers or {})


def _record(variant: str, folder: Path) -> dict[str, Any]:
    """Start the register (in `variant`), make a few calls as the lender, write each answer as a file and the
    whole exchange as a HAR recording; return {name: (operation, status, path)} and the HAR path."""
    target = replace(load_target("reference"), variant=variant)
    reg = embedded.start(target)
    try:
        t = reg.target
        lender, extract = t.identities["lender"], t.identities["lender_extract"]
        pool = json.loads(Path(t.pool).read_text(encoding="utf-8"))
        person = next(p["idCode"] for p in pool["persons"] if "income" in p.get("tags", []))
        envelope = {"targetEnvironment": "Test", "owner": dict(lender.owner)}
        entries, answers = [], {}
        ref = f"Batch_traffic_{uuid.uuid4().hex[:8]}"
        loan = messages.lump_sum_loan({"type": "Other", "number": f"PCR-TRAFFIC-{uuid.uuid4().hex[:6]}"}, person,
                                      "R-traffic-1")
        calls = [("add", "AddLoans", lender, {**envelope, "loans": [loan]}, {"BatchReference": ref}),
                 ("status", "GetBatchStatus", lender, {**envelope, "batchReference": ref}, {}),
                 ("unknown-batch", "GetBatchStatus", lender, {**envelope, "batchReference": ref + "-none"}, {}),
                 ("extract", "GetCreditRegisterExtract", extract,
                  {"targetEnvironment": "Test", "owner": dict(extract.owner),
                   "request": {"idCodeType": "PersonalIdentityCode", "idCode": person,
                               "creditRegisterExtractPurpose": ["NewConsumerCredit"]}}, {})]
        for name, operation, who, body, headers in calls:
            base = t.base_url("extract" if operation == "GetCreditRegisterExtract" else "reporting")
            with httpx.Client(verify=ssl_context(t.tls.ca_bundle, who.cert, who.key), timeout=10) as client:
                if name == "status":  # the batch is processed asynchronously: wait for a final state
                    for _ in range(100):
                        resp = _post(client, base, operation, body)
                        if str(resp.json().get("batchStatus", "")).startswith("Finished"):
                            break
                else:
                    resp = _post(client, base, operation, body, headers)
            path = folder / f"{name}.json"
            path.write_text(resp.text, encoding="utf-8")
            answers[name] = (operation, resp.status_code, path)
            entries.append({"request": {"method": "POST", "url": f"{base}/{operation}",
                                        "postData": {"mimeType": "application/json", "text": json.dumps(body)}},
                            "response": {"status": resp.status_code,
                                         "content": {"mimeType": resp.headers.get("content-type", ""),
                                                     "text": resp.text}}})
        har = folder / "recording.har"
        har.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}), encoding="utf-8")
        return {"answers": answers, "har": har}
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = {}
    for variant in ("reference", "public-minimal"):
        folder = tmp_path_factory.mktemp(variant)
        out[variant] = _record(variant, folder)
    return out


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    out, _err = capsys.readouterr()
    return code, out


@pytest.mark.parametrize("name", ["add", "status", "unknown-batch", "extract"])
def test_reference_register_answers_are_valid_under_both_readings(recorded, name, capsys) -> None:
    operation, status, path = recorded["reference"]["answers"][name]
    for contract in ("public", "reference"):
        code, out = _validate(capsys, "--response", "--operation", operation, "--status", str(status),
                              "--contract", contract, str(path))
        assert code == 0 and "valid" in out and "warning" not in out, (contract, out)


@pytest.mark.parametrize("name", ["add", "status", "unknown-batch", "extract"])
def test_variant_answers_are_valid_publicly_and_differ_only_in_modelled_parts(recorded, name, capsys) -> None:
    operation, status, path = recorded["public-minimal"]["answers"][name]
    code, out = _validate(capsys, "--response", "--operation", operation, "--status", str(status), str(path))
    assert code == 0, out  # the public reading (the default) finds nothing wrong
    strict, strict_out = _validate(capsys, "--response", "--operation", operation, "--status", str(status),
                                   "--contract", "reference", str(path))
    if name == "unknown-batch":
        # An error answer: the error object is public; only the code differs (Q60 for the model's D60), which
        # the schema's pattern allows.
        assert strict == 0, strict_out
        assert json.loads(path.read_text())["errorResponses"][0]["errorCode"] == "Q60"
        return
    # What the variant leaves out or writes differently is modelled: warnings publicly, errors by reference.
    assert "warning ENV-023" in out and "(reference reading only)" in out, out
    assert strict == 1 and "ENV-023" in strict_out and "ENV-014" not in strict_out, strict_out


def test_har_of_the_reference_register_is_valid(recorded, capsys) -> None:
    code, out = _validate(capsys, "--har", str(recorded["reference"]["har"]))
    assert code == 0, out
    assert out.count("valid") == 8 and "warning" not in out, out  # four requests, four answers


def test_har_of_the_variant_is_valid_publicly_with_warnings_and_invalid_by_reference(recorded, capsys) -> None:
    har = str(recorded["public-minimal"]["har"])
    code, out = _validate(capsys, "--har", har)
    assert code == 0 and "warning ENV-023" in out, out
    strict, strict_out = _validate(capsys, "--har", har, "--contract", "reference")
    assert strict == 1 and "ENV-023" in strict_out, strict_out
    assert "GetBatchStatus HTTP 200 answer" in strict_out and "#4 GetCreditRegisterExtract response" in strict_out


def test_a_broken_answer_is_an_error_under_the_public_reading(tmp_path: Path, capsys) -> None:
    """A public member of the wrong type is no modelled detail: an error under either reading."""
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"batchStatus": "FinishedSuccess", "reportCount": "three"}), encoding="utf-8")
    code, out = _validate(capsys, "--response", "--operation", "GetBatchStatus", str(path))
    assert code == 1 and "ENV-014" in out and "/reportCount" in out, out
    minimal = tmp_path / "minimal.json"
    minimal.write_text(json.dumps({"batchStatus": "InQueue"}), encoding="utf-8")
    code, out = _validate(capsys, "--response", "--operation", "GetBatchStatus", str(minimal))
    assert code == 0 and "warning ENV-023" in out, out  # minimal answer, another processing literal


def test_response_needs_an_operation(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}", encoding="utf-8")
    code = main(["validate", "--response", str(path)])
    assert code == 2 and "--operation" in capsys.readouterr().err


def test_profile_learn_drafts_the_values_the_variant_showed(tmp_path: Path) -> None:
    """`profile --learn` on a small kit (unknown batch and unknown loan) against the variant: a loadable draft
    naming the variant's codes for the modelled rules, each with the test that saw it."""
    import subprocess
    import sys

    from pcr_conformance import impl_profile

    kit = tmp_path / "probe.toml"
    kit.write_text('name = "probe"\ntitle = "Probe"\nactors = ["nobody"]\ninclude = ["BAT-007", "RPT-039"]\n',
                   encoding="utf-8")
    draft = tmp_path / "draft.toml"
    proc = subprocess.run([sys.executable, "-m", "pcr_conformance.cli", "profile", "--learn", "--target",
                           "public-minimal", "--kit", str(kit), "--output", str(draft)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    profile = impl_profile.load_profile(str(draft))
    assert profile.code_for("D60") == "Q60" and profile.code_for("D11") == "Q11"
    assert "D02" not in profile.error_codes  # public codes are the contract's, never a profile's
    assert "# seen by suites/" in draft.read_text()
