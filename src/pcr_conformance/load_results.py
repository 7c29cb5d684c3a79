"""What a load run measured (docs/load.md): the results file its Locust master (or local runner) writes and the
load kit's tests read.

Locust's own statistics hold each operation's response times and failures, aggregated over every worker by
Locust itself. What they cannot hold is counted in a `Tally` per Locust process: batches acknowledged, final
(with their size and time to the final state) and lost, loans checked and missing, server errors and
unanswered requests by operation. A worker sends its tally's growth with each of Locust's reports to the
master (`take`), which merges it (`merge`); the master writes the whole as one JSON file (`write`), whole or
not at all.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance.errors import HarnessError

VERSION = 1
MAX_LINES = 20  # example lines kept per kind of problem: enough to reproduce, not a log


@dataclasses.dataclass
class Tally:
    """The counts of one process, or of the whole run once merged. Thread-safe (users are greenlets, but
    the reporting to the master runs beside them)."""

    batches_accepted: int = 0
    batches_final: int = 0
    batches_lost: int = 0
    final_times: list[list[float]] = dataclasses.field(default_factory=list)  # [reports, seconds] per final batch
    loans_checked: int = 0
    loans_missing: int = 0
    server_errors: dict[str, int] = dataclasses.field(default_factory=dict)  # "Operation 503" -> count
    unanswered: dict[str, int] = dataclasses.field(default_factory=dict)  # operation -> requests without an answer
    broken: dict[str, int] = dataclasses.field(default_factory=dict)  # operation -> refused / TLS / harness errors
    unexpected: dict[str, int] = dataclasses.field(default_factory=dict)  # "Operation 400" -> count (not 5xx)
    lines: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # kind -> first MAX_LINES examples
    cleanup: list[str] = dataclasses.field(default_factory=list)  # one line per process that cleaned up

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, counter: str, key: str | None = None, amount: int = 1, line: str = "") -> None:
        """Count `amount` on an int field, or on `key` of a dict field; keep `line` as an example of it."""
        with self._lock:
            if key is None:
                setattr(self, counter, getattr(self, counter) + amount)
            else:
                table = getattr(self, counter)
                table[key] = table.get(key, 0) + amount
            if line:
                kept = self.lines.setdefault(counter, [])
                if len(kept) < MAX_LINES:
                    kept.append(line)

    def final(self, reports: int, seconds: float) -> None:
        with self._lock:
            self.batches_final += 1
            self.final_times.append([reports, round(seconds, 3)])

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: json.loads(json.dumps(getattr(self, f.name))) for f in dataclasses.fields(self)}

    def take(self) -> dict[str, Any]:
        """The counts so far, and start again from zero (a worker's report to the master)."""
        with self._lock:
            data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            for f in dataclasses.fields(self):
                setattr(self, f.name, f.default_factory() if f.default_factory is not dataclasses.MISSING
                        else f.default)
            return data

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add another process's counts (a worker's `take`)."""
        with self._lock:
            for f in dataclasses.fields(self):
                value = data.get(f.name)
                if value is None:
                    continue
                mine = getattr(self, f.name)
                if isinstance(mine, int):
                    setattr(self, f.name, mine + int(value))
                elif isinstance(mine, list):
                    mine.extend(value)
                elif f.name == "lines":
                    for kind, lines in value.items():
                        kept = mine.setdefault(kind, [])
                        kept.extend(lines[:max(0, MAX_LINES - len(kept))])
                else:
                    for key, count in value.items():
                        mine[key] = mine.get(key, 0) + int(count)


def request_stats(entry: Any) -> dict[str, Any]:
    """One operation's figures from a Locust StatsEntry (response times in ms, as Locust keeps them)."""
    count = int(entry.num_requests)
    return {"count": count, "failures": int(entry.num_failures),
            "p50_ms": entry.get_response_time_percentile(0.5) if count else None,
            "p95_ms": entry.get_response_time_percentile(0.95) if count else None,
            "p99_ms": entry.get_response_time_percentile(0.99) if count else None,
            "max_ms": entry.max_response_time if count else None,
            "rps": round(float(entry.total_rps), 2)}


@dataclasses.dataclass(frozen=True)
class LoadRun:
    """A load run's results file, read back."""

    options: Mapping[str, Any]
    requests: Mapping[str, Mapping[str, Any]]  # operation -> request_stats
    tally: Mapping[str, Any]  # Tally.as_dict
    started_utc: str = ""
    duration_s: float = 0.0
    target: str = ""
    source: str = ""

    def count(self, operation: str) -> int:
        return int((self.requests.get(operation) or {}).get("count") or 0)

    def total_requests(self) -> int:
        return sum(int(r.get("count") or 0) for r in self.requests.values())

    def describe(self) -> str:
        """The load the figures were measured under, for a verdict's message."""
        o = self.options
        workers = f", {o.get('workers')} workers" if o.get("workers") else ""
        return (f"{o.get('users')} users for {o.get('run_time_s')} s{workers}: {self.total_requests()} requests, "
                f"{self.tally.get('batches_accepted', 0)} batches")


def write(path: Path, data: Mapping[str, Any]) -> None:
    """The results file, whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"version": VERSION, **data}, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def read(path: str | Path) -> LoadRun:
    """A results file; HarnessError naming the file and the fix when it is missing or not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise HarnessError(f"load results {p}: cannot read it ({e.strerror}); the load run wrote none "
                           f"(see its log beside it)") from None
    except ValueError as e:
        raise HarnessError(f"load results {p}: not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("requests"), dict) \
            or not isinstance(data.get("tally"), dict):
        raise HarnessError(f"load results {p}: not a results file of pcr-conformance load (version {VERSION} "
                           f"with requests and tally)")
    return LoadRun(options=data.get("options") or {}, requests=data["requests"], tally=data["tally"],
                   started_utc=str(data.get("started_utc", "")), duration_s=float(data.get("duration_s") or 0),
                   target=str(data.get("target", "")), source=str(p))
