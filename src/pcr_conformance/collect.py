"""Which suite test verifies which requirement: collected by pytest itself, in a child process.

The one way the kit computes requirement coverage: `pcr-conformance requirements`, `pcr-conformance selftest`
and the project's coverage test (tests/test_requirement_coverage.py) all use it. The `verifies` markers are
what counts, wherever they come from (a decorator, a module's `pytestmark`, a corpus case's `verifies` list or
the fuzz checks' IDs). Collection runs in a subprocess so the caller's own process never imports the suites or
keeps pytest state.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from pcr_conformance.kits import Req

COLLECT_TIMEOUT_S = 300


class CollectError(RuntimeError):
    """The suites could not be collected (the first line says why)."""


class VerifiesCollector:
    """A pytest plugin object recording each collected item's node id and `verifies` marker IDs."""

    def __init__(self) -> None:
        self.verifies: dict[str, list[str]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids: list[str] = []
            for mark in item.iter_markers("verifies"):
                ids.extend(str(a) for a in mark.args)
            self.verifies[item.nodeid] = sorted(set(ids))


def collect_verifies(suites_dir: Path | None = None, *, target: str = "reference",
                     kit: str = "register", extra_kits: Iterable[str] = (),
                     contract_dir: Path | None = None) -> dict[str, list[str]]:
    """{node id: [requirement IDs]} of every test the kit (or any of `extra_kits`) selects under suites_dir
    (default: the kit's suites), under the contract in use or the one in ``contract_dir`` (another version's
    files, for a diff).

    Node ids are relative to the folder above suites/ (`suites/...`), as in `pcr-conformance run`."""
    import os

    from pcr_conformance import resources

    suites = (suites_dir or resources.suites_dir()).resolve()
    with tempfile.TemporaryDirectory(prefix="pcr-collect-") as tmp:
        out = Path(tmp) / "verifies.json"
        cmd = [sys.executable, "-P", "-m", "pcr_conformance.collect", str(out), str(suites),
               *resources.suites_pytest_args(),
               "--pcr-target", target, "--pcr-kit", kit, *[a for k in extra_kits for a in ("--pcr-kit", k)],
               "-p", "no:cacheprovider"]
        env = {**os.environ, "PCR_SPECS_DIR": str(contract_dir)} if contract_dir else None
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=COLLECT_TIMEOUT_S, env=env)
        if not out.exists():
            raise CollectError(f"collecting {suites} failed (exit {proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-2000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class Coverage:
    """One requirement with the tests that verify it."""

    id: str
    level: str
    title: str
    error_code: str | None
    not_tested: str | None
    tests: tuple[str, ...]

    @property
    def uncovered(self) -> bool:
        """A must-requirement with neither a test nor a not_tested reason."""
        return self.level == "must" and not self.tests and not self.not_tested

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "level": self.level, "title": self.title, "error_code": self.error_code,
                "not_tested": self.not_tested, "tests": list(self.tests)}


def requirement_coverage(kit: str | None = None, *, suites_dir: Path | None = None) -> list[Coverage]:
    """Each requirement (of the kit, if given), in the register's order, with the tests that verify it.

    Raises HarnessError for an unknown kit or an unreadable register, CollectError when the suites cannot be
    collected."""
    from pcr_conformance import kits

    reqs = kits.load_requirements()
    if kit:
        reqs = kits.load_kit(kit).selected(reqs)
    # Without a kit: every requirement, so the register kit's tests and the client kits' (side = "client",
    # which the register kit never selects) are collected together.
    client_kits = () if kit else [k for k in kits.available_kits() if kits.load_kit(k).side == "client"]
    try:
        verifies = collect_verifies(suites_dir, kit=kit or "register", extra_kits=client_kits)
    except subprocess.SubprocessError as e:
        raise CollectError(str(e)) from e
    return coverage_of(reqs.values(), verifies)


def coverage_of(reqs: Iterable[Req], verifies: dict[str, list[str]]) -> list[Coverage]:
    """Join requirements (kits.Req) with {node id: [requirement IDs]}."""
    tests: dict[str, list[str]] = {}
    for node, ids in verifies.items():
        for rid in ids:
            tests.setdefault(rid, []).append(node)
    return [Coverage(id=r.id, level=r.level, title=r.title, error_code=r.error_code, not_tested=r.not_tested,
                     tests=tuple(sorted(tests.get(r.id, [])))) for r in reqs]


def main(argv: list[str]) -> int:
    out, *pytest_args = argv
    collector = VerifiesCollector()
    code = pytest.main([*pytest_args, "--collect-only", "-q"], plugins=[collector])
    Path(out).write_text(json.dumps(collector.verifies, indent=1), encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
