"""The embedded target starts the reference register once per session and stops it at the end."""

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import json
from pathlib import Path

import pytest

from pcr_conformance import expect, messages as m


@pytest.mark.verifies("RPT-003")
def test_add_and_get(pcr_target, pcr_clients, pcr_data):
    """A loan accepted by AddLoans is returned by GetLoan."""
    Path("seen.json").write_text(json.dumps({"data_dir": pcr_target.data_dir,
                                             "url": pcr_target.base_urls["reporting"]}))
    lender = pcr_clients.get("lender")
    loan_number = pcr_data.loan_number()
    status = lender.submit_and_wait("AddLoans", [m.lump_sum_loan(loan_number, pcr_data.person(),
                                                                 pcr_data.report_reference())])
    expect.batch_state(status, "FinishedSuccess", "BAT-002")
    expect.status(lender.get_loan(loan_number), 200, "RPT-003", "GetLoan")


@pytest.mark.verifies("RPT-039")
def test_same_register(pcr_target, pcr_clients, pcr_data):
    """The second test reaches the same register."""
    seen = json.loads(Path("seen.json").read_text())
    assert seen["url"] == pcr_target.base_urls["reporting"]
    expect.status(pcr_clients.get("lender").get_loan(pcr_data.loan_number()), 404, "RPT-039", "GetLoan")
'''


@pytest.mark.slow
def test_embedded_register_starts_once_and_stops(pytester):
    pytester.mkdir("suites")
    (pytester.path / "suites" / "test_flow.py").write_text(SUITE, encoding="utf-8")
    started = time.monotonic()
    # A kit of just the two requirements: with the whole register kit the others would be gaps (incomplete).
    (pytester.path / "two.toml").write_text('name = "two"\ntitle = "Two"\nactors = ["nobody"]\n'
                                            'include = ["RPT-003", "RPT-039"]\n', encoding="utf-8")
    result = pytester.runpytest_subprocess("suites", "--pcr-output", "out", "-p", "no:cacheprovider",
                                           "--pcr-kit", str(pytester.path / "two.toml"), timeout=60)
    assert time.monotonic() - started < 20
    result.assert_outcomes(passed=2)
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    assert summary["verdict"] == "conformant"
    assert summary["register_variant"] == "reference"  # the embedded register's variant is in the evidence
    # The certificates were read while the register ran (its files are gone now).
    assert summary["identities"]["lender"]["sha256"] and summary["identities"]["lender"]["subject"]
    assert summary["stakeholder"][0]["idCode"]
    seen = json.loads((pytester.path / "seen.json").read_text())
    assert not Path(seen["data_dir"]).exists()  # the temp dir went with the register
    parts = urlsplit(seen["url"])
    with pytest.raises(OSError), socket.create_connection((parts.hostname, parts.port), timeout=2):
        pass


@pytest.mark.slow
def test_an_embedded_target_starts_its_variant() -> None:
    """targets/public-minimal.toml starts the register with serve --variant public-minimal (a modelled code
    comes back as the variant's own: D60 -> Q60)."""
    import ssl

    import httpx

    from pcr_conformance import embedded
    from pcr_conformance.target import load_target

    reg = embedded.start(load_target("public-minimal"))
    try:
        assert reg.target.variant == "public-minimal"
        lender = reg.target.identity("lender")
        assert lender is not None
        ctx = ssl.create_default_context(cafile=reg.target.tls.ca_bundle)
        ctx.load_cert_chain(lender.cert, lender.key)
        with httpx.Client(verify=ctx, timeout=10) as client:
            resp = client.post(reg.target.base_url("reporting") + "/GetBatchStatus", json={
                "targetEnvironment": "Test", "owner": lender.owner, "batchReference": "NO-SUCH-BATCH"})
        assert resp.status_code == 404 and resp.json()["errorResponses"][0]["errorCode"] == "Q60"
    finally:
        reg.stop()


def test_the_register_stops_on_sigterm_while_a_client_keeps_an_idle_connection() -> None:
    """A session's clients keep their keep-alive connections open when the register is stopped. The register
    must end on SIGTERM by itself (returncode -SIGTERM), not be killed after the harness's grace period
    (-SIGKILL): TLS close_notify from an idle client never comes (issue 12: every stop took 5 s)."""
    import signal

    import httpx

    from pcr_conformance import embedded
    from pcr_conformance.client import ssl_context
    from pcr_conformance.target import load_target

    reg = embedded.start(load_target("reference"))
    lender = reg.target.identity("lender")
    assert lender is not None
    with httpx.Client(verify=ssl_context(reg.target.tls.ca_bundle, lender.cert, lender.key), timeout=10) as client:
        try:
            resp = client.post(reg.target.base_url("reporting") + "/GetBatchStatus", json={
                "targetEnvironment": "Test", "owner": lender.owner, "batchReference": "NO-SUCH-BATCH"})
            assert resp.status_code == 404  # the connection is now idle and kept alive
        finally:
            reg.stop()
    assert reg.process.returncode == -signal.SIGTERM, f"register ended with {reg.process.returncode}"


@pytest.mark.skipif(not hasattr(__import__("os"), "pidfd_open"), reason="the fork server needs Linux")
def test_registers_from_the_fork_server_each_have_their_own_faults_and_stop_on_request(monkeypatch) -> None:
    """Two registers forked at once by one `pcr-register fork-server` (the self-test's runs): each has exactly the
    faults of the environment it was asked with (BAT-007's fault on one only), its own port, and each stops like
    a register of its own (returncode -SIGTERM) when the harness stops it, the other still serving."""
    import signal

    import httpx

    from pcr_conformance import embedded, embedded_forks
    from pcr_conformance.client import ssl_context
    from pcr_conformance.target import load_target

    def unknown_batch_code(reg: embedded.EmbeddedRegister) -> str:
        lender = reg.target.identity("lender")
        assert lender is not None
        with httpx.Client(verify=ssl_context(reg.target.tls.ca_bundle, lender.cert, lender.key), timeout=10) as c:
            resp = c.post(reg.target.base_url("reporting") + "/GetBatchStatus", json={
                "targetEnvironment": "Test", "owner": lender.owner, "batchReference": "NO-SUCH-BATCH"})
        assert resp.status_code == 404
        return resp.json()["errorResponses"][0]["errorCode"]

    target = load_target("reference")
    with embedded_forks.running_server(embedded.register_command(), embedded.register_env(),
                                       embedded.die_with_parent) as server:
        assert server is not None
        monkeypatch.setenv("PCR_REGISTER_FAULTS", "unknown_batch_d11")
        faulty = embedded.start(target)
        monkeypatch.setenv("PCR_REGISTER_FAULTS", "")
        clean = embedded.start(target)
        try:
            assert isinstance(faulty.process, embedded_forks.ForkedRegister)
            assert faulty.target.base_url("reporting") != clean.target.base_url("reporting")
            assert (unknown_batch_code(faulty), unknown_batch_code(clean)) == ("D11", "D60")
            faulty.stop()
            assert faulty.process.returncode == -signal.SIGTERM, faulty.output
            assert unknown_batch_code(clean) == "D60"  # the other register keeps serving
        finally:
            faulty.stop()
            clean.stop()
        assert clean.process.returncode == -signal.SIGTERM, clean.output
    parts = urlsplit(clean.target.base_url("reporting"))
    with pytest.raises(OSError), socket.create_connection((parts.hostname, parts.port), timeout=2):
        pass
