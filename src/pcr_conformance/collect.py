"""Which suite test verifies which requirement: collected by pytest itself, in a child process.

Used by `pcr-conformance requirements` and `pcr-conformance selftest`. Collection runs in a subprocess so the
caller's own process never imports the suites or keeps pytest state.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

COLLECT_TIMEOUT_S = 300


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


def collect_verifies(suites_dir: Path, *, target: str = "reference", kit: str = "register") -> dict[str, list[str]]:
    """{node id: [requirement IDs]} of every test the kit selects under suites_dir."""
    with tempfile.TemporaryDirectory(prefix="pcr-collect-") as tmp:
        out = Path(tmp) / "verifies.json"
        cmd = [sys.executable, "-m", "pcr_conformance.collect", str(out), str(suites_dir),
               "--target", target, "--kit", kit, "-p", "no:cacheprovider"]
        proc = subprocess.run(cmd, cwd=suites_dir.parent, capture_output=True, text=True,
                              timeout=COLLECT_TIMEOUT_S)
        if not out.exists():
            raise RuntimeError(f"collecting {suites_dir} failed (exit {proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-2000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    out, *pytest_args = argv
    collector = VerifiesCollector()
    code = pytest.main([*pytest_args, "--collect-only", "-q"], plugins=[collector])
    Path(out).write_text(json.dumps(collector.verifies, indent=1), encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
