"""Every `must` requirement is verified by a suite test or carries `not_tested` with a reason (issue 5, design
§8). The check is the CLI's own `requirements --uncovered`, so the lint and the command cannot disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_must_requirement_is_verified_or_not_tested() -> None:
    """`pcr-conformance requirements --uncovered` lists no must-requirement without a test or a reason."""
    result = subprocess.run(
        [sys.executable, "-m", "pcr_conformance.cli", "requirements", "--uncovered"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
