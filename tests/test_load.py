"""pcr-conformance load (docs/load.md): the service-level checks over canned results, the tally workers send
their master, the load options; then real Locust runs against the embedded register: a short headless run with
the whole report set, a master with two workers giving the same verdict, and a seeded fault failing its level."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pcr_conformance import judging, load, service_levels
from pcr_conformance.errors import HarnessError
from pcr_conformance.impl_profile import ImplementationProfile
from pcr_conformance.load_results import LoadRun, Tally

CLI = [sys.executable, "-m", "pcr_conformance.cli"]
RUN_TIMEOUT_S = 240


def _run(requests: dict | None = None, **tally: object) -> LoadRun:
    base = {"batches_accepted": 3, "batches_final": 3, "batches_lost": 0, "final_times": [[1, 0.2], [1000, 2.5]],
            "loans_checked": 4, "loans_missing": 0, "server_errors": {}, "unanswered": {}, "lines": {}}
    stats = {"GetCreditRegisterExtract": {"count": 40, "p50_ms": 8, "p95_ms": 90, "max_ms": 120},
             "AddLoans": {"count": 3}}
    return LoadRun(options={"users": 6, "run_time_s": 5}, requests=stats if requests is None else requests,
                   tally={**base, **tally})


@pytest.fixture
def no_profile() -> object:
    judging.configure("reference")
    yield
    judging.configure("reference")


def test_each_service_level_passes_fails_and_is_not_shown(no_profile: object) -> None:
    """Each check passes a good run, fails the run that breaks it naming the figure, and says when the run
    did not exercise it."""
    good = _run()
    assert {rid: check(good).status for rid, check in service_levels.CHECKS.items()} == dict.fromkeys(
        service_levels.CHECKS, "passed")
    slow = _run({"GetCreditRegisterExtract": {"count": 40, "p95_ms": 1500}})
    assert service_levels.extract_p95(slow).status == "failed"
    assert "1500 ms" in service_levels.extract_p95(slow).actual
    assert "extract_p95_ms = 1000 (the default)" in service_levels.extract_p95(slow).expected
    late = service_levels.batch_final(_run(final_times=[[10, 0.5], [1000, 61.0], [2000, 90.0]]))
    assert late.status == "failed" and "1 of 2 batches" in late.actual  # a batch over 1 000 reports is not judged
    errors = service_levels.no_server_error(_run(server_errors={"GetLoan 500": 2}, unanswered={"AddLoans": 1},
                                                 lines={"server_errors": ["GetLoan 500: {}"]}))
    assert errors.status == "failed" and errors.operation == "GetLoan"
    assert "2 x GetLoan 500" in errors.actual and "1 x AddLoans unanswered" in errors.actual
    lost = service_levels.no_batch_lost(_run(batches_lost=1))
    assert lost.status == "failed" and "1 of 3 acknowledged batches lost" in lost.actual
    assert service_levels.no_batch_lost(_run(loans_missing=1)).operation == "GetLoan"
    quiet = _run({}, batches_accepted=0, final_times=[])
    assert {rid: check(quiet).status for rid, check in service_levels.CHECKS.items()} == dict.fromkeys(
        service_levels.CHECKS, "not-shown")


def test_thresholds_come_from_the_implementation_profile(no_profile: object) -> None:
    """A profile's extract_p95_ms and batch_final_s replace the defaults."""
    judging.configure("reference", ImplementationProfile(values={"extract_p95_ms": 50, "batch_final_s": 1}))
    run = _run()
    assert service_levels.extract_p95(run).status == "failed"
    assert "extract_p95_ms = 50 (the implementation profile)" in service_levels.extract_p95(run).expected
    assert service_levels.batch_final(run).status == "failed"


def test_a_tally_travels_from_workers_to_the_master() -> None:
    """A worker's counts taken with each report are added up at the master; taking starts again from zero."""
    worker, master = Tally(), Tally()
    worker.add("batches_accepted", amount=2)
    worker.final(10, 0.4)
    worker.add("server_errors", "GetLoan 500", line="GetLoan 500: boom")
    master.merge(json.loads(json.dumps(worker.take())))
    worker.add("server_errors", "GetLoan 500")
    master.merge(worker.take())
    merged = master.as_dict()
    assert merged["batches_accepted"] == 2 and merged["final_times"] == [[10, 0.4]]
    assert merged["server_errors"] == {"GetLoan 500": 2} and merged["lines"]["server_errors"] == ["GetLoan 500: boom"]
    assert worker.as_dict()["batches_accepted"] == 0


