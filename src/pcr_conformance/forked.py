"""pytest sessions in forked children of one process that has imported pytest, the plugin and the suites once
(the self-test's many short runs, issue 12).

A pytest process spends seconds importing and rewriting schemathesis, Hypothesis, the plugin and the suites
before its first test; the self-test starts one session per fault. `warm_up` collects the suites in this
process (the modules stay imported, assertion-rewritten), and each run is then a `fork` of it: a fresh
process, so no state passes from one run to the next, that starts at pytest.main. The child gets its own
process group (a run over its time limit is killed with everything it started; the embedded register also
dies with its parent, embedded.die_with_parent), its output goes to its `pytest.log`, and its exit code is
pytest's. Forking needs no other thread to be running: the caller waits for the children on its main thread.

Linux only (`available()`): elsewhere the self-test starts `python -m pytest` subprocesses as before.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

POLL_S = 0.02  # how often finished children are looked for: a wait for child processes, not a fixed sleep


def available() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


@dataclasses.dataclass
class Job:
    """One pytest session: its arguments, its working folder (pytest.log goes there), extra environment."""

    args: list[str]
    workdir: Path
    env: dict[str, str]
    timeout_s: float
    key: object = None  # the caller's handle


@dataclasses.dataclass
class Done:
    job: Job
    exit_code: int  # pytest's; -1 when the run was killed at its time limit
    duration_s: float


def warm_up(pytest_args: Sequence[str]) -> int:
    """Collect once in this process (imports the plugin and the suites for the children to inherit)."""
    import pytest

    return int(pytest.main([*pytest_args, "--collect-only", "-q", "-p", "no:cacheprovider"]))


def _child(job: Job) -> None:
    """In the forked child: own process group, output to pytest.log, the job's environment, pytest.main."""
    code = 3
    try:
        os.setpgid(0, 0)
        job.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(job.workdir / "pytest.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # New text streams over the new descriptors: the parent's may have been locked at the fork.
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        os.environ.update(job.env)
        os.chdir(job.workdir)
        import pytest

        code = int(pytest.main(list(job.args)))
    except BaseException as e:  # noqa: BLE001 - the child must end here, with a code, whatever happened
        try:
            sys.stderr.write(f"forked pytest session failed: {type(e).__name__}: {e}\n")
        except Exception:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_all(jobs: Sequence[Job], *, parallel: int, on_done: Callable[[Done], Sequence[Job]]) -> None:
    """Run the jobs `parallel` at a time, each in a forked child; `on_done` may return follow-up jobs."""
    pending = list(jobs)
    running: dict[int, tuple[Job, float]] = {}
    # Every child inherits this process's heap (the collected suites, the plugin, schemathesis): frozen, its
    # objects are left out of the children's garbage collections, which would otherwise traverse all of them
    # (pytest collects once per session; the whole kit's control run many times), costing CPU and a
    # copy-on-write copy of every page they touch.
    gc.collect()
    gc.freeze()
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(job)
                running[pid] = (job, time.monotonic())
            finished = _reap(running)
            if not finished:
                time.sleep(POLL_S)
            for done in finished:
                pending.extend(on_done(done))
    finally:
        for pid in list(running):
            _kill(pid)
        gc.unfreeze()


def _reap(running: dict[int, tuple[Job, float]]) -> list[Done]:
    out: list[Done] = []
    now = time.monotonic()
    for pid, (job, started) in list(running.items()):
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == 0:
            if now - started > job.timeout_s:
                _kill(pid)
                del running[pid]
                out.append(Done(job, -1, now - started))
            continue
        del running[pid]
        code = os.waitstatus_to_exitcode(status)
        out.append(Done(job, code if code >= 0 else -1, now - started))
    return out


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
            break
        except (ProcessLookupError, PermissionError):
            continue
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
