"""The fixtures the suites use (docs/interfaces.md §10): pcr_target, pcr_data, pcr_http, pcr_cleanup,
pcr_clients, pcr_load. Offered through the plugin module (pcr_conformance.plugin imports them)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pcr_conformance import load_session
from pcr_conformance.calllog import CallLog
from pcr_conformance.cleanup import LoanLedger, cancel_all, should_clean
from pcr_conformance.client import Clients, HttpPool
from pcr_conformance.errors import HarnessError
from pcr_conformance.load import LoadOptions
from pcr_conformance.load_results import LoadRun
from pcr_conformance.plugin_state import (
    LOG,
    PcrState,
    ensure_kits,
    ensure_target,
    requirements,
    startup_failed,
    state_of,
)
from pcr_conformance.target import Target
from pcr_conformance.testdata import TestData, load_pool

# The session's HttpPool, so the plugin's hooks can read its circuit breaker after each test.
HTTP_POOL = pytest.StashKey[HttpPool]()


@pytest.fixture(scope="session")
def pcr_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The target of the run; an embedded register is started once per session and stopped at its end."""
    from pcr_conformance import embedded

    state = state_of(request.config)
    target = ensure_target(state)
    if target.embedded:
        try:
            handle = embedded.start(target)
        except HarnessError as e:
            startup_failed(state, f"embedded register: {e}")
        state.handle = handle
        state.resolved = handle.target
        try:
            state.identity_problems = _identity_problems(handle.target)
            _keep_certificates(state, handle.target)
            yield handle.target
        finally:
            handle.stop()
    else:
        try:
            embedded.probe(target, deadline_s=min(target.timeout_s, embedded.START_DEADLINE_S))
        except HarnessError as e:
            startup_failed(state, f"target {target.name!r} unreachable: {e}")
        state.resolved = target
        state.identity_problems = _identity_problems(target)
        _keep_certificates(state, target)
        yield target


def _keep_certificates(state: PcrState, target: Target) -> None:
    """The certificates' details for summary.json and their public parts in the report's certs/ (the curl
    commands of the attachments name them), read now: an embedded register deletes them when it stops."""
    from pcr_conformance import evidence

    state.certificates = evidence.describe_certificates(target)
    if state.output is not None:
        evidence.write_public_certificates(target, state.output / "certs")


def _identity_problems(target: Target) -> dict[str, str]:
    """Each configured slot's certificate checked once (tlsprobe): {slot: one line} for those that cannot connect."""
    from pcr_conformance import tlsprobe

    return tlsprobe.probe_identities(target, timeout_s=target.timeout_s)


@pytest.fixture(scope="session")
def pcr_data(pcr_target: Target, request: pytest.FixtureRequest) -> TestData:
    """Run-unique loan numbers and references, and persons from the target's pool."""
    state = state_of(request.config)
    pool = None
    if pcr_target.pool:
        try:
            pool = load_pool(pcr_target.pool)
        except HarnessError as e:
            startup_failed(state, f"pool: {e}")
    # Workers of one session against a shared register draw disjoint persons (each worker's own register,
    # the embedded one, holds only its own worker's loans).
    share = (0, 1) if pcr_target.embedded else worker_share(request.config)
    return TestData(pool, run_id=state.run_id, share=share)


def worker_share(config: pytest.Config) -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker among the session's workers; (0, 1) without xdist."""
    info = getattr(config, "workerinput", None)
    if not info:
        return 0, 1
    return int(str(info["workerid"]).lstrip("gw") or 0), int(info["workercount"])


@pytest.fixture(scope="session")
def pcr_http(pcr_target: Target, request: pytest.FixtureRequest) -> Iterator[HttpPool]:
    # The target's rate limit holds for all workers of the session together: each takes its share.
    _, workers = worker_share(request.config)
    shared = replace(pcr_target, rate_limit_per_s=pcr_target.rate_limit_per_s / workers)
    pool = HttpPool(shared)
    request.config.stash[HTTP_POOL] = pool
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def pcr_cleanup(pcr_target: Target, pcr_data: TestData, pcr_http: HttpPool,
                request: pytest.FixtureRequest) -> Iterator[LoanLedger]:
    """The run's loan ledger; at session end its loans are cancelled (docs/concepts.md#shared-environment) when --pcr-cleanup says so."""
    state = state_of(request.config)
    yield state.ledger
    mode = request.config.getoption("pcr_cleanup")
    if not len(state.ledger) or not should_clean(mode, embedded=pcr_target.embedded, read_only=pcr_target.read_only):
        return
    clients = Clients(pcr_target, pcr_http, CallLog(), pcr_data.batch_reference, problems=state.identity_problems)
    state.cleanup_line = cancel_all(state.ledger, clients.get, pcr_data.report_reference).line()


@pytest.fixture
def pcr_clients(pcr_target: Target, pcr_data: TestData, pcr_http: HttpPool, pcr_cleanup: LoanLedger,
                request: pytest.FixtureRequest) -> Clients:
    """ApiClients by identity slot; their calls become this test's attachments."""
    log = request.node.stash.get(LOG, None)
    if log is None:
        log = request.node.stash[LOG] = CallLog()
    problems = state_of(request.config).identity_problems
    return Clients(pcr_target, pcr_http, log, pcr_data.batch_reference, ledger=pcr_cleanup, problems=problems)


@pytest.fixture(scope="session")
def pcr_load(pcr_target: Target, request: pytest.FixtureRequest) -> LoadRun:
    """One load run on Locust for the service-level tests (suites/load/, docs/load.md): the results of
    --pcr-load-results when given (a run made elsewhere), else a run with --pcr-load's options (default: the
    short load.SMOKE), its Locust HTML, CSV and log in each kit folder's locust/. A run that cannot be made is
    a HarnessError: the tests are broken, never failed."""
    from pcr_conformance import load, load_results

    config = request.config
    given = config.getoption("pcr_load_results")
    if given:
        return load_results.read(given)
    state = state_of(config)
    if state.load_run is not None:  # made in the background since the collection (load_session.py)
        return state.load_run.result()
    folders = load_folders(state, config)
    run = load.run(load_options(config, pcr_target), pcr_target, folders[0], run_id=state.run_id)
    for other in folders[1:]:
        shutil.copytree(folders[0], other, dirs_exist_ok=True)
    return run


def load_options(config: pytest.Config, target: Target) -> LoadOptions:
    """The session's load: --pcr-load over load.SMOKE, cleaning up as --pcr-cleanup says for this target."""
    from pcr_conformance import load

    options = load.options_from_text(config.getoption("pcr_load") or "")
    return dataclasses.replace(options, cleanup=should_clean(config.getoption("pcr_cleanup"),
                                                             embedded=target.embedded, read_only=target.read_only))


def load_folders(state: PcrState, config: pytest.Config) -> list[Path]:
    """locust/ in the report folder of each of the session's kits that selects a service level (PRF-...);
    without a report folder one in the temp dir, named so that every xdist worker of the session finds it."""
    if state.output is None:
        uid = load_session.session_uid(config, state.run_id)
        return [Path(tempfile.gettempdir()) / f"pcr-load-{uid}" / "locust"]
    if not state.kit_folders:
        return [state.output / "locust"]
    reqs = [r for r in requirements(state).values() if r.id.startswith("PRF-")]
    kits = [k for k in ensure_kits(state) if any(k.selects(r) for r in reqs)]
    return [state.output / k.name / "locust" for k in kits] or [state.output / "locust"]
