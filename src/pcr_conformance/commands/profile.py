"""`pcr-conformance profile --learn --target T [--kit K] [--output FILE]`: a draft implementation profile.

Runs the kit's tests (default: every test, the `register` kit) against the target under the public reading
with no implementation profile, so every test asserts only the public part and records the implementation-
defined values it saw (judging.observe: the code answered for each modelled rule, the processing literal, the
extract's date format). Those values, each with the test that saw it, become a draft profiles/<name>.toml for
the register team to review. Not the Hypothesis `--profile` of `run`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import impl_profile, readings, resources
from pcr_conformance.cli import EXIT_OK, CliError

_VALUE_KEYS = ("processing_literal", "extract_date_format")  # what the suites observe besides error codes


def main(args: argparse.Namespace) -> int:
    if not args.learn:
        raise CliError("profile: say what to do: --learn (draft a profile from what a register answers)")
    with tempfile.TemporaryDirectory(prefix="pcr-profile-") as tmp:
        out = Path(tmp)
        cmd = [sys.executable, "-P", "-m", "pytest", str(resources.suites_dir()), *resources.suites_pytest_args(),
               "--pcr-target", args.target, "--pcr-kit", args.kit, "--pcr-contract", "public",
               "--pcr-implementation-profile", "", "--pcr-output", str(out), "-q", "-p", "no:cacheprovider"]
        print(f"== learning the implementation-defined values of {args.target} (kit {args.kit}, public reading)",
              flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            raise CliError(f"profile --learn: the run took longer than {args.timeout:g} s") from None
        try:
            summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise CliError(f"profile --learn: the run wrote no summary.json ({tail[0]})") from None
    if not summary.get("observed_values"):
        why = f": {summary.get('error')}" if summary.get("verdict") == "error" else ""
        raise CliError(f"profile --learn: the register showed no implementation-defined value{why}")
    text = draft(summary.get("observed_values") or {}, name=f"{summary.get('target', args.target)}-draft",
                 header=header(summary))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"draft implementation profile written to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def draft(observed: Mapping[str, Mapping[str, list[str]]], *, name: str, header: str) -> str:
    """The draft TOML from summary.json's observed_values: per key the value most tests saw (the others named
    in the header for review), with the first test that saw it."""
    codes: dict[str, tuple[str, str]] = {}
    values: dict[str, tuple[Any, str]] = {}
    disputed: list[str] = []
    for key, seen in sorted(observed.items()):
        if not seen:
            continue
        value, tests = max(seen.items(), key=lambda kv: (len(kv[1]), kv[0]))
        if len(seen) > 1:
            disputed.append(f"{key}: " + ", ".join(f"{v} ({len(t)} tests)" for v, t in sorted(seen.items())))
        if key.startswith("error_codes."):
            model = key.split(".", 1)[1]
            if not readings.is_public_code(model):  # a public code is the contract's, not a profile value
                codes[model] = (value, tests[0])
        elif key in _VALUE_KEYS:
            values[key] = (value, tests[0])
    if disputed:
        header += "\nValues seen in more than one form (the most frequent is written; check the others):\n" + \
            "\n".join(f"  {d}" for d in disputed)
    return impl_profile.draft_toml(name, codes, values, header)


def header(summary: Mapping[str, Any]) -> str:
    return (f"Draft implementation profile learned by `pcr-conformance profile --learn` from target "
            f"{summary.get('target')} (kit {summary.get('kit')}, run {summary.get('run_id')}, "
            f"{summary.get('started_utc', '')}).\n"
            "Review every value against the official API description before naming this profile in a target\n"
            "file (implementation_profile = \"<file>\"): a test then asserts each value exactly. Limits\n"
            "(max_body_bytes, max_reports_per_batch, max_nesting_depth) and batch_deadline_s are not learned.")
