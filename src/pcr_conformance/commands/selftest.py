"""`pcr-conformance selftest`: the seeded-fault self-test (pcr_conformance.selftest) and its matrix.

A run of every fault also checks that every testable requirement of the kit has a fault (issue 13) and leaves
its results in reports/selftest/selftest.json, where `pcr-conformance requirements` reads them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def main(args: argparse.Namespace) -> int:
    import time

    from pcr_conformance import proof, selftest

    started = time.monotonic()
    try:
        faults = selftest.load_faults(args.fault)
        # With --fault only some faults run: whether every requirement has one is not this run's question.
        unproven = None if args.fault else selftest.unproven_requirements(faults, args.kit)
        results, control = selftest.run_selftest(faults, target=args.target, kit=args.kit, full=args.full,
                                                 contract=args.contract)
    except (selftest.SelftestError, RuntimeError) as e:
        raise CliError(str(e).splitlines()[0]) from None
    print(selftest.render_matrix(results, control, args.contract, unproven))
    print(f"selftest wall time: {time.monotonic() - started:.1f} s ({len(faults)} fault(s) and the control run, "
          f"{selftest.SELFTEST_JOBS} at a time)")
    text = json.dumps(selftest.to_json(results, control, args.contract, unproven), indent=1)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
    if not args.fault:
        try:
            proof.save(text)
        except OSError as e:  # a read-only working directory does not change the self-test's result
            print(f"note: could not keep the results in {proof.LAST_RUN} ({e.strerror}); use --json FILE")
    return EXIT_OK if selftest.selftest_passed(results, control, args.contract, unproven) else EXIT_FAILED
