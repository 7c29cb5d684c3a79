"""Benchmark of the reference register, end to end over mutual TLS.

Starts ``pcr-register init`` + ``pcr-register serve`` exactly as a user would (interfaces.md §7) and measures

(a) ingest throughput: reports/s through AddLoans from the POST until GetBatchStatus says FinishedSuccess,
    one batch at a time (median over several batches);
(b) extract latency: GetCreditRegisterExtract p50/p95/p99 over sequential requests on one keep-alive
    connection, for persons holding a few loans each, while the database holds N loans in all.

The database is pre-filled through the API (AddLoans, several batches in flight; `--prefill api`, the
default) or in bulk straight into the register's tables while the register is stopped (`--prefill bulk`:
register_bulk.py, COPY on PostgreSQL, executemany in one transaction on SQLite); the figure is reported as
"prefill reports/s" with its seconds (the load time). The backend is SQLite (a file) or PostgreSQL
(`--backend postgresql`: a throwaway durable server of the installed binaries, or `--db postgresql://...`). Background loans go to the other active persons of the population, so the queried
persons keep a realistic handful of loans and the latency shows the effect of the database size rather
than of one person's extract size.

    .venv/bin/python benchmarks/register.py                     # 100 000 and 1 000 000 loans
    .venv/bin/python benchmarks/register.py --loans 20000 --quick
    .venv/bin/python benchmarks/register.py --backend postgresql --prefill bulk --loans 1000000,12500000

Prints a table and a JSON document (also written to --json FILE).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import register_bulk
from register_process import (
    BenchmarkError,
    Register,
    client_for,
    owner_of,
    pool_owner,
    prepare,
    running_register,
)

from pcr_register import pgserver

MAX_BODY_BYTES = 5 * 1024 * 1024  # specs/errors.yaml H13: stay below it


@dataclass(frozen=True)
class Settings:
    levels: tuple[int, ...]  # loans in the database at which (a) and (b) are measured
    batch_size: int  # reports per measured ingest batch
    batches: int  # measured ingest batches per level
    requests: int  # measured extracts per level
    warmup: int  # extracts before measuring (not counted)
    query_persons: int  # persons whose extracts are measured
    loans_per_query_person: int
    prefill_batch_size: int
    in_flight: int  # prefill batches submitted before waiting for the oldest
    poll_s: float  # GetBatchStatus poll interval
    batch_deadline_s: float


# --- messages (interfaces.md §2) -------------------------------------------------------------------


class Loans:
    """Valid AddLoans lump-sum loan reports with unique loan numbers (register_bulk.loan_report)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.n = 0

    def report(self, borrower: str) -> dict[str, Any]:
        self.n += 1
        return register_bulk.loan_report(self.n, borrower, f"BENCH-{self.run_id}")


