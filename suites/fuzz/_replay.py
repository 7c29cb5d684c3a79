"""The generated cases of a certification fuzz run, kept so the next run sends them without generating them again
(issue 12: drawing AddLoans bodies is most of a fuzz test's time, and a derandomized run draws the same ones).

Under a derandomized profile (`certification`) Hypothesis draws the same cases in the same order every time, as
long as every case passes: the draws depend on the strategy (the spec document, this package's code, the library
versions) and the settings, never on the answers; only a failure changes the course (shrinking). So after a run in
which every case passed, the cases are written to the cache under a key made of all of those; a later run with the
same key sends exactly those cases, in that order, through the same checks, and is the run Hypothesis would have
made. A case that fails during a replay fails the test with that case's own message (it is not shrunk: sending
the earlier cases again could change a writable register's answers). Nothing is cached for a random profile
(`regression`), for a run that failed, or for a case that does not come back from JSON exactly as it was.

The cache lives in $PCR_CACHE_DIR (default $XDG_CACHE_HOME/pcr-conformance, else ~/.cache/pcr-conformance), one
file per key under fuzz-cases/; PCR_CACHE_DIR=off turns it off. A file that cannot be read or written is ignored:
the cases are then generated as without a cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from pcr_conformance import resources

FORMAT = 1  # bump when what a record holds changes
_CODE = (Path(__file__).with_name("_fuzz.py"), Path(__file__))  # how the strategy is composed and replayed


def cache_dir() -> Path | None:
    """Where the fuzz cases are kept, or None when the cache is off."""
    home = resources.cache_home()
    return None if home is None else home / "fuzz-cases"


def key(operation_id: str, spec_document: Any, settings: Any, schema_config: Any) -> str:
    """Everything the drawn cases depend on: the spec document, the operation, the Hypothesis settings and the
    schemathesis generation config and seed, the library versions, and this package's code."""
    parts = {
        "format": FORMAT,
        "operation": operation_id,
        "spec": hashlib.sha256(json.dumps(spec_document, sort_keys=True, default=str).encode()).hexdigest(),
        "settings": repr(settings),
        "generation": repr(schema_config.generation),
        "seed": repr(schema_config.seed),
        "versions": {name: _version(name) for name in ("schemathesis", "hypothesis")},
        "code": [hashlib.sha256(path.read_bytes()).hexdigest() for path in _CODE],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def load(cache_key: str) -> list[dict[str, Any]] | None:
    """The cases stored under the key, or None (no cache, no file, or a file that is not a list of records)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        records = json.loads((folder / f"{cache_key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "method" in r for r in records):
        return None
    return records


def store(cache_key: str, records: list[dict[str, Any]]) -> None:
    """Write the cases atomically (workers and self-test runs may write the same key at once, with the same
    content); a cache that cannot be written is left alone."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{cache_key}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(records, handle)
        os.replace(tmp, folder / f"{cache_key}.json")
    except OSError:
        return


def record(case: Any, own: bool) -> dict[str, Any] | None:
    """A case as sent before the caller's envelope (`own`: whether the envelope is put on it), or None when it
    would not come back from JSON exactly as it is (NaN, tuples, bytes outside the body): such a run is not cached."""
    from schemathesis.core import NOT_SET

    rec: dict[str, Any] = {
        "method": case.method, "path_parameters": dict(case.path_parameters or {}),
        "headers": dict(case.headers or {}), "cookies": dict(case.cookies or {}), "query": dict(case.query or {}),
        "media_type": case.media_type, "own": own,
    }
    if isinstance(case.body, bytes):  # syntax fuzzing sends raw bytes as the body
        rec["body_base64"] = base64.b64encode(case.body).decode("ascii")
    elif case.body is not NOT_SET:
        rec["body"] = case.body
    try:
        text = json.dumps(rec, allow_nan=False)
    except (TypeError, ValueError):
        return None
    copy = json.loads(text)  # a snapshot: the envelope is put on the case's own body afterwards
    return copy if copy == rec else None


def rebuild(operation: Any, rec: dict[str, Any]) -> Any:
    """The schemathesis case of a record, ready to be sent."""
    from schemathesis.core import NOT_SET

    body = base64.b64decode(rec["body_base64"]) if "body_base64" in rec else rec.get("body", NOT_SET)
    return operation.Case(method=rec["method"], path_parameters=rec["path_parameters"], headers=rec["headers"],
                          cookies=rec["cookies"], query=rec["query"], body=body, media_type=rec["media_type"])
