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


OUTSIDE_DOCUMENTS = ("design" + ".md", "domain" + ".md")  # spelt apart so this file does not cite them


def test_no_file_cites_a_document_outside_the_repository() -> None:
    """Users only have the repository: code, specs and docs cite its own docs (docs/concepts.md,
    docs/register-facts.md, ARCHITECTURE.md), never a document that is not in it."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout.split()
    if not tracked:  # not a git checkout (an unpacked source tree): read the tree itself
        tracked = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".yaml", ".toml", ".mjs", ".ini", ".json", ".txt") or "node_modules" in name:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{name}: {doc}" for doc in OUTSIDE_DOCUMENTS if doc in text]
    assert not offenders, f"cite the repository's own docs instead: {offenders}"
