"""What `pcr-conformance proxy` costs (issue 14): the median added latency per request against calling the
register directly, and the requests per second the proxy forwards while recording and judging every exchange
live, as in a real session.

Starts `pcr-conformance proxy --port 0` (which starts the embedded reference register) as its own process,
reads its proxy.json (URL, certificates, upstream URL), sends REQUESTS sequential GetBatchStatus polls of one
accepted batch directly to the register and through the proxy (alternating, so drift in the machine's load
hits both alike), then CONCURRENCY threads of polls through the proxy for the throughput. The polls come in a
tight loop, so the proxy also prints a CLI-005 finding for nearly every one (to /dev/null here): the figure
includes the live judgement. A benchmark, not a timed test: it prints figures, it asserts nothing.

    python benchmarks/proxy.py [--requests 300] [--concurrency 8] [--throughput-requests 2000]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from pcr_conformance import messages
from pcr_conformance.client import ssl_context
from pcr_conformance.testdata import load_pool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per path")
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
            return _measure(json.loads(info_file.read_text()), args)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


def _measure(info: dict, args: argparse.Namespace) -> int:
    ident = info["identities"]["lender"]
    verify = ssl_context(info["ca_bundle"], ident["cert"], ident["key"])
    via, direct = info["url"], info["upstream"]["reporting"]
    person = next(p.id_code for p in load_pool(info["pool"]).persons if "income" in p.tags)
    envelope = {"targetEnvironment": info["environment"], "owner": ident["owner"]}
    ref = f"Batch_bench_{uuid.uuid4().hex[:8]}"
    loan = messages.lump_sum_loan({"type": "Other", "number": f"BENCH-{ref}"}, person, "R-1")
    with httpx.Client(verify=verify, timeout=10) as c:
        c.post(f"{direct}/AddLoans", json={**envelope, "loans": [loan]}, headers={"BatchReference": ref})
    poll = {**envelope, "batchReference": ref}

    def timed(client: httpx.Client, base: str) -> float:
        t0 = time.perf_counter()
        r = client.post(f"{base}/GetBatchStatus", json=poll)
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise SystemExit(f"GetBatchStatus via {base}: HTTP {r.status_code} {r.text[:200]}")
        return elapsed

    with httpx.Client(verify=verify, timeout=10) as c:
        for _ in range(20):  # warm both paths: connections, caches
            timed(c, direct)
            timed(c, via)
        d, p = [], []
        for _ in range(args.requests):
            d.append(timed(c, direct))
            p.append(timed(c, via))
    md, mp = statistics.median(d) * 1000, statistics.median(p) * 1000
    print(f"sequential GetBatchStatus, {args.requests} each: direct median {md:.2f} ms, through the proxy "
          f"median {mp:.2f} ms, added {mp - md:.2f} ms")
    per_thread = args.throughput_requests // args.concurrency

    n = per_thread * args.concurrency
    # The register alone first: the ceiling of this machine for the proxy's figure (both share its cores).
    for label, base in (("the register directly", direct), ("through the proxy", via)):

        def worker(_: int, base: str = base) -> None:
            with httpx.Client(verify=verify, timeout=10) as c:
                for _ in range(per_thread):
                    timed(c, base)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(worker, range(args.concurrency)))
        wall = time.perf_counter() - t0
        print(f"throughput {label}: {n} requests in {wall:.2f} s with {args.concurrency} client threads = "
              f"{n / wall:.0f} requests/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