def test_load_options_name_what_is_wrong() -> None:
    """--pcr-load and --run-time are parsed; a bad value names the option and the fix."""
    options = load.options_from_text("users=50,run_time_s=60,master=true,expect_workers=2")
    assert (options.users, options.run_time_s, options.master, options.expect_workers) == (50, 60.0, True, 2)
    assert load.options_from_text("") == load.SMOKE
    assert load.parse_duration("1h30m") == 5400 and load.parse_duration("90") == 90 and load.parse_duration("2m") == 120
    for bad, says in (("users=many", "users is a int"), ("speed=3", "KEY one of"), ("users=0", "at least 1 user"),
                      ("run_time_s=0", "needs a run time")):
        with pytest.raises(HarnessError, match=says):
            load.options_from_text(bad)
    with pytest.raises(HarnessError, match="a unit after 5"):
        load.parse_duration("1m5")


def _load(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "load", "--users", "6", "--spawn-rate", "6", "--run-time", "5s",
                           "--output", str(tmp_path), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env={**os.environ, **(env or {})})


def _summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "load" / "reference" / "summary.json").read_text(encoding="utf-8"))


def test_a_headless_run_gives_a_verdict_per_service_level_with_the_report_set(tmp_path: Path) -> None:
    """A short headless run against the embedded register: every service level passed, summary.json, JUnit,
    Allure results, the verdict page and Locust's own HTML and CSV in the kit's folder."""
    proc = _load(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = _summary(tmp_path)
    assert summary["verdict"] == "conformant"
    assert summary["requirements"] == dict.fromkeys(service_levels.CHECKS, "passed")
    folder = tmp_path / "load" / "reference"
    assert (folder / "junit.xml").read_text(encoding="utf-8").count("<testcase") == len(service_levels.CHECKS)
    assert any((folder / "allure-results").glob("*-result.json"))
    assert (folder / "html" / "index.html").is_file()
    assert (folder / "locust" / "locust.html").is_file() and (folder / "locust" / "locust_stats.csv").is_file()
    results = json.loads((folder / "locust" / "load-results.json").read_text(encoding="utf-8"))
    assert results["tally"]["batches_accepted"] > 0 and results["requests"]["GetCreditRegisterExtract"]["count"] > 0
    assert {"OrderData", "GetVoluntaryBanChanges", "GetLoan"} <= set(results["requests"])  # every stakeholder ran


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_master_with_two_workers_gives_the_same_verdict(tmp_path: Path) -> None:
    """`--master` and two `--worker` processes on 127.0.0.1 (Locust's own distribution): the load spreads over
    both workers and the verdict is the headless one's."""
    port = str(_free_port())
    master = subprocess.Popen([*CLI, "load", "--users", "6", "--spawn-rate", "6", "--run-time", "5s", "--no-html",
                               "--output", str(tmp_path), "--master", "--expect-workers", "2", "--master-port", port,
                               "--master-bind-host", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = [subprocess.Popen([*CLI, "load", "--worker", "--master-host", "127.0.0.1", "--master-port", port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        out, _ = master.communicate(timeout=RUN_TIMEOUT_S)
        for w in workers:
            w.wait(timeout=60)
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    said = [w.stdout.read()[-1500:] if w.stdout else "" for w in workers]
    assert master.returncode == 0, out[-3000:] + "\n".join(said)
    summary = _summary(tmp_path)
    assert summary["verdict"] == "conformant"
    assert summary["requirements"] == dict.fromkeys(service_levels.CHECKS, "passed")
    results = json.loads((tmp_path / "load" / "reference" / "locust" / "load-results.json").read_text(encoding="utf-8"))
    assert results["options"]["workers"] == 2 and results["tally"]["batches_accepted"] > 0
    assert all(w.returncode == 0 for w in workers)


def test_a_seeded_fault_fails_the_service_level_it_breaks(tmp_path: Path) -> None:
    """Against a register whose extracts are slow (fault slow_extract), PRF-001 fails and only it."""
    proc = _load(tmp_path, "--no-html", env={"PCR_REGISTER_FAULTS": "slow_extract"})
    assert proc.returncode == 1, proc.stdout[-3000:]
    summary = _summary(tmp_path)
    assert summary["verdict"] == "not-conformant"
    assert summary["requirements"] == {**dict.fromkeys(service_levels.CHECKS, "passed"), "PRF-001": "failed"}
    assert "PRF-001 GetCreditRegisterExtract: expected 95th percentile at most 1000 ms" in proc.stdout
