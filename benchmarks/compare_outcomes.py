"""Compare the per-test outcomes of several `pcr-conformance run` report folders (issue 12: the one-session run
must judge exactly as the kit-by-kit run did).

    .venv/bin/python benchmarks/compare_outcomes.py old1/reports old2/reports new1/reports new2/reports

For every kit and target present in the first folder: its tests, their outcomes, the requirement statuses and
the verdict in each folder; prints the differences (none is the expected result) and exits 1 if there are any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(root.glob("*/*/summary.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[f"{path.parent.parent.name}/{path.parent.name}"] = {
            "verdict": doc.get("verdict"),
            "tests": {n: t.get("outcome") for n, t in (doc.get("tests") or {}).items()},
            "requirements": doc.get("requirements") or {}}
    return out


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv]
    runs = [load(r) for r in roots]
    differences = 0
    for kit in runs[0]:
        first = runs[0][kit]
        counts = {}
        for o in first["tests"].values():
            counts[o] = counts.get(o, 0) + 1
        print(f"{kit}: {len(first['tests'])} tests {counts}, {len(first['requirements'])} requirements, "
              f"verdict {first['verdict']}")
        for root, run in zip(roots[1:], runs[1:], strict=True):
            other = run.get(kit)
            if other is None:
                print(f"  {root}: missing")
                differences += 1
                continue
            for part in ("verdict", "tests", "requirements"):
                if first[part] == other[part]:
                    continue
                if isinstance(first[part], dict):
                    keys = sorted(set(first[part]) | set(other[part]))
                    diff = [(k, first[part].get(k), other[part].get(k)) for k in keys
                            if first[part].get(k) != other[part].get(k)]
                    differences += len(diff)
                    for k, a, b in diff[:20]:
                        print(f"  {root}: {part} {k}: {a} -> {b}")
                else:
                    differences += 1
                    print(f"  {root}: {part}: {first[part]} -> {other[part]}")
    print(f"{differences} difference(s) over {len(roots)} runs")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
