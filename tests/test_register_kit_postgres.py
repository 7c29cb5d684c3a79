"""The register kit's functional scenarios against the reference register on PostgreSQL (same behaviour as on
SQLite): the embedded target started with PCR_REGISTER_DB set to a database of the session's server. A
focused selection (suites/scenarios: reporting, extract, authorities, voluntary ban; about 35 s) keeps the
test command quick; the whole kit on PostgreSQL: `PCR_REGISTER_DB=postgresql://... pcr-conformance run
--kit register`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from register_fixtures import REPO

from pcr_register.storage import open_storage


def test_the_register_kits_scenarios_pass_on_postgresql(postgres: object, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    url = request.getfixturevalue("postgres").create_database()
    env = {**os.environ, "PCR_REGISTER_DB": url}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suites/scenarios",
                           "--pcr-kit", "register", "--pcr-output", str(tmp_path / "reports")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 30 and " failed" not in proc.stdout, tail
    # It really ran on PostgreSQL: the kit's batches and extracts are in that database.
    con = open_storage(url).conn()
    assert con.execute("SELECT count(*) FROM batches").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM extract_log").fetchone()[0] > 0
