"""A load run on Locust (docs/load.md): its options, Locust's command lines and running it.

Locust runs as its own process (`python -m locust -f pcr_conformance/load_users.py`): it patches the standard
library with gevent on import, which the harness's process must never see. This module writes the run's
target (target.as_mapping: an embedded register's resolved URLs and certificates), starts Locust headless (or
with its web UI), as a master waiting for workers when asked, waits for it within a deadline, and reads the
results file it wrote (load_results.read). A worker is Locust's own worker process with our locustfile:
`worker_command`, nothing of ours between it and the master.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pcr_conformance import judging
from pcr_conformance.embedded import die_with_parent
from pcr_conformance.errors import HarnessError
from pcr_conformance.load_results import LoadRun, read
from pcr_conformance.target import Target, as_mapping

LOCUSTFILE = Path(__file__).with_name("load_users.py")  # never imported here: see the docstring
RESULTS_FILE = "load-results.json"  # what the tests judge, in the run's folder (load_results.read)
START_S = 60.0  # Locust's start-up, its last reports and writing the HTML, beyond run time and stop timeout
WORKERS_WAIT_S = 120.0  # a master gives up when its workers have not all connected by then
STOP_MARGIN_S = 10.0  # beyond the batch deadline: a user's last task (a batch polled to its end) may finish


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    """How much load, for how long, and how Locust runs (its own option names, docs/load.md)."""

    users: int = 10
    spawn_rate: float = 5.0
    run_time_s: float = 30.0  # 0: until Locust is stopped (web UI only)
    web_ui: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8089
    master: bool = False
    expect_workers: int = 1
    master_bind_host: str = "*"
    master_port: int = 5557
    html: str = ""  # Locust's HTML report (default: <folder>/locust.html)
    csv: str = ""  # Locust's CSV prefix (default: <folder>/locust)
    cleanup: bool = False  # cancel the loans reported, at the end (cleanup.should_clean decides)


# The short load the register kit's tests run by themselves (and the self-test against each fault).
SMOKE = LoadOptions(users=6, spawn_rate=6.0, run_time_s=8.0)


def options_from_text(text: str, base: LoadOptions = SMOKE) -> LoadOptions:
    """`users=50,run_time_s=60,master=true` (--pcr-load) over `base`; HarnessError naming a bad field."""
    fields = {f.name: f for f in dataclasses.fields(LoadOptions)}
    changes: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in fields:
            raise HarnessError(f"--pcr-load {part!r}: write KEY=VALUE with KEY one of {sorted(fields)}")
        kind = type(getattr(base, key))
        try:
            if kind is bool:
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                changes[key] = value.lower() == "true"
            else:
                changes[key] = kind(value)
        except ValueError:
            raise HarnessError(f"--pcr-load {part!r}: {key} is a {kind.__name__}") from None
    options = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    check(options)
    return options


def check(options: LoadOptions) -> None:
    """HarnessError naming the option and the fix for a load that cannot run."""
    if options.users < 1:
        raise HarnessError(f"--users {options.users}: at least 1 user")
    if options.spawn_rate <= 0:
        raise HarnessError(f"--spawn-rate {options.spawn_rate:g}: users started per second, more than 0")
    if options.run_time_s < 0 or (options.run_time_s == 0 and not options.web_ui):
        raise HarnessError(f"--run-time {options.run_time_s:g}: a headless run needs a run time (e.g. 60s); "
                           f"only --web-ui runs until stopped")
    if options.master and options.expect_workers < 1:
        raise HarnessError(f"--expect-workers {options.expect_workers}: a master needs at least 1 worker")


def parse_duration(text: str) -> float:
    """Locust's --run-time form: 90, 90s, 2m, 1h30m."""
    raw = text.strip().lower()
    if raw.replace(".", "", 1).isdigit():
        return float(raw)
    total, number = 0.0, ""
    for ch in raw:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in "hms" and number:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            number = ""
        else:
            raise HarnessError(f"--run-time {text!r}: write seconds or e.g. 60s, 2m, 1h30m")
    if number:
        raise HarnessError(f"--run-time {text!r}: a unit after {number} (s, m or h)")
    return total


def stop_timeout_s(target: Target) -> float:
    """How long a stopping user may finish its task: the batch deadline it polls against, and a margin."""
    return float(judging.value("batch_deadline_s", target.batch_deadline_s)[0]) + STOP_MARGIN_S


def locust_command(options: LoadOptions, *, target_file: Path, results: Path, folder: Path, run_id: str,
                   stop_timeout: float) -> list[str]:
    """The Locust process of a local run or of the master."""
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--users", str(options.users),
           "--spawn-rate", f"{options.spawn_rate:g}", "--stop-timeout", f"{stop_timeout:g}",
           "--html", options.html or str(folder / "locust.html"), "--csv", options.csv or str(folder / "locust"),
           "--loglevel", "WARNING", "--exit-code-on-error", "0",
           "--pcr-target-file", str(target_file), "--pcr-results", str(results),
           "--pcr-run-time", f"{options.run_time_s:g}", "--pcr-run-id", run_id,
           "--pcr-cleanup", "yes" if options.cleanup else "no"]
    if options.web_ui:
        cmd += ["--web-host", options.web_host, "--web-port", str(options.web_port)]
        if options.run_time_s:
            cmd.append("--autostart")
    else:
        cmd.append("--headless")
    if options.master:
        cmd += ["--master", "--expect-workers", str(options.expect_workers), "--master-bind-host",
                options.master_bind_host, "--master-bind-port", str(options.master_port),
                "--expect-workers-max-wait", f"{WORKERS_WAIT_S:g}"]
    return cmd


def worker_command(master_host: str, master_port: int = 5557, own_target: str = "") -> list[str]:
    """Locust's own worker with our locustfile; `own_target`: a remote target file on this machine (else the
    master's target, reachable only from the master's machine for an embedded register)."""
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
           "--master-port", str(master_port), "--loglevel", "WARNING"]
    if own_target:
        cmd += ["--pcr-own-target", own_target]
    return cmd


def run(options: LoadOptions, target: Target, folder: Path, *, run_id: str) -> LoadRun:
    """Run the load against a started target; Locust's HTML, CSV and log and the results land in `folder`."""
    check(options)
    folder.mkdir(parents=True, exist_ok=True)
    target_file = folder / "target.json"
    target_file.write_text(json.dumps(as_mapping(target), indent=1), encoding="utf-8")
    results = folder / RESULTS_FILE
    results.unlink(missing_ok=True)
    stop = stop_timeout_s(target)
    cmd = locust_command(options, target_file=target_file, results=results, folder=folder, run_id=run_id,
                         stop_timeout=stop)
    deadline = None
    if options.run_time_s:
        deadline = options.run_time_s + stop + START_S + (WORKERS_WAIT_S if options.master else 0)
    log = folder / "locust.log"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent,  # a killed session leaves no Locust behind
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            code = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise HarnessError(f"the load run did not end within {deadline:g} s (run time, stop timeout and "
                               f"start-up); Locust's log: {log}") from None
        except BaseException:
            _stop(proc)
            raise
    if not results.is_file():
        tail = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:])
        raise HarnessError(f"Locust exited with {code} and wrote no results ({'; '.join(cmd[:4])} ...): "
                           f"{tail or 'no output'}")
    return read(results)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first (Locust writes its reports), then the whole process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