class Reporter:
    """Submits AddLoans batches as lender-a and waits for their final state."""

    def __init__(self, register: Register, settings: Settings, run_id: str, first_batch: int = 0) -> None:
        self.client = client_for(register, "lender-a", "reporting")
        self.owner = owner_of(register, "lender-a")
        self.settings = settings
        self.run_id = run_id
        self.batches = first_batch  # batch references stay unique over the register restarts of a bulk run
        self.loans_stored = 0

    def submit(self, reports: list[dict[str, Any]]) -> str:
        self.batches += 1
        reference = f"Bench_{self.run_id}_{self.batches}"
        body = json.dumps({"targetEnvironment": "Test", "owner": self.owner, "loans": reports},
                          separators=(",", ":")).encode()
        if len(body) >= MAX_BODY_BYTES:
            raise BenchmarkError(f"batch body of {len(body)} bytes exceeds 5 MiB: lower the batch size")
        resp = self.client.post("/AddLoans", content=body,
                                headers={"BatchReference": reference, "Content-Type": "application/json"})
        if resp.status_code != 202:
            raise BenchmarkError(f"AddLoans answered {resp.status_code}: {resp.text[:500]}")
        return reference

    def wait(self, reference: str) -> dict[str, Any]:
        body = {"targetEnvironment": "Test", "owner": self.owner, "batchReference": reference}
        deadline = time.monotonic() + self.settings.batch_deadline_s
        while True:
            resp = self.client.post("/GetBatchStatus", json=body)
            if resp.status_code != 200:
                raise BenchmarkError(f"GetBatchStatus answered {resp.status_code}: {resp.text[:500]}")
            status = resp.json()
            if status["batchStatus"] != "Processing":
                break
            if time.monotonic() > deadline:
                raise BenchmarkError(f"batch {reference} still Processing after {self.settings.batch_deadline_s} s")
            time.sleep(self.settings.poll_s)
        if status["batchStatus"] != "FinishedSuccess" or status["acceptedCount"] != status["reportCount"]:
            errors = [r for r in status.get("reportResults", []) if r.get("status") == "Rejected"][:3]
            raise BenchmarkError(f"batch {reference}: {status['batchStatus']}, "
                                 f"{status['rejectedCount']} rejected, e.g. {json.dumps(errors)[:800]}")
        self.loans_stored += status["acceptedCount"]
        return status

    def timed_batch(self, reports: list[dict[str, Any]]) -> float:
        """Seconds from the POST until the batch is FinishedSuccess."""
        start = time.perf_counter()
        self.wait(self.submit(reports))
        return time.perf_counter() - start

    def pipelined(self, batches: Iterator[list[dict[str, Any]]]) -> tuple[int, float]:
        """Submit with up to ``in_flight`` batches outstanding; returns (reports, seconds)."""
        start = time.perf_counter()
        before = self.loans_stored
        pending: collections.deque[str] = collections.deque()
        for reports in batches:
            pending.append(self.submit(reports))
            if len(pending) >= self.settings.in_flight:
                self.wait(pending.popleft())
        while pending:
            self.wait(pending.popleft())
        return self.loans_stored - before, time.perf_counter() - start


# --- measurements ----------------------------------------------------------------------------------


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
            "mean_ms": round(statistics.fmean(samples_ms), 2), "max_ms": round(max(samples_ms), 2)}


def measure_extracts(register: Register, persons: list[str], expected_loans: int, settings: Settings
                     ) -> dict[str, Any]:
    client = client_for(register, "lender-a", "using-data")
    owner = owner_of(register, "lender-a")
    samples: list[float] = []
    with client:
        for i in range(settings.warmup + settings.requests):
            code = persons[i % len(persons)]
            body = json.dumps({
                "targetEnvironment": "Test", "owner": owner,
                "request": {"idCodeType": "PersonalIdentityCode", "idCode": code,
                            "creditRegisterExtractPurpose": ["NewConsumerCredit"]},
            }).encode()
            start = time.perf_counter()
            resp = client.post("/GetCreditRegisterExtract", content=body,
                               headers={"Content-Type": "application/json"})
            elapsed = time.perf_counter() - start
            if resp.status_code != 200:
                raise BenchmarkError(f"GetCreditRegisterExtract answered {resp.status_code}: {resp.text[:500]}")
            count = resp.json()["creditRegisterExtract"]["creditInformationSummary"]["loanContractsCount"]
            if count != expected_loans:  # the figure would be meaningless if the extract were wrong
                raise BenchmarkError(f"extract of {code}: {count} loans, expected {expected_loans}")
            if i >= settings.warmup:
                samples.append(elapsed * 1000)
    return {"requests": len(samples), **percentiles(samples)}


