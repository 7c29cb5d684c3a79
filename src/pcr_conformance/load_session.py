"""The session's load run made in the background (issue 12: no idle waiting).

Against the embedded register the service-level tests (suites/load/, PRF-...) judge one short load run on
Locust. Made when the first of them needs it, it held its worker idle for the whole run time (~10 s of a
~30 s session). Instead it starts when the session's collection is known, on a register of its own (started
from the same data dir, so the same CA, certificates and population; its own database, so the load neither
sees nor disturbs the other tests' loans, rate limits and batch queues), while the other tests run.

Under pytest-xdist one process makes it: worker gw0. Every worker collects the same tests, so each knows
whether the session makes one; a worker that runs suites/load/ without being gw0 waits for HANDOFF, which
gw0 writes into the results' folder when the run is over (or could not be made), naming the xdist test run,
so that a file of an earlier session in the same folder is never taken for this one's.

Only a headless run of a fixed run time without a Locust master runs in the background; a web UI run (until
stopped), a distributed one, a run against a remote target (whose rate limit and data the tests share) and
--pcr-load-results stay where they were: in the `pcr_load` fixture, when the first test needs them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pcr_conformance import embedded, load, load_results
from pcr_conformance.errors import HarnessError
from pcr_conformance.load import LoadOptions
from pcr_conformance.load_results import LoadRun
from pcr_conformance.target import Target

HANDOFF = ".load-run-done.json"  # hidden: a harness file among the Locust reports of the kit folder
REGISTER_START_S = 60.0  # a register of its own (embedded.START_DEADLINE_S) and its stop, beyond the run's deadline
POLL_FIRST_S, POLL_MAX_S = 0.05, 0.5  # a waiting worker looks for HANDOFF: soon, then less often


@dataclasses.dataclass
class BackgroundLoad:
    """The session's load run, made by this process (`maker`) or by worker gw0 of the same xdist run."""

    folders: list[Path]  # each selecting kit's locust/ folder; the run writes the first, the maker copies it
    run_uid: str  # the xdist test run's uid (the same in every worker), else this session's run ID
    deadline_s: float  # how long the run may take from its start, register included
    maker: bool
    thread: threading.Thread | None = None
    run: LoadRun | None = None
    error: str = ""

    def result(self) -> LoadRun:
        """The run's results; a HarnessError (the service-level tests are broken) when it could not be made."""
        if self.maker:
            assert self.thread is not None
            self.thread.join(self.deadline_s)
            if self.thread.is_alive():
                raise HarnessError(f"the session's load run did not end within {self.deadline_s:g} s")
            if self.error or self.run is None:
                raise HarnessError(self.error or "the session's load run left no results")
            return self.run
        return self._wait_for_maker()

    def _wait_for_maker(self) -> LoadRun:
        handoff = self.folders[0] / HANDOFF
        end = time.monotonic() + self.deadline_s
        pause = POLL_FIRST_S
        while True:
            done = _read_handoff(handoff, self.run_uid)
            if done is not None:
                if done.get("error"):
                    raise HarnessError(str(done["error"]))
                return load_results.read(self.folders[0] / load.RESULTS_FILE)
            if time.monotonic() >= end:
                raise HarnessError(f"the session's load run, made by worker gw0, did not end within "
                                   f"{self.deadline_s:g} s ({handoff} not written)")
            time.sleep(pause)
            pause = min(POLL_MAX_S, pause * 2)

    def join(self) -> None:
        """At the end of the maker's session: the run finishes before its register and folders go."""
        if self.thread is not None:
            self.thread.join(self.deadline_s)


def session_uid(config: pytest.Config, run_id: str) -> str:
    """The same in every worker of one xdist run (its testrunuid), else this session's run ID."""
    info = getattr(config, "workerinput", None)
    return str(info["testrunuid"]) if info else run_id


def in_background(options: LoadOptions, target: Target) -> bool:
    """Whether this session's load run can be made in the background (the module docstring says when)."""
    return target.embedded and bool(options.run_time_s) and not options.master and not options.web_ui


def start(config: pytest.Config, *, options: LoadOptions, target: Target, folders: list[Path],
          run_id: str) -> BackgroundLoad | None:
    """At the end of collection of a session with service-level tests (in a worker, or without xdist), from
    the main thread: the background run when it can be made so; None otherwise (pcr_load makes it inline)."""
    if not in_background(options, target):
        return None
    info = getattr(config, "workerinput", None)
    deadline = options.run_time_s + load.stop_timeout_s(target) + load.START_S + REGISTER_START_S
    background = BackgroundLoad(folders=folders, run_uid=session_uid(config, run_id), deadline_s=deadline,
                                maker=not info or info.get("workerid") == "gw0")
    if background.maker:
        (folders[0] / HANDOFF).unlink(missing_ok=True)
        # The data dir and the registers' stop at exit are made here, in the main thread (signal handlers can
        # only be installed there), before the thread starts a register from them.
        embedded.prepare()
        background.thread = threading.Thread(target=_make, args=(background, options, target, run_id),
                                             name="pcr-load-run", daemon=True)
        background.thread.start()
    return background


def _make(background: BackgroundLoad, options: LoadOptions, target: Target, run_id: str) -> None:
    register = None
    try:
        register = embedded.start(target)
        background.run = load.run(options, register.target, background.folders[0], run_id=run_id)
        for other in background.folders[1:]:
            shutil.copytree(background.folders[0], other, dirs_exist_ok=True)
    except Exception as e:  # noqa: BLE001 - handed to the service-level tests, which are then broken
        background.error = f"the session's load run could not be made: {e}"
    finally:
        if register is not None:
            register.stop()
        _write_handoff(background.folders[0], background.run_uid, background.error)


def _write_handoff(folder: Path, run_uid: str, error: str) -> None:
    """Whole or not at all: a waiting worker never reads half of it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{HANDOFF}.{os.getpid()}"
    tmp.write_text(json.dumps({"run": run_uid, "error": error}), encoding="utf-8")
    tmp.replace(folder / HANDOFF)


def _read_handoff(path: Path, run_uid: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("run") == run_uid else None
