"""`pcr-conformance requirements`: the requirement register with the tests that verify each requirement."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def requirement_rows(kit: str | None) -> list[dict[str, Any]]:
    """Each requirement (of the kit, if given) with the tests that verify it (collect.requirement_coverage)."""
    from pcr_conformance import collect
    from pcr_conformance.errors import HarnessError

    try:
        return [c.as_json() for c in collect.requirement_coverage(kit)]
    except HarnessError as e:
        raise CliError(str(e)) from None
    except (collect.CollectError, FileNotFoundError) as e:
        raise CliError(f"cannot collect the suites' tests: {str(e).splitlines()[0]}") from None


def main(args: argparse.Namespace) -> int:
    rows = requirement_rows(args.kit)
    uncovered = [r for r in rows if r["level"] == "must" and not r["tests"] and not r["not_tested"]]
    shown = uncovered if args.uncovered else rows
    if args.json:
        print(json.dumps(shown, indent=1))
    else:
        for r in shown:
            if r["tests"]:
                cover = f"{len(r['tests'])} test(s)"
            elif r["not_tested"]:
                cover = f"not tested: {r['not_tested']}"
            else:
                cover = "NO TEST"
            print(f"{r['id']}  {r['level']:<6}  {r['title']}  [{cover}]")
            if not args.uncovered:
                for node in r["tests"]:
                    print(f"    {node}")
        covered = sum(1 for r in rows if r["tests"])
        scope = f"kit {args.kit}" if args.kit else "all kits"
        print(f"\n{len(rows)} requirements ({scope}): {covered} verified by tests, "
              f"{sum(1 for r in rows if r['not_tested'])} not tested with a reason, "
              f"{len(uncovered)} must-requirements without either")
    return EXIT_FAILED if args.uncovered and uncovered else EXIT_OK
