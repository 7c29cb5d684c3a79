"""`pcr-conformance requirements`: the requirement register with the tests that verify each requirement, the
seeded faults that prove those tests and, from the last self-test, how many distinct tests failed per fault."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
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


def proven_rows(rows: list[dict[str, Any]], results_file: str | None) -> list[dict[str, Any]]:
    """The rows with the faults of each requirement (`pcr-register faults`) and the self-test's results of them
    (proof.with_faults)."""
    from pcr_conformance import proof, selftest

    try:
        faults = selftest.load_faults()
        results = proof.load_results(Path(results_file) if results_file else None)
    except (selftest.SelftestError, proof.ProofError) as e:
        raise CliError(str(e)) from None
    return proof.with_faults(rows, [(f.name, f.requirement) for f in faults], results)


def main(args: argparse.Namespace) -> int:
    from pcr_conformance import proof

    rows = proven_rows(requirement_rows(args.kit), args.selftest)
    uncovered = [r for r in rows if r["level"] == "must" and not r["tests"] and not r["not_tested"]]
    unproven = [r for r in rows if not r["not_tested"] and not r["faults"]]
    shown = uncovered if args.uncovered else unproven if args.unproven else rows
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
            proven = "" if r["not_tested"] else ", proven" if r["proven"] else ", NO FAULT" if not r["faults"] \
                else ", not proven"
            print(f"{r['id']}  {r['level']:<6}  {r['title']}  [{cover}{proven}]")
            if not (args.uncovered or args.unproven):
                for node in r["tests"]:
                    print(f"    {node}")
                for p in r["faults"]:
                    print(f"    {proof.describe(p)}")
        covered = sum(1 for r in rows if r["tests"])
        scope = f"kit {args.kit}" if args.kit else "all kits"
        testable = [r for r in rows if not r["not_tested"]]
        print(f"\n{len(rows)} requirements ({scope}): {covered} verified by tests, "
              f"{sum(1 for r in rows if r['not_tested'])} not tested with a reason, "
              f"{len(uncovered)} must-requirements without either")
        print(f"{len(testable)} testable: {sum(1 for r in testable if r['proven'])} proven by a detected fault, "
              f"{len(unproven)} without a fault (self-test results: {args.selftest or proof.LAST_RUN})")
    if args.uncovered:
        return EXIT_FAILED if uncovered else EXIT_OK
    return EXIT_FAILED if args.unproven and unproven else EXIT_OK
