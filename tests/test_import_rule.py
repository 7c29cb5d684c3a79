"""The import rule of ARCHITECTURE.md: the harness and the suites never import the reference register, and the
register never imports the harness. They meet only at specs/ and at HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (folder whose Python files are checked, top-level package it must not import)
FORBIDDEN = [
    (ROOT / "src" / "pcr_conformance", "pcr_register"),
    (ROOT / "suites", "pcr_register"),
    (ROOT / "src" / "pcr_register", "pcr_conformance"),
]


def imported_top_level_packages(path: Path) -> set[str]:
    """Names of the top-level packages a Python file imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("folder", "forbidden"), FORBIDDEN, ids=lambda v: getattr(v, "name", v))
def test_folder_does_not_import_forbidden_package(folder: Path, forbidden: str) -> None:
    """No Python file under the folder imports the forbidden package."""
    files = sorted(folder.rglob("*.py"))
    assert files, f"expected Python files under {folder}"
    offenders = [str(f.relative_to(ROOT)) for f in files if forbidden in imported_top_level_packages(f)]
    assert not offenders, f"import rule (ARCHITECTURE.md): {', '.join(offenders)} import {forbidden}"


def test_import_rule_detects_a_violation(tmp_path: Path) -> None:
    """The checker finds an import of the forbidden package, so the rule above can fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from pcr_register.app import make_app\nimport os\n", encoding="utf-8")
    assert "pcr_register" in imported_top_level_packages(bad)
