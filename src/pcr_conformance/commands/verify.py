"""`pcr-conformance verify`: check an evidence bundle's files and signature; print the verdict it certifies."""

from __future__ import annotations

import argparse
from pathlib import Path

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def main(args: argparse.Namespace) -> int:
    from pcr_conformance import bundle, bundle_verify

    path = Path(args.bundle)
    try:
        ca = bundle_verify.load_ca(Path(args.ca)) if args.ca else None
        result = bundle_verify.verify(path, ca)
    except bundle_verify.Invalid as e:
        print(f"{path}: INVALID: {e}")
        return EXIT_FAILED
    except bundle.BundleError as e:
        raise CliError(str(e)) from None
    for line in bundle_verify.render(path, result):
        print(line)
    return EXIT_OK
