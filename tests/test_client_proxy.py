"""The client side of the contract (docs/client-testing.md): `pcr-conformance proxy` in front of the embedded
register judges the reference client (tests/reference_client.py) conformant, with the HTML and HAR written, and
each seeded client fault not-conformant naming the requirement it breaks; plus the checks one by one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcr_conformance import client_rules, contract, embedded, kits, proxy, scenario, specs, traffic
from pcr_conformance.errors import HarnessError
from tests.reference_client import FAULTS, borrower, persons_of

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "tests" / "reference_client.py"
FULL_SCENARIO = ROOT / "suites" / "client" / "scenarios" / "lender-errors.toml"
# The scripted behaviour a fault needs to show at all (most need none: the plain register).
FAULT_SCENARIOS = {
    "tight_polling": "processing_s = 1.5\n",
    "resend_whole_batch": "partial_every = 3\n",
    "ignore_retry_after": "[rate_limit]\nevery = 2\nretry_after_s = 1\n",
}


def _proxy_run(tmp: Path, fault: str = "", scenario_file: Path | None = None, html: bool = False) -> tuple[int, str]:
    """The proxy with the reference client through it; (the proxy's exit code, its output)."""
    out = tmp / "reports"
    cmd = [sys.executable, "-m", "pcr_conformance.cli", "proxy", "--port", "0", "--output", str(out),
           "--idle-timeout", "30"]
    if scenario_file is not None:
        cmd += ["--scenario", str(scenario_file)]
    if not html:
        cmd.append("--no-html")
    log = (tmp / "proxy.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    info = out / "proxy" / "reference" / "proxy.json"
    try:
        deadline = time.monotonic() + 60
        while not info.exists():
            assert proc.poll() is None, (tmp / "proxy.log").read_text()
            assert time.monotonic() < deadline, "the proxy did not start within 60 s"
            time.sleep(0.1)
        args = [sys.executable, str(CLIENT), str(info)] + (["--fault", fault] if fault else [])
        client = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert client.returncode == 0, client.stdout + client.stderr
        proc.send_signal(signal.SIGINT)  # the end of a session, as Ctrl-C
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    return code, (tmp / "proxy.log").read_text()


def _summary(tmp: Path, kit: str) -> dict:
    return json.loads((tmp / "reports" / kit / "reference" / "summary.json").read_text())


def test_reference_client_through_the_proxy_is_conformant(tmp_path: Path) -> None:
    """The reference client, under the scenario of every scripted behaviour, is conformant for both client kits;
    e20_for has the register itself reject exactly the reports of the chosen person, with E20."""
    # The embedded register's population is the same in every process (one seed): loan 1's borrower in the
    # proxy's register is the one of this pool. e20_for is a top-level key, so it goes before the tables.
    _, pool_file, _ = embedded.prepared(embedded.register_command())
    person = borrower(persons_of(str(pool_file)), 1)
    scenario_file = tmp_path / "scenario.toml"
    scenario_file.write_text(f'e20_for = ["{person}"]\n' + FULL_SCENARIO.read_text(encoding="utf-8"))
    code, output = _proxy_run(tmp_path, scenario_file=scenario_file, html=True)
    assert code == 0, output
    for kit in ("lender-client", "lender-client-extract"):
        doc = _summary(tmp_path, kit)
        assert doc["verdict"] == "conformant", (kit, doc["requirements"], output)
        assert set(doc["requirements"].values()) == {"passed"}, doc["requirements"]
        folder = tmp_path / "reports" / kit / "reference"
        assert (folder / "html" / "index.html").is_file(), output
        assert (folder / "junit.xml").is_file() and any((folder / "allure-results").glob("*-result.json"))
        har = traffic.read_har(folder / "traffic.har")
        assert {e.operation for e in har} >= {"AddLoans", "GetBatchStatus", "GetCreditRegisterExtract"}
        assert {e.status for e in har} >= {202, 200, 429, 503}  # the scenario played
        assert {e.operation for e in har} >= {"UpdateLoans"}  # the correction (CLI-008's right way)
    assert "FINDING" not in output
    _assert_e20_for(har, person)


def _assert_e20_for(har: list[traffic.Exchange], person: str) -> None:
    """The first batch: the reports whose borrower is `person` (as the client sent them: the rewrite happens
    upstream only) are rejected with E20, and so is every 3rd (partial_every); every other report is accepted."""
    first = next(e for e in har if e.operation == "AddLoans" and e.status == 202)
    sent = first.request_json()["loans"]
    ref = first.request_header("BatchReference")
    final = next(e.response_json() for e in har if e.operation == "GetBatchStatus" and e.status == 200
                 and e.response_json().get("batchReference") == ref
                 and e.response_json().get("batchStatus") == "FinishedPartialSuccess")
    results = {r["reportReference"]: r for r in final["reportResults"]}
    for n, report in enumerate(sent, 1):
        result = results[report["reportReference"]]
        chosen = report["borrowers"][0]["idCode"] == person
        if chosen or n % 3 == 0:
            assert result["status"] == "Rejected", (n, result)
            assert "E20" in {i["errorCode"] for i in result["errorResponses"]}, result
        else:
            assert result["status"] == "Accepted", (n, result)
    assert [r["borrowers"][0]["idCode"] for r in sent].count(person) == 1


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_seeded_client_fault_is_not_conformant_naming_its_requirement(fault: str, tmp_path: Path) -> None:
    """Each seeded client fault makes its kit not-conformant with the fault's requirement failed, live and at the end."""
    requirement = FAULTS[fault]
    scenario_file = None
    if fault in FAULT_SCENARIOS:
        scenario_file = tmp_path / "scenario.toml"
        scenario_file.write_text(FAULT_SCENARIOS[fault])
    code, output = _proxy_run(tmp_path, fault, scenario_file)
    assert code == 1, output
    assert f"[proxy] FINDING {requirement} " in output
    judged = [k for k in ("lender-client", "lender-client-extract")
              if requirement in kits.load_kit(k).selected(kits.load_requirements())]
    for kit in judged:
        doc = _summary(tmp_path, kit)
        assert doc["verdict"] == "not-conformant", (kit, doc["requirements"])
        assert doc["requirements"][requirement] == "failed", (kit, doc["requirements"])


# ---- the checks, one by one ---------------------------------------------------------------------------------

OWNER = {"idCodeType": "BusinessId", "idCode": "1234567-1"}


def _ex(operation: str, body: dict, *, t: float = 1_000_000.0, status: int = 200, answer: dict | None = None,
        headers: tuple = (), response_headers: tuple = ()) -> traffic.Exchange:
    return traffic.Exchange(started=t, duration_s=0.01, method="POST", url=f"https://proxy/{operation}",
                            request_headers=headers, request_text=json.dumps(body), status=status,
                            response_headers=response_headers, response_text=json.dumps(answer or {}),
                            client_slot="lender", client_owner=OWNER)


def _envelope() -> dict:
    return {"targetEnvironment": "Test", "owner": dict(OWNER)}


def _ids(exchanges: list[traffic.Exchange]) -> set[str]:
    return {f.requirement for f in client_rules.replay(exchanges).findings}


def test_poll_rate_and_back_off() -> None:
    """CLI-005 flags polls under a second apart and a shrinking interval, and passes a growing one."""
    poll = {**_envelope(), "batchReference": "B1"}
    at = lambda *ts: [_ex("GetBatchStatus", poll, t=1e6 + s) for s in ts]  # noqa: E731
    assert "CLI-005" in _ids(at(0, 0.3))
    assert "CLI-005" in _ids(at(0, 3, 4.2))
    state = client_rules.replay(at(0, 1, 2.5, 4.75))
    assert "CLI-005" in state.exercised and not [f for f in state.findings if f.requirement == "CLI-005"]


def test_retry_after_is_judged_per_api_family() -> None:
    """CLI-010 flags a request to the same family before Retry-After ended, not one after it."""
    refused = _ex("GetBatchStatus", {**_envelope(), "batchReference": "B"}, status=429,
                  response_headers=(("Retry-After", "2"),))
    early = _ex("GetBatchStatus", {**_envelope(), "batchReference": "B"}, t=1e6 + 1)
    late = _ex("GetBatchStatus", {**_envelope(), "batchReference": "B"}, t=1e6 + 2.5)
    assert "CLI-010" in _ids([refused, early])
    state = client_rules.replay([refused, late])
    assert "CLI-010" in state.exercised and "CLI-010" not in {f.requirement for f in state.findings}


def test_artificial_codes_and_extract_purpose() -> None:
    """CLI-012 flags a code outside 900-999; CLI-011 an extract request without a purpose."""
    real = {**_envelope(), "request": {"idCodeType": "PersonalIdentityCode", "idCode": "010180-123N",
                                       "creditRegisterExtractPurpose": []}}
    found = _ids([_ex("GetCreditRegisterExtract", real)])
    assert {"CLI-011", "CLI-012"} <= found


def test_abandoned_batch_is_found_at_the_end() -> None:
    """CLI-004 names a batch answered 202 and never polled to a final state."""
    sub = _ex("AddLoans", {**_envelope(), "loans": []}, status=202, headers=(("BatchReference", "B9"),))
    state = client_rules.ClientState()
    client_rules.judge(state, sub)
    assert not [f for f in state.findings if f.requirement == "CLI-004"]
    assert [f.requirement for f in client_rules.finish(state)] == ["CLI-004"]


def test_kits_keep_the_sides_apart() -> None:
    """No register kit selects a client requirement and no client kit a register one."""
    reqs = kits.load_requirements()
    for name in kits.available_kits():
        kit = kits.load_kit(name)
        chosen = kit.selected(reqs)
        assert chosen, name
        assert all((r.side == "client") == (kit.side == "client") for r in chosen.values()), name
    client = {rid for rid, r in reqs.items() if r.side == "client"}
    assert client == set(client_rules.CHECKS)


def test_scenario_file_errors_name_the_field(tmp_path: Path) -> None:
    """A scenario with a bad value is refused naming the field and the rule; the shipped one loads."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[rate_limit]\nevery = -1\n")
    with pytest.raises(HarnessError, match=r"rate_limit\.every: must be a whole number >= 0"):
        scenario.load_scenario(bad)
    bad.write_text("partial_evry = 3\n")
    with pytest.raises(HarnessError, match="field partial_evry: unknown"):
        scenario.load_scenario(bad)
    full = scenario.load_scenario(FULL_SCENARIO)
    assert full.active() == [k for k in scenario.EXERCISES if k != "e20_for"]
    assert "CLI-010" in full.describe()


def test_scripted_rejections_rewrite_only_the_chosen_reports() -> None:
    """partial_every and e20_for replace the borrower of exactly the chosen reports with an unknown person."""
    from pcr_conformance.proxy import Proxy
    from pcr_conformance.target import Target

    def loans(*codes: str) -> bytes:
        return json.dumps({**_envelope(), "loans": [
            {"reportReference": f"R{i}", "borrowers": [{"idCodeType": "PersonalIdentityCode", "idCode": c}]}
            for i, c in enumerate(codes)]}).encode()

    def borrowers(body: bytes) -> list[str]:
        return [r["borrowers"][0]["idCode"] for r in json.loads(body)["loans"]]

    every = Proxy(target=Target(name="t"), scenario=scenario.Scenario(partial_every=2), live=lambda _: None)
    every._unknown_persons = ["UNKNOWN"]
    assert borrowers(every._rewrite("AddLoans", loans("A", "B", "C", "D"))) == ["A", "UNKNOWN", "C", "UNKNOWN"]
    person = Proxy(target=Target(name="t"), scenario=scenario.Scenario(e20_for=("C",)), live=lambda _: None)
    person._unknown_persons = ["UNKNOWN"]
    assert borrowers(person._rewrite("AddLoans", loans("A", "C"))) == ["A", "UNKNOWN"]
    assert person._rewrite("GetBatchStatus", b'{"x": 1}') == b'{"x": 1}'


def test_the_proxys_own_answers_are_in_the_error_catalogue() -> None:
    """Every code the proxy answers with itself (H13, H29, H52, H53) is in specs/errors.yaml: its answer has that
    code's HTTP status and description and the error object's shape; the retry ones carry Retry-After."""
    codes = set(re.findall(r'error_answer\("([A-Z]\d{2})"', Path(proxy.__file__).read_text(encoding="utf-8")))
    catalogue = specs.load_errors()
    # H13 (413) is the register's too; the others are marked as the proxy's alone.
    assert codes == {"H13"} | {c for c, e in catalogue.items() if e.get("answered_by") == "proxy"} == {
        "H13", "H29", "H52", "H53"}
    for code in sorted(codes):
        status, headers, body = proxy.error_answer(code, retry_after_s=2 if code in ("H29", "H53") else None,
                                                   detail="(cause)")
        doc = json.loads(body)
        assert status == catalogue[code]["http_status"], code
        assert not contract.error_object_problems(doc), (code, doc)
        item = doc["errorResponses"][0]
        assert item["errorCode"] == code and item["errorDescription"].startswith(catalogue[code]["description"])
        assert (("retry-after", "2") in headers) == (code in ("H29", "H53")), (code, headers)


def test_live_judge_judges_in_order_off_the_request_path_and_survives_a_broken_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy's judge thread judges the exchanges in the order they were queued, every one of them by close(),
    and a check that raises is reported as an error line without stopping the judging of the rest."""
    calls = []

    def broken_once(state: client_rules.ClientState, ex: traffic.Exchange, i: int):  # noqa: ANN202
        calls.append(i)
        if i == 1:
            raise ValueError("boom")
        return iter(())

    monkeypatch.setitem(client_rules.CHECKS, "CLI-999", broken_once)
    lines: list[str] = []
    state = client_rules.ClientState()
    judge = proxy.LiveJudge(state, lines.append)
    poll = {**_envelope(), "batchReference": "B1"}
    for s in (0, 0.3, 0.5, 2.0):
        judge.put(_ex("GetBatchStatus", poll, t=1e6 + s))
    judge.close()
    assert state.count == 4 and calls == [1, 2, 3, 4]
    assert lines[0].startswith("[proxy] ERROR judging #1 GetBatchStatus: ValueError('boom')")
    assert [line.split()[3] for line in lines if "FINDING CLI-005" in line] == ["#2", "#3"]
