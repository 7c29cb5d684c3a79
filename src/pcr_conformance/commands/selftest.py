"""`pcr-conformance selftest`: the seeded-fault self-test (pcr_conformance.selftest) and its matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def main(args: argparse.Namespace) -> int:
    import time

    from pcr_conformance import selftest

    started = time.monotonic()
    try:
        faults = selftest.load_faults(args.fault)
        results, control = selftest.run_selftest(faults, target=args.target, kit=args.kit, full=args.full,
                                                 contract=args.contract)
    except (selftest.SelftestError, RuntimeError) as e:
        raise CliError(str(e).splitlines()[0]) from None
    print(selftest.render_matrix(results, control, args.contract))
    print(f"selftest wall time: {time.monotonic() - started:.1f} s ({len(faults)} fault(s) and the control run, "
          f"{selftest.SELFTEST_JOBS} at a time)")
    if args.json:
        Path(args.json).write_text(json.dumps(selftest.to_json(results, control, args.contract), indent=1), encoding="utf-8")
    return EXIT_OK if selftest.selftest_passed(results, control, args.contract) else EXIT_FAILED
