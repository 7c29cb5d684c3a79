"""The embedded register forked by a `pcr-register fork-server` instead of started as a process of its own
(the self-test's ~140 registers, issue 12).

A register started on its own spends most of its start-up importing and parsing the spec files. The self-test
starts one fork server (`running_server`) and names its Unix socket in PCR_REGISTER_FORK_SERVER for the runs
it forks; `embedded.start` then asks the server for the register (`fork`), with the same `serve` arguments and
the environment it would have given the process (PCR_REGISTER_FAULTS: each run's register has exactly its
faults). The register is still a process of its own, reached over HTTPS; the harness meets it at the command
line and a socket, never by import (ARCHITECTURE.md). The protocol is the register's: pcr_register/forkserver.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pcr_conformance.errors import HarnessError

ENV_VAR = "PCR_REGISTER_FORK_SERVER"  # the socket of the fork server the embedded register is asked from
CONTROL = "pcr-register-fork: "  # the lines the fork server and its children add to a register's output
READY_DEADLINE_S = 30.0  # the server imports the register and parses the specs first


class ForkedRegister:
    """A register forked for this process, with what embedded.py uses of subprocess.Popen: `pid`, `stdout` (its
    output lines), `poll`, `wait`, `terminate` (closing our side of the connection: it stops as on SIGTERM),
    `kill`, `returncode` (told by the fork server when the register has ended)."""

    def __init__(self, conn: socket.socket, pid: int, stream: Iterator[str]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._conn = conn
        self._lines = stream
        self._ended = threading.Event()
        self.stdout = self._output()

    def _output(self) -> Iterator[str]:
        try:
            for line in self._lines:
                if line.startswith(f"{CONTROL}exit "):
                    self.returncode = int(line[len(CONTROL) + 5:].strip() or -1)
                    break
                yield line
        except (OSError, ValueError):
            pass
        finally:
            if self.returncode is None:
                self.returncode = -signal.SIGKILL  # the connection broke without the server's word
            self._ended.set()
            with contextlib.suppress(OSError):
                self._conn.close()

    def poll(self) -> int | None:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"register pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_WR)

    def kill(self) -> None:
        if not self._ended.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)


def fork(server: str, argv: list[str], *, env: dict[str, str], deadline_s: float) -> ForkedRegister:
    """Ask the fork server at socket `server` for `pcr-register` with `argv` (a `serve` command line)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(deadline_s)
        conn.connect(server)
        conn.sendall((json.dumps({"argv": argv, "env": env, "cwd": os.getcwd()}) + "\n").encode())
        reader = conn.makefile("r", encoding="utf-8", errors="replace")
        first = reader.readline()
        conn.settimeout(None)  # from here on the register's output is read in a thread (embedded._pump)
    except OSError as e:
        conn.close()
        raise HarnessError(f"the register's fork server at {server} ({ENV_VAR}) did not answer: {e}") from e
    if not first.startswith(f"{CONTROL}pid "):
        conn.close()
        raise HarnessError(f"the register's fork server at {server} ({ENV_VAR}) answered "
                           f"{first.strip()[:200] or 'nothing'!r} instead of a register")
    return ForkedRegister(conn, int(first[len(CONTROL) + 4:]), iter(reader))


@contextlib.contextmanager
def running_server(register_cmd: list[str], env: dict[str, str],
                   preexec_fn: Callable[[], None] | None = None) -> Iterator[str | None]:
    """A fork server for the processes this one forks or starts, named in $PCR_REGISTER_FORK_SERVER while the
    block runs; stopped after it (`preexec_fn`: run in the server's process before exec, e.g.
    embedded.die_with_parent). None (and nothing set) where it cannot run: not Linux."""
    if not (sys.platform.startswith("linux") and hasattr(os, "pidfd_open")):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="pcr-forks-"))  # private (0700): only we may ask for a register
    path = folder / "register.sock"
    log = open(folder / "server.log", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*register_cmd, "fork-server", "--socket", str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True,
                            preexec_fn=preexec_fn)
    previous = os.environ.get(ENV_VAR)
    try:
        _wait_ready(proc, folder / "server.log")
        os.environ[ENV_VAR] = str(path)
        yield str(path)
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()  # the server's signal to end; the registers it forked end with their clients
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[str], log: Path) -> None:
    """The server's first line, `pcr-register-fork: ready PATH`, within READY_DEADLINE_S (no thread: the caller
    forks afterwards)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_DEADLINE_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                break
            line = proc.stdout.readline()
            if line.startswith(f"{CONTROL}ready "):
                return
            if not line:
                break
    proc.kill()
    proc.wait(timeout=5)
    said = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:])
    raise HarnessError(f"pcr-register fork-server did not start within {READY_DEADLINE_S:g} s "
                       f"(exit {proc.returncode}): {said or 'no output'}")
