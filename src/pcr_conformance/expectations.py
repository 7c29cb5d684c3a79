"""Known deviations (docs/concepts.md#expectations): the expectations file of a target, `{stable test id: {ticket, reason}}`.

`targets/<target>.expectations.toml` beside the target file, or the file named by `--pcr-expectations`. Each
entry runs as a strict xfail, so a fixed bug makes its stale entry fail the run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pcr_conformance.errors import HarnessError


class ExpectationsError(HarnessError):
    """The expectations file is missing or malformed: the run cannot start (exit code 2)."""


def load_expectations(path: Path | None) -> dict[str, dict[str, str]]:
    """The deviations of the file at `path` ({} for None)."""
    if path is None:
        return {}
    if not path.is_file():
        raise ExpectationsError(f"expectations file {path} does not exist; fix --pcr-expectations")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ExpectationsError(f"{path}: not valid TOML: {e}") from e
    out: dict[str, dict[str, str]] = {}
    for i, entry in enumerate(data.get("deviation", [])):
        test, ticket = entry.get("test"), entry.get("ticket")
        if not test or not ticket:
            raise ExpectationsError(f"{path}: deviation[{i}] needs test (the node id) and ticket")
        out[str(test)] = {"ticket": str(ticket), "reason": str(entry.get("reason", ""))}
    return out