def chunks(reports: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for report in reports:
        batch.append(report)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def source_version() -> str:
    """git commit of the register under test (with "+dirty" for uncommitted changes), or "unknown"."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src/pcr_register"],
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run(settings: Settings, workdir: Path, db: str, backend: str, prefill_method: str) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    result: dict[str, Any] = {
        "benchmark": f"pcr-register end to end (mutual TLS, one process, {backend})",
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "register_source": source_version(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "settings": asdict(settings),
        "backend": backend,
        "prefill_method": "api (AddLoans, pipelined)" if prefill_method == "api" else
        "bulk (register_bulk.py: COPY on PostgreSQL, executemany in one transaction on SQLite; register stopped)",
        "levels": [],
    }
    data_dir, pool = prepare(workdir)
    tags = {p["idCode"]: set(p["tags"]) for p in pool["persons"]}
    plain = [c for c, t in tags.items() if "income" in t and not t & {"voluntary-ban", "century-twin"}]
    if len(plain) <= settings.query_persons:
        raise BenchmarkError("population too small for the number of query persons")
    query = plain[:settings.query_persons]
    background = [c for c, t in tags.items() if t & {"income", "no-income"} and c not in set(query)]
    loans = Loans(run_id)
    stored = 0  # loans in the database
    bulk_next = 0  # the next bulk loan number
    if prefill_method == "bulk":  # the measured persons' loans, also in bulk
        own = len(query) * settings.loans_per_query_person
        register_bulk.load(db, own, owner="lender-a", owner_json=json.dumps(pool_owner(pool, "lender-a")),
                           prefix=f"OWN-{run_id}", borrowers=query)
        stored = own

    def background_reports(count: int) -> Iterator[dict[str, Any]]:
        for _ in range(count):
            yield loans.report(background[loans.n % len(background)])

    for index, level in enumerate(settings.levels):
        measured = settings.batches * settings.batch_size
        pending_own = len(query) * settings.loans_per_query_person if prefill_method == "api" and index == 0 else 0
        to_fill = max(0, level - stored - measured - pending_own)
        prefill: dict[str, Any] = {"reports": to_fill}
        if prefill_method == "bulk" and to_fill:
            seconds = register_bulk.load(db, to_fill, start=bulk_next, owner="lender-a",
                                         owner_json=json.dumps(pool_owner(pool, "lender-a")), prefix=f"BULK-{run_id}",
                                         exclude=frozenset(tags))
            bulk_next += to_fill
            stored += to_fill
            prefill.update(seconds=round(seconds, 2), reports_per_s=round(to_fill / seconds))
            print(f"[{level}] bulk-loaded {to_fill} loans in {seconds:.1f} s", file=sys.stderr)
        with running_register(workdir, data_dir, pool, db) as register:
            reporter = Reporter(register, settings, run_id, first_batch=index * 1000)
            with reporter.client:
                if prefill_method == "api":
                    if index == 0:  # the measured persons get a fixed handful of loans each
                        own = [loans.report(code) for code in query for _ in range(settings.loans_per_query_person)]
                        for batch in chunks(iter(own), settings.prefill_batch_size):
                            reporter.wait(reporter.submit(batch))
                        stored += len(own)
                    filled, seconds = reporter.pipelined(
                        chunks(background_reports(to_fill), settings.prefill_batch_size))
                    stored += filled
                    prefill.update(seconds=round(seconds, 2), reports_per_s=round(filled / seconds) if filled else None)
                    print(f"[{level}] prefilled {filled} loans in {seconds:.1f} s", file=sys.stderr)

                rates = []
                for _ in range(settings.batches):
                    reports = list(background_reports(settings.batch_size))
                    rates.append(settings.batch_size / reporter.timed_batch(reports))
                stored += settings.batches * settings.batch_size
                ingest = {"batch_size": settings.batch_size, "batches": settings.batches,
                          "reports_per_s_median": round(statistics.median(rates)),
                          "reports_per_s_each": [round(r) for r in rates]}
                print(f"[{level}] ingest median {ingest['reports_per_s_median']} reports/s", file=sys.stderr)

                extract = measure_extracts(register, query, settings.loans_per_query_person, settings)
                print(f"[{level}] extract p95 {extract['p95_ms']} ms", file=sys.stderr)
            result["levels"].append({
                # The machine may be shared: the 1-minute load average says how noisy the figures are.
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "loans_in_db": stored,
                "db_bytes": register_bulk.database_bytes(db),
                "ingest": ingest, "extract": extract, "prefill": prefill,
            })
    return result


def table(result: dict[str, Any]) -> str:
    s = result["settings"]
    header = (f"{'loans in DB':>12} | {'ingest reports/s':>16} | {'extract p50 ms':>14} | {'p95 ms':>8} | "
              f"{'p99 ms':>8} | {'prefill reports/s':>17} | {'prefill s':>9} | {'DB MiB':>7} | {'load':>5}")
    rows = [f"pcr-register ({result['backend']}) at {result['register_source']}, started {result['started_utc']}, "
            f"{result['machine']['cpus']} CPUs", header, "-" * len(header)]
    for lv in result["levels"]:
        e, i, p = lv["extract"], lv["ingest"], lv["prefill"]
        rows.append(f"{lv['loans_in_db']:>12,} | {i['reports_per_s_median']:>16,} | {e['p50_ms']:>14.2f} | "
                    f"{e['p95_ms']:>8.2f} | {e['p99_ms']:>8.2f} | {p.get('reports_per_s') or '-':>17} | "
                    f"{p.get('seconds', '-'):>9} | "
                    f"{lv['db_bytes'] / 2**20:>7.0f} | {lv['load_avg_1m']:>5.1f}")
    rows.append(f"ingest: median of {s['batches']} AddLoans batches of {s['batch_size']} reports, POST to "
                f"FinishedSuccess, one at a time; extract: {s['requests']} sequential requests "
                f"({s['warmup']} warm-up) for {s['query_persons']} persons with {s['loans_per_query_person']} "
                f"loans each; prefill: {result['prefill_method']}; DB MiB: the SQLite file with its WAL, or "
                "pg_database_size; load = 1-minute load average after the level")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", default=None,
                        help="comma-separated database sizes (default 100000,1000000; --quick: 20000)")
    parser.add_argument("--quick", action="store_true", help="fewer batches and requests, a small database")
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir and database")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="sqlite (a file in the temporary folder; default) or postgresql (a throwaway server "
                        "from the PostgreSQL binaries, durable: fsync on)")
    parser.add_argument("--db", metavar="URL", help="an empty PostgreSQL database postgresql://... to use instead "
                        "of a throwaway server (implies --backend postgresql)")
    parser.add_argument("--prefill", choices=("api", "bulk"), default="api",
                        help="fill the database through the API (AddLoans; default) or in bulk (register_bulk.py)")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting of the throwaway PostgreSQL server (repeatable), e.g. "
                        "synchronous_commit=off, to see what a setting costs")
    args = parser.parse_args(argv)
    backend = "postgresql" if args.db else args.backend
    pg_settings = dict(item.split("=", 1) for item in args.pg_setting if "=" in item)

    loans = args.loans or ("20000" if args.quick else "100000,1000000")
    levels = tuple(sorted(int(x.replace("_", "")) for x in loans.split(",") if x.strip()))
    settings = Settings(
        levels=levels,
        batch_size=2000 if args.quick else 5000,
        batches=3 if args.quick else 5,
        requests=100 if args.quick else 500,
        warmup=10 if args.quick else 20,
        query_persons=50,
        loans_per_query_person=3,
        prefill_batch_size=5000,
        in_flight=4,
        poll_s=0.02,
        batch_deadline_s=600,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pcr-bench-"))
    server = None
    try:
        if args.db:
            db = args.db
        elif backend == "postgresql":
            server = pgserver.start(durable=True, settings=pg_settings)
            db = server.create_database()
        else:
            db = str(workdir / "register.sqlite3")
        result = run(settings, workdir, db, backend, args.prefill)
        result["pg_settings"] = pg_settings
    except (BenchmarkError, pgserver.PgServerError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(result))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
