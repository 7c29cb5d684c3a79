"""pytest-xdist support of the plugin (`run --workers N`, issue 12): what a controller learns from its workers.

An xdist controller runs no test and starts no register: the workers do. It learns from their test reports
what a single process knows itself (identity problems, the slots a test used, the certificates, the embedded
register's URL) and, at each worker's end, the worker's whole collection (`workeroutput`). Before the workers
start it makes the embedded register's data dir once, so every worker's register has the same certificates.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pcr_conformance.errors import HarnessError
from pcr_conformance.plugin_state import PcrState, ensure_target, startup_failed, state_of

# What an xdist worker hands its controller at its end (config.workeroutput): its collection's requirement IDs,
# known deviations and unmatched expectations (WorkerReports.pytest_testnodedown).
WORKER_VERIFIES, WORKER_DEVIATIONS, WORKER_UNMATCHED = "pcr_verifies", "pcr_deviations", "pcr_unmatched"
EMBEDDED_BASE_ATTR = "pcr_embedded_base"  # on one report per xdist worker: its embedded register's URL
IDENTITY_ATTR = "pcr_identity_slot"  # on a report: the slot whose refused certificate broke the test
IDENTITY_LINE_ATTR = "pcr_identity_problem"  # ... and the one line naming it


def prepare_controller(session: pytest.Session) -> None:
    """An xdist controller of a kit run against the embedded register, before its workers start: one data dir
    (CA, certificates, population) for every worker's register, and one trial start of the register, so that a
    register that cannot start is one line (exit 2), as in one process, instead of an error in every worker.
    The trial runs while the workers start and collect (it took 0.5 s before them); check_trial_start, when
    the first worker has collected, waits for it before a test is handed out."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None) \
            or config.getoption("collectonly") or not config.getoption("pcr_output"):
        return  # not a kit run (--pcr-output names its reports): e.g. a project's own tests under xdist
    from pcr_conformance import embedded

    target = ensure_target(state_of(config))
    if not target.embedded:
        return
    try:
        embedded.share_prepared()
        embedded.prepare()  # the stop-at-exit from the main thread, before the trial's thread starts a register
    except HarnessError as e:
        startup_failed(state_of(config), f"embedded register: {e}")
    config.stash[_TRIAL] = TrialStart(target)


class TrialStart:
    """One start and stop of the embedded register on a thread of its own, begun when made; `error` is why it
    could not start."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="pcr-trial-register", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from pcr_conformance import embedded

        try:
            embedded.start(self.target).stop()
        except HarnessError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - said as the reason the run could not start
            self.error = f"{type(e).__name__}: {e}"

    def wait(self) -> str:
        """The error ("" when the register started); the start has its own deadline (embedded.START_DEADLINE_S)."""
        self._thread.join()
        return self.error


_TRIAL = pytest.StashKey[TrialStart]()


def check_trial_start(config: pytest.Config) -> None:
    """Before the first test is handed out: the trial start's outcome; exit 2 naming it when it failed."""
    trial = config.stash.get(_TRIAL, None)
    if trial is None:
        return
    del config.stash[_TRIAL]
    error = trial.wait()
    if error:
        startup_failed(state_of(config), f"embedded register: {error}")


def order_longest_first(items: list[pytest.Item]) -> None:
    """A worker's collection, module by module, the longest first: a run hands its modules out in this order
    (`--dist loadfile --no-loadscope-reorder`), each whole to the next free worker, so that no long module starts
    last and runs alone. A module is as long as its tests, each counted 1 or as its `cost(n)` mark says (the
    fuzz tests, which draw their cases on a first run). Every worker collects the same items and sorts them the
    same way; within a module the order stays as collected (the robustness matrix's read-deadline cases last)."""
    cost: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        module = item.nodeid.split("::", 1)[0]
        mark = item.get_closest_marker("cost")
        cost[module] = cost.get(module, 0) + (int(mark.args[0]) if mark and mark.args else 1)
        first.setdefault(module, index)

    def key(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::", 1)[0]
        return -cost[module], first[module]

    items.sort(key=key)


def unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        from pcr_conformance import embedded

        embedded.unshare_prepared()  # an in-process session (pytester) must not hand its data dir to the next


def hand_over(config: pytest.Config, state: PcrState) -> None:
    """At a worker's end: what its controller needs beyond the test reports."""
    out = config.workeroutput  # type: ignore[attr-defined]
    out[WORKER_VERIFIES], out[WORKER_DEVIATIONS] = state.verifies, state.deviations
    out[WORKER_UNMATCHED] = state.unmatched_expectations


class WorkerReports:
    """An xdist controller learns the identity problems from the workers' reports (for the summary line and
    summary.json, which read `identity_problems`), and the embedded register's resolved target (base URLs,
    identities); in a single process they are known already."""

    def __init__(self, state: PcrState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        slot, line = getattr(report, IDENTITY_ATTR, None), getattr(report, IDENTITY_LINE_ATTR, None)
        if slot and line:
            self.state.identity_problems.setdefault(slot, line)
        base = getattr(report, EMBEDDED_BASE_ATTR, None)
        if base and self.state.resolved is None:  # a worker's embedded register: the summary's base URLs, slots
            from pcr_conformance import embedded

            self.state.resolved = embedded.resolve_started(ensure_target(self.state), base)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        check_trial_start(node.config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker's whole collection (a test that never ran, e.g. after a dead target stopped the kit, is
        still the kit's and shows as not run), its known deviations and unmatched expectations."""
        out = getattr(node, "workeroutput", None) or {}
        for nodeid, ids in out.get(WORKER_VERIFIES, {}).items():
            self.state.verifies.setdefault(nodeid, list(ids))
        self.state.deviations.update(out.get(WORKER_DEVIATIONS, {}))
        self.state.unmatched_expectations = sorted(set(out.get(WORKER_UNMATCHED, [])))
