"""Requirement checklist of the suites: every `must` requirement is verified by at least one test.

Run from the repository root: `python -m suites.checklist`. It reads specs/requirements.yaml, the
`verifies(...)` markers of the test files, the corpus cases' `verifies` lists and the fuzz checks' IDs, prints
what is missing and exits 1 when a `must` requirement without `not_tested` has no test.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"


def verified_ids() -> set[str]:
    found: set[str] = set()
    for path in SUITES.rglob("*.py"):
        for call in re.findall(r"verifies\(([^)]*)\)", path.read_text(encoding="utf-8")):
            found.update(re.findall(r"[A-Z]{3}-\d{3}", call))
    for path in (SUITES / "corpus").glob("*/*.yaml"):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            found.update(case["verifies"])
    from suites.fuzz import checks

    found.update(checks.REQUIREMENTS)
    return found


def main() -> int:
    reqs = yaml.safe_load((ROOT / "specs" / "requirements.yaml").read_text(encoding="utf-8"))["requirements"]
    known = {r["id"]: r for r in reqs}
    found = verified_ids()
    musts = sorted(i for i, r in known.items() if r["level"] == "must")
    untested = [i for i in musts if i not in found and not known[i].get("not_tested")]
    print(f"must requirements: {len(musts)}; verified by a test: {sum(i in found for i in musts)}; "
          f"not_tested: {[i for i in musts if known[i].get('not_tested')]}")
    print(f"all requirements verified: {len(found & set(known))}/{len(known)}; "
          f"unverified: {sorted(set(known) - found)}")
    unknown = sorted(found - set(known))
    if unknown:
        print(f"unknown IDs cited by the suites: {unknown}")
    if untested:
        print(f"MISSING: must requirements without a test: {untested}")
    return 1 if untested or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
