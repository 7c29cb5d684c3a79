"""`run --workers N` (issue 12): one session's tests in several pytest-xdist processes.

Against the embedded register each worker starts its own register from one data dir that the controller made
(the same CA and certificates), and the controller writes each kit's reports from the workers' test reports:
the same outcomes, requirement results and evidence as one process. Against a shared register the workers
split its rate limit and its data pool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pcr_conformance import resources
from pcr_conformance.cli import CliError
from pcr_conformance.commands.run import RunConfig, session_command, workers_for
from pcr_conformance.testdata import Pool, PoolPerson, TestData

# A slice of two kits that still uses several identity slots, a batch, the robustness matrix (one module)
# and a fuzz test: enough to see every report field the controller must learn from its workers.
SLICE = "test_orders or test_identity or test_ban_disclosure or test_robustness and GetVoluntaryBan"


def test_auto_is_two_workers_for_the_embedded_register_on_two_cores_and_one_otherwise() -> None:
    assert workers_for("auto", embedded=True, cpus=2) == 2
    assert workers_for("auto", embedded=True, cpus=1) == 1
    assert workers_for("auto", embedded=False, cpus=8) == 1  # a shared register: its data is not ours alone
    assert workers_for("3", embedded=False) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(CliError, match="--workers"):
            workers_for(bad, embedded=True)


def _dist_args(tmp_path: Path, workers: int) -> list[str]:
    config = RunConfig(target="reference", target_name="reference", kits=("a", "b"), kit_args=("a", "b"),
                       profile="certification", output=tmp_path, html=False, mask_pii=False, timeout_s=5,
                       suites=tmp_path / "suites", workers=workers)
    cmd = session_command(config, tmp_path)
    return cmd[cmd.index("-n"):cmd.index("--pcr-kit-folders")] if "-n" in cmd else []


def test_the_session_command_asks_xdist_for_workers_only_with_several() -> None:
    assert _dist_args(Path("/nonexistent"), 1) == []
    assert _dist_args(Path("/nonexistent"), 2) == ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]


def test_the_session_keeps_each_module_in_one_worker(tmp_path: Path) -> None:
    """The robustness matrix and the load run are made once per session only if each of their modules runs
    in one worker. Checked with the session's own xdist options on two modules of many tests: `--dist
    loadgroup` (with xdist_group marks) passed the equivalent check on older pytest and silently stopped
    grouping on pytest 9.2, so the property is tested, not the option."""
    for name in ("test_one", "test_two"):
        (tmp_path / f"{name}.py").write_text(
            "import os, pytest\n"
            "@pytest.mark.parametrize('i', range(30))\n"
            f"def test_it(i, tmp_path_factory):\n"
            f"    with open(os.path.join({str(tmp_path)!r}, '{name}-' + os.environ['PYTEST_XDIST_WORKER']), 'a') as f:\n"
            "        f.write('x')\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider",
                           "-p", "no:pcr_conformance", *_dist_args(tmp_path, 2)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("test_one", "test_two"):
        ran_in = {p.name for p in tmp_path.glob(f"{name}-gw*")}
        assert len(ran_in) == 1, f"{name} ran in {sorted(ran_in)}"
        assert sum(len(p.read_text()) for p in tmp_path.glob(f"{name}-gw*")) == 30


def test_the_session_starts_the_longest_modules_first(tmp_path: Path) -> None:
    """With the session's own xdist options and the workers' order (workers.order_longest_first, which the
    plugin applies in a worker): the module of two tests marked cost(100) and the module of 40 tests start
    first, one on each worker, although xdist alone would start the modules with the most tests (40 and 20) and
    pytest's own order is by name (test_a_many, test_b_some, test_c_costly)."""
    (tmp_path / "conftest.py").write_text(
        "from pcr_conformance import workers\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'cost(n): as long as n plain tests')\n"
        "def pytest_collection_modifyitems(config, items):\n"
        "    if hasattr(config, 'workerinput'):\n"
        "        workers.order_longest_first(items)\n", encoding="utf-8")
    for name, count, mark in (("test_a_many", 40, ""), ("test_b_some", 20, ""), ("test_c_costly", 2, "@pytest.mark.cost(100)\n")):
        (tmp_path / f"{name}.py").write_text(
            "import os, pytest\n"
            f"{mark}@pytest.mark.parametrize('i', range({count}))\n"
            "def test_it(i):\n"
            f"    with open(os.path.join({str(tmp_path)!r}, 'order-' + os.environ['PYTEST_XDIST_WORKER']), 'a') as f:\n"
            f"        f.write('{name}\\n')\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider",
                           "-p", "no:pcr_conformance", *_dist_args(tmp_path, 2)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    firsts = {p.read_text().split()[0] for p in tmp_path.glob("order-gw*")}
    assert firsts == {"test_c_costly", "test_a_many"}, firsts


def test_workers_against_a_shared_register_draw_disjoint_persons() -> None:
    pool = Pool(environment="Test", persons=tuple(PoolPerson(f"010190-9{i:02d}X", ("income",)) for i in range(6)),
                organisations={})
    first, second = TestData(pool, share=(0, 2)), TestData(pool, share=(1, 2))
    a, b = set(first.candidates("income")), set(second.candidates("income"))
    assert a and b and not a & b and a | b == set(TestData(pool).candidates("income"))
    lone = Pool(environment="Test", persons=(PoolPerson("010190-990X", ("deceased",)),), organisations={})
    assert TestData(lone, share=(1, 2)).candidates("deceased") == ["010190-990X"]  # too few to split


def _session(folder: Path, *workers: str) -> dict[str, dict]:
    cmd = [sys.executable, "-P", "-m", "pytest", str(resources.suites_dir()), *resources.suites_pytest_args(),
           "--pcr-target", "reference", "--pcr-kit", "authority", "--pcr-kit", "credit-information-company", "--pcr-kit-folders",
           "--pcr-output", str(folder), "--alluredir", str(folder / ".session" / "allure-results"),
           "--junitxml", str(folder / ".session" / "junit.xml"), "-q", "-p", "no:cacheprovider",
           "-k", SLICE, *workers]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {kit: json.loads((folder / kit / "summary.json").read_text(encoding="utf-8")) for kit in ("authority", "credit-information-company")}


@pytest.mark.slow
def test_two_workers_report_what_one_process_reports(tmp_path: Path) -> None:
    one = _session(tmp_path / "one")
    two = _session(tmp_path / "two", "-n", "2", "--dist", "loadfile")
    for kit in ("authority", "credit-information-company"):
        a, b = one[kit], two[kit]
        assert a["counts"]["passed"] > 10 and a["counts"] == b["counts"], (a["counts"], b["counts"])
        assert {t: r["outcome"] for t, r in a["tests"].items()} == {t: r["outcome"] for t, r in b["tests"].items()}
        # The slice leaves some of the kits' must requirements unrun: both incomplete, with the same gaps.
        assert a["requirement_results"] == b["requirement_results"] and a["gaps"] == b["gaps"]
        assert a["verdict"] == b["verdict"] and a["counts"]["failed"] == a["counts"]["broken"] == 0
        # What only the process that started the register knows: the controller learnt it from the workers.
        assert b["base_urls"] and b["register_variant"] == "reference"
        assert b["stakeholder"] == a["stakeholder"] and sorted(b["identities"]) == sorted(a["identities"])
        pem = (tmp_path / "two" / kit / "certs" / "lender.pem").read_text(encoding="utf-8")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.fingerprint(hashes.SHA256()).hex() == b["identities"]["lender"]["sha256"].replace(":", "").lower()
