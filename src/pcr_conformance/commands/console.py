"""The console side of a kit's pytest process: stream its output through a filter, stop it on timeout.

`stream_process` runs pytest in its own process group and copies its output to the console through
`ConsoleFilter` (progress and the short summary, not the tracebacks); `kill_group` stops it (SIGINT first, so
the plugin stops the embedded register, then SIGKILL).
"""

from __future__ import annotations

import codecs
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

_SECTION_RE = re.compile(r"^=+ (.+?) =+$")
_PROGRESS_CHARS = set(".sFExX ")


class ConsoleFilter:
    """Pytest's output for the console: progress and the short summary, not the tracebacks.

    The whole output goes to pytest.log; on the console the FAILURES / ERRORS sections (tracebacks) are
    replaced by one hint line, because each failure is listed again in the short test summary. Progress dots
    are shown as they come, before their line is complete.
    """

    def __init__(self, prefix: str, log_name: str = "pytest.log") -> None:
        self.prefix = prefix
        self.log_name = log_name
        self.pending = ""  # the incomplete last line
        self.shown = 0  # how much of `pending` is already on the console
        self.hidden = False

    def feed(self, text: str) -> str:
        out: list[str] = []
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            shown, self.shown = self.shown, 0
            if shown:  # the line's start is already on the console: finish it
                out.append(line[shown:] + "\n")
                continue
            out.append(self._line(line))
        if self.pending and not self.hidden and set(self.pending) <= _PROGRESS_CHARS:
            if not self.shown:
                out.append(self.prefix)
            out.append(self.pending[self.shown:])
            self.shown = len(self.pending)
        return "".join(out)

    def _line(self, line: str) -> str:
        m = _SECTION_RE.match(line.strip())
        if m:
            title = m.group(1)
            if title in ("FAILURES", "ERRORS") or title.startswith("warnings summary"):
                if not self.hidden:
                    self.hidden = True
                    return f"{self.prefix}({title.lower()}: details in {self.log_name}, junit.xml and the report)\n"
                return ""
            self.hidden = False
        if self.hidden:
            return ""
        return f"{self.prefix}{line}\n"

    def flush(self) -> str:
        rest = self.feed("\n") if self.pending else ""
        return rest


class ProcessStopped(Exception):
    """stream_process was interrupted (Ctrl-C, SIGTERM): the process group was stopped; `cause` is what
    interrupted it, `output` what the process had written until then."""

    def __init__(self, cause: BaseException, output: str) -> None:
        super().__init__(f"stopped by {type(cause).__name__}")
        self.cause = cause
        self.output = output


def stream_process(cmd: Sequence[str], *, cwd: Path, prefix: str, timeout_s: float,
                   out: IO[str] | None = None, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run cmd, showing its output through ConsoleFilter on `out`; kill its process group after timeout_s.

    Returns (exit code or None on timeout, the whole output). Interrupted itself (KeyboardInterrupt, or any
    BaseException a signal handler raises), it stops the process group first and raises ProcessStopped with
    the output so far.
    """
    out = out or sys.stdout
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    chunks: list[str] = []
    console = ConsoleFilter(prefix)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def copy() -> None:
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            text = decoder.decode(data)
            chunks.append(text)
            out.write(console.feed(text))
            out.flush()

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        code = None
    except BaseException as e:  # Ctrl-C or SIGTERM: never leave pytest or the register behind
        kill_group(proc)
        reader.join(timeout=10)
        out.write(console.flush())
        out.flush()
        raise ProcessStopped(e, "".join(chunks)) from e
    reader.join(timeout=10)
    out.write(console.flush())
    out.flush()
    return code, "".join(chunks)


STOP_GRACE_S = 10.0


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop pytest's process group: SIGINT first (pytest ends the session as on Ctrl-C, so the plugin stops the
    embedded register, which runs in its own session), then SIGKILL whatever is left after STOP_GRACE_S."""
    for sig, wait_s in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            if sig == signal.SIGKILL:
                proc.kill()
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
