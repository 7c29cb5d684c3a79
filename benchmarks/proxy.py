"""What `pcr-conformance proxy` costs (issue 14): the latency it adds to a request, against calling the register
directly, and the requests per second it forwards while recording and judging every exchange, as in a real
session.

Starts `pcr-conformance proxy --port 0` (which starts the embedded reference register) as its own process and
reads its proxy.json (URL, certificates, upstream URL). Mutual TLS on both legs, as a stakeholder's system uses it.

1. Latency, one request at a time on one kept-alive connection per path, direct and through the proxy
   alternating (so drift in the machine's load hits both alike): REQUESTS GetBatchStatus polls of one accepted
   batch, then SUBMISSIONS AddLoans of one new loan each (a new BatchReference each, so the proxy judges a whole
   submission, CLI-001's schema validation included). Printed: the median of each path and the difference, the
   median added latency.
2. Throughput, "requests/s": CONCURRENCY client threads, each with its own kept-alive connection, each sending
   its next GetBatchStatus poll as soon as the answer to the previous one came (a closed loop), THROUGHPUT
   requests in all; requests/s = THROUGHPUT / wall time. First against the register directly (the ceiling of
   this machine: the clients, the register and the proxy share its cores), then through the proxy.

The polls come in a tight loop, so the proxy also prints a CLI-005 finding for nearly every one (to /dev/null
here): the figures include the live judgement. On Linux the proxy process's CPU time per request is printed
too (from /proc): on a shared machine it moves far less with the load than the wall times do. A benchmark, not
a timed test: it prints figures, it asserts nothing.

    python benchmarks/proxy.py [--requests 300] [--submissions 40] [--concurrency 8] [--throughput-requests 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from pcr_conformance import messages
from pcr_conformance.client import ssl_context
from pcr_conformance.testdata import load_pool

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential GetBatchStatus polls per path")
    parser.add_argument("--submissions", type=int, default=40, help="sequential AddLoans per path")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads for the throughput run")
    parser.add_argument("--throughput-requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pcr-proxy-bench-") as tmp:
        out = Path(tmp) / "reports"
        proc = subprocess.Popen([sys.executable, "-m", "pcr_conformance.cli", "proxy", "--port", "0", "--output",
                                 str(out), "--no-html"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            info_file = out / "proxy" / "reference" / "proxy.json"
            deadline = time.monotonic() + 60
            while not info_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the proxy did not start")
                time.sleep(0.1)
            time.sleep(0.2)
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            return _measure(json.loads(info_file.read_text()), args, lambda: _cpu_s(proc.pid))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of the process (all its threads), None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _cpu_note(cpu: Callable[[], float | None], before: float | None, n: int) -> str:
    after = cpu()
    if before is None or after is None:
        return ""
    return f"; proxy CPU {(after - before) / n * 1000:.2f} ms per request"


def _measure(info: dict[str, Any], args: argparse.Namespace, cpu: Callable[[], float | None]) -> int:
    ident = info["identities"]["lender"]
    verify = ssl_context(info["ca_bundle"], ident["cert"], ident["key"])
    via, direct = info["url"], info["upstream"]["reporting"]
    person = next(p.id_code for p in load_pool(info["pool"]).persons if "income" in p.tags)
    envelope = {"targetEnvironment": info["environment"], "owner": ident["owner"]}
    run = uuid.uuid4().hex[:8]
    ref = f"Batch_bench_{run}"
    loan = messages.lump_sum_loan({"type": "Other", "number": f"BENCH-{ref}"}, person, "R-1")
    with httpx.Client(verify=verify, timeout=10) as c:
        c.post(f"{direct}/AddLoans", json={**envelope, "loans": [loan]}, headers={"BatchReference": ref})
    poll = {**envelope, "batchReference": ref}
    counter = iter(range(1, 1_000_000))

    def timed_poll(client: httpx.Client, base: str) -> float:
        t0 = time.perf_counter()
        r = client.post(f"{base}/GetBatchStatus", json=poll)
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise SystemExit(f"GetBatchStatus via {base}: HTTP {r.status_code} {r.text[:200]}")
        return elapsed

    def timed_submission(client: httpx.Client, base: str) -> float:
        n = next(counter)
        new = messages.lump_sum_loan({"type": "Other", "number": f"BENCH-{run}-{n}"}, person, f"R-{n}")
        body, headers = {**envelope, "loans": [new]}, {"BatchReference": f"Batch_bench_{run}_{n}"}
        t0 = time.perf_counter()
        r = client.post(f"{base}/AddLoans", json=body, headers=headers)
        elapsed = time.perf_counter() - t0
        if r.status_code != 202:
            raise SystemExit(f"AddLoans via {base}: HTTP {r.status_code} {r.text[:200]}")
        return elapsed

    with httpx.Client(verify=verify, timeout=10) as c:
        for _ in range(20):  # warm both paths: connections, caches
            timed_poll(c, direct)
            timed_poll(c, via)
        timed_submission(c, direct)
        timed_submission(c, via)
        for label, timed, n in (("GetBatchStatus", timed_poll, args.requests),
                                ("AddLoans (one loan)", timed_submission, args.submissions)):
            d, p = [], []
            before = cpu()  # the direct requests never reach the proxy: its CPU is the proxied requests'
            for _ in range(n):
                d.append(timed(c, direct))
                p.append(timed(c, via))
            time.sleep(0.1)  # the judging of the last exchange, after its answer
            md, mp = statistics.median(d) * 1000, statistics.median(p) * 1000
            note = _cpu_note(cpu, before, n)
            print(f"latency, sequential {label}, {n} per path: direct median {md:.2f} ms, through the proxy "
                  f"median {mp:.2f} ms, added {mp - md:.2f} ms{note}")

    per_thread = args.throughput_requests // args.concurrency
    n = per_thread * args.concurrency
    for label, base in (("the register directly", direct), ("through the proxy", via)):

        def worker(_: int, base: str = base) -> None:
            with httpx.Client(verify=verify, timeout=10) as c:
                for _ in range(per_thread):
                    timed_poll(c, base)

        before = cpu()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(worker, range(args.concurrency)))
        wall = time.perf_counter() - t0
        time.sleep(0.1)
        note = _cpu_note(cpu, before, n) if base == via else ""
        print(f"throughput {label}: {n} GetBatchStatus in {wall:.2f} s from {args.concurrency} client threads "
              f"(one kept-alive connection each, closed loop) = {n / wall:.0f} requests/s{note}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
