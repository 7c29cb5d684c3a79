"""Benchmark of the two commands a user and CI run many times a day (issue 12): the full run of all kits with
HTML reports (`pcr-conformance run`) and the seeded-fault self-test (`pcr-conformance selftest`).

    .venv/bin/python benchmarks/run.py                      # both, with this checkout's pcr-conformance
    .venv/bin/python benchmarks/run.py --only run --json bench.json
    .venv/bin/python benchmarks/run.py --cli /other/checkout/.venv/bin/pcr-conformance   # another version

For each command it prints the wall time and, from the processes it started: CPU seconds of the register
processes (`pcr-register serve`, and the self-test's `pcr-register fork-server` with the registers it forks), of Allure (Node), and of the harness (everything else: the CLI, pytest and
its forks); for the run also the wall time of the test session and of the report generation after it, test
executions (tests run, summed over pytest sessions), distinct tests (node ids over all kits' summary.json),
tests counted per kit, and HTTP calls (the requests recorded in the Allure results; a fuzz test records a
sample of its requests, so this is a lower bound). CPU seconds say how much work a command is; wall time on a
shared machine also says how busy it was (the load average is printed beside it).

CPU of the register and Allure processes is sampled from /proc every SAMPLE_S while the command runs (Linux),
so up to SAMPLE_S of each process's last moment is missed; the total is exact (getrusage of the children).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SAMPLE_S = 0.1
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_SUMMARY = re.compile(r"\] (?:\d+ \w+(?:, )?)+ in [\d.]+s")


class CpuSampler:
    """CPU seconds of descendant processes by kind, sampled from /proc/<pid>/stat while they run."""

    def __init__(self) -> None:
        self.root = 0  # the command's pid: only its descendants count (other users' registers do not)
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            procs: dict[int, tuple[int, str, float]] = {}
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                procs[int(proc.name)] = (int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / TICKS)
            ours, grew = {self.root}, True
            while grew:
                more = {pid for pid, (ppid, _, _) in procs.items() if ppid in ours} - ours
                ours |= more
                grew = bool(more)
            for pid in ours & set(procs):
                _, cmdline, cpu = procs[pid]
                # The self-test's registers are forks of `pcr-register fork-server` and carry its command line.
                kind = ("register" if "pcr-register serve" in cmdline or "pcr-register fork-server" in cmdline else
                        "allure" if "allure" in cmdline and "node" in cmdline else "")
                if kind:
                    self.last[pid] = (kind, cpu)

    def seconds(self, kind: str) -> float:
        return sum(cpu for k, cpu in self.last.values() if k == kind)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run cmd, streaming its output; wall time, the moment the test session's summary line appeared, CPU."""
    cpu_before = children_cpu()
    started = time.monotonic()
    session_end = None
    lines: list[str] = []
    with CpuSampler() as sampler:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler.root = proc.pid
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if _SUMMARY.search(line):
                session_end = time.monotonic()
        code = proc.wait()
    wall = time.monotonic() - started
    total = children_cpu() - cpu_before
    register, allure = sampler.seconds("register"), sampler.seconds("allure")
    return {"exit_code": code, "wall_s": round(wall, 1),
            "session_wall_s": round((session_end or time.monotonic()) - started, 1) if session_end else None,
            "report_wall_s": round(time.monotonic() - session_end, 1) if session_end else None,
            "cpu_s": {"total": round(total, 1), "register": round(register, 1), "allure": round(allure, 1),
                      "harness": round(max(0.0, total - register - allure), 1)},
            "output_tail": "".join(lines[-12:])}


def run_figures(cli: str, work: Path) -> dict[str, Any]:
    reports = work / "reports"
    out = timed([cli, "run", "--output", str(reports), "--json", str(work / "run.json")], work)
    summaries = sorted(reports.glob("*/*/summary.json"))
    distinct: set[str] = set()
    per_kit: dict[str, int] = {}
    for path in summaries:
        tests = json.loads(path.read_text(encoding="utf-8")).get("tests", {})
        distinct.update(tests)
        per_kit[path.parent.parent.name] = len(tests)
    logs = {p.read_text(encoding="utf-8") for p in reports.glob("*/*/pytest.log")}  # one session: one log
    executions = sum(sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed|error|errors|skipped|xfailed|xpassed)\b",
                                                    _last_summary(log))) for log in logs)
    calls = _recorded_calls(reports)
    out.update(test_executions=executions, distinct_tests=len(distinct), tests_per_kit=per_kit,
               http_calls_recorded=calls, pytest_sessions=len(logs))
    return out


def _last_summary(log: str) -> str:
    lines = [ln for ln in log.splitlines() if re.search(r" in [\d.]+s", ln)]
    return lines[-1] if lines else ""


# The name of a call's one attachment (calllog.Call.attachment_name): "N. Operation (slot[, note]): METHOD -> status".
_CALL_ATTACHMENT = re.compile(r"\d+\. \S+ \(.*\): [A-Z]+ -> ")


def _recorded_calls(reports: Path) -> int:
    """Requests recorded in the Allure results: each call is one attachment (counted per test once, over all
    kits: a test of several kits is one execution)."""
    seen: dict[str, int] = {}
    for result in reports.glob("*/*/allure-results/*-result.json"):
        doc = json.loads(result.read_text(encoding="utf-8"))
        seen[str(doc.get("historyId"))] = sum(1 for a in doc.get("attachments") or []
                                              if _CALL_ATTACHMENT.match(str(a.get("name", ""))))
    return sum(seen.values())


def selftest_figures(cli: str, work: Path) -> dict[str, Any]:
    out = timed([cli, "selftest", "--json", str(work / "selftest.json")], work)
    try:
        doc = json.loads((work / "selftest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    out.update(faults=doc["score"]["total"], detected=doc["score"]["detected"],
               runs=sum(len(f["passes"]) for f in doc["faults"]) + 1,
               test_executions=sum(f.get("tests_run", 0) for f in doc["faults"]) + doc["control"].get("tests_run", 0),
               control={k: doc["control"][k] for k in ("passed", "failed", "broken", "verdict")})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=shutil.which("pcr-conformance") or
                        str(Path(sys.executable).with_name("pcr-conformance")), help="the pcr-conformance to time")
    parser.add_argument("--only", choices=("run", "selftest"), help="only this command")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the reports (default: a temp folder)")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "cli": args.cli, "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="pcr-bench-") as tmp:
        work = Path(args.keep or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "run"):
            figures["run"] = run_figures(args.cli, work)
        if args.only in (None, "selftest"):
            figures["selftest"] = selftest_figures(args.cli, work)
    figures["load_average_after"] = os.getloadavg()
    for name in ("run", "selftest"):
        f = figures.get(name)
        if not f:
            continue
        print(f"== pcr-conformance {name} (exit {f['exit_code']})")
        print(f"wall {f['wall_s']} s", *(f"(test session {f['session_wall_s']} s, reports {f['report_wall_s']} s)",)
              if f.get("session_wall_s") is not None else ())
        cpu = f["cpu_s"]
        print(f"CPU {cpu['total']} s: register {cpu['register']} s, harness {cpu['harness']} s, "
              f"report generation (Allure) {cpu['allure']} s")
        for key in ("pytest_sessions", "test_executions", "distinct_tests", "tests_per_kit", "http_calls_recorded",
                    "runs", "faults", "detected", "control"):
            if key in f:
                print(f"{key.replace('_', ' ')}: {f[key]}")
    print(f"machine: {figures['machine']}; load average before {figures['load_average_before']}, after "
          f"{figures['load_average_after']}; {figures['date_utc']} UTC")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
