"""`pcr-conformance validate`: message files checked offline against the schema and the register-free rules."""

from __future__ import annotations

import argparse
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
    try:
        results = validate.validate_files(args.files, operation=args.operation, today=today,
                                          owner_is_kela=args.owner_is_kela)
    except validate.ValidationInputError as e:
        raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(validate.to_json(results), indent=1))
    else:
        print(validate.render_text(results))
    return EXIT_OK if all(r.valid for r in results) else EXIT_FAILED
