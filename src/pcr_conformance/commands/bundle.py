"""`pcr-conformance bundle`: one signed archive of a report folder, to hand over as evidence."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

from pcr_conformance.cli import EXIT_OK, CliError, version


def default_output(report_dir: Path) -> Path:
    """pcr-evidence-<kit>-<target>-<run id>.zip in the current folder (never inside the report folder)."""
    from pcr_conformance import bundle

    try:
        s = bundle.read_summary(report_dir)
    except bundle.BundleError:
        return Path("pcr-evidence.zip")
    run = s.get("run_id") or dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    name = "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", str(x)) for x in (s["kit"], s["target"], run))
    return Path(f"pcr-evidence-{name}.zip")


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"{what} {path}: {e.strerror or e}") from None


def main(args: argparse.Namespace) -> int:
    from pcr_conformance import bundle

    report_dir = Path(args.report_dir)
    output = Path(args.output) if args.output else default_output(report_dir)
    if output.resolve().is_relative_to(report_dir.resolve()):
        raise CliError(f"-o {output}: write the bundle outside the report folder {report_dir}")
    key = _read(args.sign_key, "--sign-key")
    cert = _read(args.cert, "--cert") if args.cert else None
    attester = bundle.Attester(args.attested_by_org or "", args.attested_by_person, args.attested_by_role)
    try:
        built = bundle.build(report_dir, key, cert, attester, output, tool_version=version(),
                             target_file=args.target)
    except bundle.BundleError as e:
        raise CliError(str(e)) from None
    for note in built.notes:
        print(f"note: {note}")
    att = built.predicate["attester"]
    signed = len(set(built.files) - set(bundle.ATTESTATION_FILES))
    print(f"{built.path}: {signed} files signed, verdict {built.predicate['verdict']}, "
          f"attested by {att['organisation']}, signed {built.predicate['signed_at']}")
    return EXIT_OK
