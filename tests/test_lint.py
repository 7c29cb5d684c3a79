"""ruff over the whole tree is part of the project's test command (issue 6)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_reports_no_problems() -> None:
    """ruff check finds no problem in src/, suites/, tests/ and benchmarks/."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "src", "suites", "tests", "benchmarks", "conftest.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
