"""Proven coverage (issue 13): which seeded fault proves which requirement, and by how many tests.

A requirement is *proven* when a fault that breaks it made at least one of the kit's tests fail in the
self-test. The self-test fails when a testable requirement (no `not_tested` reason) of the kit has no fault at
all, and warns when a fault is caught by one test only: one careless edit of that test silences the
requirement. `pcr-conformance requirements` joins the requirement register, the tests that verify each
requirement and the last self-test's results (the file the self-test writes, or a `--json` of it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Where a complete self-test leaves its results for `pcr-conformance requirements` (reports/ is generated).
LAST_RUN = Path("reports") / "selftest" / "selftest.json"


class ProofError(Exception):
    """A self-test results file that cannot be read: the message names the file and the fix."""


def save(text: str, path: Path = LAST_RUN) -> None:
    """Write a self-test's results whole or not at all (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def unproven(testable: Iterable[str], fault_requirements: Iterable[str]) -> list[str]:
    """The testable requirement IDs no fault breaks, in the order given."""
    have = set(fault_requirements)
    return [rid for rid in testable if rid not in have]


def single_test_faults(caught_by: Mapping[str, int]) -> list[str]:
    """Faults detected by exactly one distinct failing test ({fault name: distinct failing tests})."""
    return sorted(name for name, count in caught_by.items() if count == 1)


def load_results(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """{fault name: its entry} of a self-test results file (`selftest --json`); {} when the default file does
    not exist yet. A given file that is missing or not a self-test's JSON is a ProofError."""
    file = path or LAST_RUN
    if path is None and not file.exists():
        return {}
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProofError(f"{file}: cannot read the self-test results ({e.strerror}); run "
                         f"'pcr-conformance selftest --json {file}' first") from None
    except ValueError as e:
        raise ProofError(f"{file}: not JSON ({e}); give the file 'pcr-conformance selftest --json' wrote") from None
    faults = doc.get("faults") if isinstance(doc, dict) else None
    if not isinstance(faults, list) or not all(isinstance(f, dict) and "name" in f for f in faults):
        raise ProofError(f"{file}: no 'faults' list of named entries; give the file "
                         "'pcr-conformance selftest --json' wrote")
    cap = doc.get("fail_cap", 0)  # each entry carries where its run stopped counting
    return {str(f["name"]): {**f, "fail_cap": cap if isinstance(cap, int) else 0} for f in faults}


def fault_proof(name: str, requirement: str, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One fault of a requirement with what the last self-test saw of it (`run` false when it was not run)."""
    entry = results.get(name)
    if entry is None:
        return {"name": name, "run": False, "detected": False, "named": False, "tests_failed": 0,
                "failing_tests": []}
    failing = [str(t) for t in entry.get("failing_tests") or []]
    return {"name": name, "run": True, "detected": bool(entry.get("detected")), "named": bool(entry.get("named")),
            "tests_failed": int(entry.get("tests_failed", len(failing))), "failing_tests": failing,
            "fail_cap": int(entry.get("fail_cap", 0))}


def with_faults(rows: list[dict[str, Any]], faults: Iterable[tuple[str, str]],
                results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The requirement rows (collect.Coverage.as_json) each with `faults`: the faults breaking it, as
    fault_proof gives them, and `proven`: one of them was detected."""
    by_requirement: dict[str, list[dict[str, Any]]] = {}
    for name, requirement in faults:
        by_requirement.setdefault(requirement, []).append(fault_proof(name, requirement, results))
    out = []
    for row in rows:
        proofs = by_requirement.get(str(row["id"]), [])
        out.append({**row, "faults": proofs, "proven": any(p["detected"] for p in proofs)})
    return out


def describe(proof: Mapping[str, Any]) -> str:
    """One line for a fault of `pcr-conformance requirements`."""
    if not proof["run"]:
        return f"fault {proof['name']}: not in the last self-test"
    if not proof["detected"]:
        return f"fault {proof['name']}: NOT detected"
    count, cap = int(proof["tests_failed"]), int(proof.get("fail_cap", 0))
    if cap and count >= cap:
        return f"fault {proof['name']}: detected by at least {count} distinct failing tests (the run stops at {cap})" \
            + ("" if proof["named"] else ", requirement not named")
    warn = " (WARNING: one test only)" if count == 1 else ""
    named = "" if proof["named"] else ", requirement not named"
    return f"fault {proof['name']}: detected by {count} distinct failing test(s){named}{warn}"
