"""`pcr-conformance validate`: message files checked offline against the schema and the register-free rules;
with --response a recorded answer, with --har every request and answer of a HAR recording. The public reading
judges unless --contract reference; what only the reference reading finds is a warning (validate_traffic)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def main(args: argparse.Namespace) -> int:
    from pcr_conformance import validate

    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise CliError(f"--today {args.today!r} is not a yyyy-MM-dd date") from None
    from pcr_conformance import validate_traffic as traffic
    from pcr_conformance import versions

    if args.version:
        try:  # judge the messages by that version's files (the upgrade reading: what NEW rejects, and why)
            versions.select(args.version)
        except versions.VersionError as e:
            raise CliError(f"--version: {e}") from None
    reading = args.contract
    try:
        if args.har:
            results = [r for f in args.files
                       for r in traffic.validate_har(f, reading=reading, today=today, owner_is_kela=args.owner_is_kela)]
        elif args.response:
            if not args.operation:
                raise CliError("--response needs --operation OP (the operation the answer is of, e.g. GetBatchStatus)")
            results = traffic.validate_response_files(args.files, operation=args.operation, status=args.status,
                                                      reading=reading)
        else:
            results = validate.validate_files(args.files, operation=args.operation, today=today,
                                              owner_is_kela=args.owner_is_kela)
            results = [dataclasses.replace(r, problems=tuple(traffic.by_reading(r.problems, reading)))
                       for r in results]
    except validate.ValidationInputError as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(validate.to_json(results), indent=1))
    else:
        print(validate.render_text(results))
        rejected = sum(1 for r in results if not r.valid)
        print(f"contract version {versions.current_name() or 'unnamed'}: {rejected} of {len(results)} file(s) "
              f"rejected")
    return EXIT_OK if all(r.valid for r in results) else EXIT_FAILED
