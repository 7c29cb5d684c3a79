"""Soak benchmark of the reference register: mixed valid and hostile traffic for a fixed time (issue 17).

Starts a register over mutual TLS (a test data dir from tests/register_fixtures.py) and sends, from
--workers threads for --seconds, the seeded requests of tests/register_hostile.py: --valid-share of them
valid, the rest hostile (random bytes, wrong types, huge strings, deep nesting, invalid UTF-8, lone
surrogates, duplicate members, numbers out of range, content types, oversize bodies, header abuse, other
methods, odd paths, missing bodies). Prints requests, 5xx, non-JSON refusals, unanswered requests, p50/p99
latency (requests that send their whole request; the missing-body cases wait for the read deadline by design
and are counted apart) and resident memory at the start, after the warm-up and at the end.

    .venv/bin/python benchmarks/soak.py                 # 60 s
    .venv/bin/python benchmarks/soak.py --seconds 600 --json soak.json
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from register_fixtures import make_data_dir, start_register  # noqa: E402
from register_hostile import WEIGHTS, Answer, Case, Sender, cases  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--valid-share", type=float, default=0.3)
    parser.add_argument("--read-deadline", type=float, default=2.0, help="the register's PCR_REGISTER_READ_DEADLINE_S")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    hostile = sum(v for k, v in WEIGHTS.items() if k != "valid")
    weights = {**WEIGHTS, "valid": max(1, round(hostile * args.valid_share / (1 - args.valid_share)))}
    data = Path(tempfile.mkdtemp(prefix="pcr-soak-"))
    make_data_dir(data)
    reg = start_register(data, validate_responses=False, extra_env={"PCR_REGISTER_READ_DEADLINE_S": str(args.read_deadline)})
    pid = reg.process.pid
    sender = Sender(reg.url, data, args.read_deadline + 10)
    results: list[tuple[float, Case, Answer]] = []
    lock = threading.Lock()
    start = time.monotonic()
    warm_end = start + args.warmup_seconds
    end = warm_end + args.seconds
    rss_start = rss_mb(pid)
    rss_warm: list[float] = []

    def work(index: int) -> None:
        seed = args.seed * 1_000_003 + index
        while time.monotonic() < end:
            for case in cases(seed, 200, weights=weights):
                if time.monotonic() >= end:
                    return
                answer = sender.send(case)
                with lock:
                    results.append((time.monotonic(), case, answer))
            seed += 7919

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.workers)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, warm_end - time.monotonic()))
    rss_warm.append(rss_mb(pid))
    for t in threads:
        t.join()
    time.sleep(1.5)  # the register's trimmer (memory.py) at rest, as at the start
    rss_end = rss_mb(pid)
    alive = reg.process.poll() is None
    reg.stop()

    measured = [(c, a) for ts, c, a in results if ts >= warm_end]
    kinds = collections.Counter(c.kind.split(":")[0] for c, _ in measured)
    statuses = collections.Counter(a.status for _, a in measured)
    five_xx = sum(1 for _, a in measured if a.status is not None and a.status >= 500)
    non_json = sum(1 for c, a in measured if a.status is not None and a.status >= 400 and not c.head
                   and not a.is_error_object())
    unanswered = sum(1 for c, a in measured if a.status is None and not c.expect_silence)
    over_deadline = sum(1 for _, a in measured if a.elapsed_s > args.read_deadline + 3)
    latencies = [a.elapsed_s * 1000 for c, a in measured if not c.kind.startswith(("missing_body", "silent"))]
    valid = [a.elapsed_s * 1000 for c, a in measured if c.kind == "valid"]
    report: dict[str, Any] = {
        "seconds": args.seconds, "workers": args.workers, "valid_share": args.valid_share,
        "read_deadline_s": args.read_deadline, "requests": len(measured),
        "requests_per_s": round(len(measured) / args.seconds, 1), "kinds": dict(kinds),
        "statuses": {str(k): v for k, v in statuses.items()}, "5xx": five_xx, "non_json_refusals": non_json,
        "unanswered": unanswered, "over_deadline": over_deadline,
        "latency_ms": {"p50": round(percentile(latencies, 0.5), 1), "p99": round(percentile(latencies, 0.99), 1),
                       "valid_p50": round(percentile(valid, 0.5), 1), "valid_p99": round(percentile(valid, 0.99), 1),
                       "mean": round(statistics.fmean(latencies), 1) if latencies else None},
        "rss_mb": {"start": round(rss_start, 1), "after_warmup": round(rss_warm[0], 1), "end": round(rss_end, 1),
                   "growth_after_warmup_pct": round(100 * (rss_end / rss_warm[0] - 1), 1)},
        "register_alive": alive,
    }
    print(f"requests {report['requests']} ({report['requests_per_s']}/s), 5xx {five_xx}, non-JSON refusals "
          f"{non_json}, unanswered {unanswered}, over deadline {over_deadline}")
    print(f"latency p50 {report['latency_ms']['p50']} ms, p99 {report['latency_ms']['p99']} ms "
          f"(valid p50 {report['latency_ms']['valid_p50']} ms, p99 {report['latency_ms']['valid_p99']} ms)")
    print(f"RSS start {report['rss_mb']['start']} MB, after warm-up {report['rss_mb']['after_warmup']} MB, "
          f"end {report['rss_mb']['end']} MB")
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if alive and five_xx == 0 and non_json == 0 and unanswered == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
