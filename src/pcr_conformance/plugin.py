"""pytest plugin of pcr-conformance (entry point `pytest11`): options, markers, fixtures, kit selection,
Allure labels and attachments, environment/categories files and summary.json.

Only tests that carry `@pytest.mark.verifies` (or live under suites/) are touched: the project's own unit
tests run through the same pytest and must not start a register or be deselected by a kit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from pcr_conformance import allure_support, summary
from pcr_conformance.calllog import CallLog
from pcr_conformance.cleanup import CLEANUP_MODES, LoanLedger, cancel_all, should_clean
from pcr_conformance.client import Clients, HttpPool
from pcr_conformance.errors import HarnessError
from pcr_conformance.kits import Kit, Req, load_kit, load_requirements
from pcr_conformance.target import Target, load_target
from pcr_conformance.testdata import TestData, load_pool, new_run_id

# ---- hypothesis / schemathesis profiles (design.md §6) --------------------------------------------------

CERTIFICATION_SEED = 20261121
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.function_scoped_fixture]
# certification: the same inputs on every run (derandomized, fixed budget, no example database).
settings.register_profile("certification", derandomize=True, max_examples=25, deadline=None, database=None,
                          suppress_health_check=_HEALTH, print_blob=False)
# regression: random and longer, for the register team; the seed is recorded so a run can be replayed.
settings.register_profile("regression", derandomize=False, max_examples=300, deadline=None, database=None,
                          suppress_health_check=_HEALTH, print_blob=True)

PROFILES = ("certification", "regression")
_STATE = pytest.StashKey["PcrState"]()
_LOG = pytest.StashKey[CallLog]()
_OUTCOME_ATTR = "pcr_outcome"
_VERIFIES_ATTR = "pcr_verifies"


@dataclasses.dataclass
class PcrState:
    """Per-session state of the plugin."""

    target_name: str
    kit_name: str
    profile: str
    mask_pii: bool
    output: Path | None
    alluredir: Path | None
    expectations_arg: str | None
    run_id: str
    seed: str
    started: float
    started_utc: str
    target: Target | None = None  # loaded (unstarted) target
    resolved: Target | None = None  # after the embedded register started
    kit: Kit | None = None
    requirements: dict[str, Req] = dataclasses.field(default_factory=dict)
    verifies: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # nodeid -> IDs (kit tests)
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)  # nodeid -> outcome
    deviations: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    unmatched_expectations: list[str] = dataclasses.field(default_factory=list)
    slots_used: set[str] = dataclasses.field(default_factory=set)
    startup_error: str = ""
    handle: Any = None  # embedded register process
    ledger: LoanLedger = dataclasses.field(default_factory=LoanLedger)  # loans to cancel at the end
    cleanup_line: str = ""


# ---- options and configuration ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("pcr-conformance")
    g.addoption("--target", default="reference", help="target name (targets/<name>.toml) or path [reference]")
    g.addoption("--kit", default="register", help="kit name (kits/<name>.toml) or path [register]")
    g.addoption("--profile", default="certification", choices=PROFILES,
                help="certification (deterministic) or regression (random, longer) [certification]")
    g.addoption("--expectations", default=None,
                help="known-deviations file [targets/<target>.expectations.toml if present]")
    g.addoption("--pcr-output", default=None,
                help="directory for summary.json, environment.properties, categories.json [the --alluredir]")
    g.addoption("--mask-pii", action="store_true", default=False,
                help="mask personal identity codes in attachments")
    g.addoption("--cleanup", default="auto", choices=CLEANUP_MODES,
                help="cancel the loans this run reported, at session end: auto (remote writable targets), "
                     "always, never [auto]")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in ("verifies(*ids): requirement IDs this test verifies",
                 "capability(name): the target capability this test needs (skipped when not claimed)",
                 "read_only_safe: the test changes nothing and may run against a read-only target"):
        config.addinivalue_line("markers", line)
    profile = config.getoption("profile")
    seed = "derandomized"
    if config.getoption("hypothesis_profile", None) is None:
        settings.load_profile(profile)
    if profile == "regression" and config.getoption("hypothesis_seed", None) is None:
        import random

        from hypothesis import core

        forced = random.SystemRandom().randrange(2**31)
        core.global_force_seed = forced
        seed = str(forced)
    elif config.getoption("hypothesis_seed", None) is not None:
        seed = str(config.getoption("hypothesis_seed"))
    alluredir = config.getoption("allure_report_dir", None)
    out = config.getoption("pcr_output") or alluredir
    now = dt.datetime.now(dt.UTC)
    config.stash[_STATE] = PcrState(
        target_name=config.getoption("target"), kit_name=config.getoption("kit"), profile=profile,
        mask_pii=config.getoption("mask_pii"), output=Path(out) if out else None,
        alluredir=Path(alluredir) if alluredir else None, expectations_arg=config.getoption("expectations"),
        run_id=new_run_id(now), seed=seed, started=time.monotonic(),
        started_utc=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    config.pluginmanager.register(_Recorder(config.stash[_STATE]), "pcr_conformance_recorder")


def _state(config: pytest.Config) -> PcrState:
    return config.stash[_STATE]


def _requirements(state: PcrState) -> dict[str, Req]:
    if not state.requirements:
        state.requirements = load_requirements()
    return state.requirements


def _ensure_target(state: PcrState) -> Target:
    """Load (not start) the target; a bad target file stops the run with exit code 2."""
    if state.target is None:
        try:
            state.target = load_target(state.target_name)
        except HarnessError as e:
            _startup_failed(state, f"target: {e}")
    assert state.target is not None
    return state.target


def _ensure_kit(state: PcrState) -> Kit:
    if state.kit is None:
        try:
            state.kit = load_kit(state.kit_name)
        except HarnessError as e:
            _startup_failed(state, f"kit: {e}")
    assert state.kit is not None
    return state.kit


def _startup_failed(state: PcrState, reason: str) -> None:
    state.startup_error = reason.splitlines()[0] if reason else "unknown error"
    pytest.exit(state.startup_error, returncode=2)


# ---- collection: verifies marker, kit selection, expectations, Allure labels ----------------------------


def _in_suites(item: pytest.Item) -> bool:
    try:
        rel = Path(item.path).resolve().relative_to(item.config.rootpath.resolve())
    except ValueError:
        return False
    return bool(rel.parts) and rel.parts[0] == "suites"


def verified_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers("verifies"):
        ids.extend(str(a) for a in mark.args)
    return list(dict.fromkeys(ids))


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Iterator[Any]:
    """A test under suites/ must verify known requirements: anything else is a collection error."""
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        ids = verified_ids(item)
        if not ids:
            if _in_suites(item):
                raise collector.CollectError(
                    f"{item.nodeid}: a test under suites/ needs @pytest.mark.verifies(\"<requirement ID>\", ...)")
            continue
        known = _requirements(_state(item.config))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise collector.CollectError(
                f"{item.nodeid}: @pytest.mark.verifies names unknown requirement ID(s) {', '.join(unknown)}; "
                f"IDs are listed in specs/requirements.yaml")
    return result


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    suite_items = [i for i in items if verified_ids(i)]
    if not suite_items:
        return
    kit = _ensure_kit(state)
    reqs = _requirements(state)
    selected = kit.selected(reqs)
    collected = {i.nodeid for i in items}
    keep, drop = [], []
    for item in items:
        ids = verified_ids(item)
        if ids and not any(i in selected for i in ids):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    target = _ensure_target(state)
    deviations = _load_expectations(state, target)
    state.unmatched_expectations = sorted(set(deviations) - collected)
    if state.unmatched_expectations and not config.getoption("keyword") and not config.getoption("markexpr"):
        # A misspelt node id would otherwise never apply; said only when no -k/-m narrowed the collection.
        warnings.warn(pytest.PytestConfigWarning(
            f"expectations name tests that were not collected: {', '.join(state.unmatched_expectations)}"),
            stacklevel=1)
    for item in items:
        ids = verified_ids(item)
        if not ids:
            continue
        state.verifies[item.nodeid] = ids
        dev = deviations.get(item.nodeid)
        if dev is not None:
            state.deviations[item.nodeid] = dev
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known deviation {dev['ticket']}: {dev['reason']}"))
        for label_type, value in allure_support.allure_labels(item, ids, reqs, kit):
            item.add_marker(pytest.mark.allure_label(value, label_type=label_type))


def _load_expectations(state: PcrState, target: Target) -> dict[str, dict[str, str]]:
    """Known deviations: {stable test id: {ticket, reason}} from the expectations file (design.md §5)."""
    path = Path(state.expectations_arg) if state.expectations_arg else target.expectations_path()
    if path is None:
        return {}
    if not path.is_file():
        _startup_failed(state, f"expectations file {path} does not exist; fix --expectations")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        _startup_failed(state, f"{path}: not valid TOML: {e}")
    out: dict[str, dict[str, str]] = {}
    for i, entry in enumerate(data.get("deviation", [])):
        test, ticket = entry.get("test"), entry.get("ticket")
        if not test or not ticket:
            _startup_failed(state, f"{path}: deviation[{i}] needs test (the node id) and ticket")
        out[str(test)] = {"ticket": str(ticket), "reason": str(entry.get("reason", ""))}
    return out


# ---- running: skips, call log, outcomes, attachments ---------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG] = CallLog()
    ids = verified_ids(item)
    if not ids:
        return
    state = _state(item.config)
    target = _ensure_target(state)
    for mark in item.iter_markers("capability"):
        for cap in mark.args:
            if not target.claims(cap):
                pytest.skip(f"not claimed: target {target.name!r} does not claim capability {cap!r}")
    if target.read_only and item.get_closest_marker("read_only_safe") is None:
        pytest.skip(f"not claimed: target {target.name!r} is read-only and this test changes data")
    allure_support.dynamic_parameters(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    log = item.stash.get(_LOG, None)
    if log is None or not log.calls:
        return
    state = _state(item.config)
    state.slots_used.update(c.slot for c in log.calls)
    allure_support.attach_calls(log, mask=state.mask_pii)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    ids = verified_ids(item)
    if ids:
        # Carried on the report (not kept here) so an xdist controller sees them too.
        setattr(report, _OUTCOME_ATTR, _classify(report, call))
        setattr(report, _VERIFIES_ATTR, ids)
    return report


class _Recorder:
    """Records one outcome per suite test from the reports (setup decides unless the call runs; a teardown
    error turns a pass broken)."""

    def __init__(self, state: PcrState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = getattr(report, _OUTCOME_ATTR, None)
        if outcome is None:
            return
        state = self.state
        state.verifies.setdefault(report.nodeid, list(getattr(report, _VERIFIES_ATTR, [])))
        previous = state.outcomes.get(report.nodeid)
        if report.when in ("setup", "call") or previous is None:
            state.outcomes[report.nodeid] = outcome
        elif report.when == "teardown" and outcome == "broken" and previous == "passed":
            state.outcomes[report.nodeid] = "broken"


def _classify(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.skipped:
        return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if report.passed:
        return "passed"
    # failed: a conformance failure only for an assertion in the test body; anything else could not run.
    if report.when != "call":
        return "broken"
    if call.excinfo is None:
        return "failed"  # strict XPASS: a known deviation that no longer happens
    return "failed" if is_failure(call.excinfo.value) else "broken"


def is_failure(exc: BaseException) -> bool:
    """AssertionError (incl. groups of them) and schemathesis check failures are failures; the rest broken."""
    if isinstance(exc, AssertionError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_failure(e) for e in exc.exceptions)
    cls = type(exc)
    return cls.__module__.startswith("schemathesis") and "Failure" in cls.__name__


# ---- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pcr_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The target of the run; an embedded register is started once per session and stopped at its end."""
    state = _state(request.config)
    target = _ensure_target(state)
    if target.embedded:
        from pcr_conformance import embedded

        try:
            handle = embedded.start(target)
        except HarnessError as e:
            _startup_failed(state, f"embedded register: {e}")
        state.handle = handle
        state.resolved = handle.target
        try:
            yield handle.target
        finally:
            handle.stop()
    else:
        from pcr_conformance import embedded

        try:
            embedded.probe(target, deadline_s=min(target.timeout_s, embedded.START_DEADLINE_S))
        except HarnessError as e:
            _startup_failed(state, f"target {target.name!r} unreachable: {e}")
        state.resolved = target
        yield target


@pytest.fixture(scope="session")
def pcr_data(pcr_target: Target, request: pytest.FixtureRequest) -> TestData:
    """Run-unique loan numbers and references, and persons from the target's pool."""
    state = _state(request.config)
    pool = None
    if pcr_target.pool:
        try:
            pool = load_pool(pcr_target.pool)
        except HarnessError as e:
            _startup_failed(state, f"pool: {e}")
    return TestData(pool, run_id=state.run_id)


@pytest.fixture(scope="session")
def pcr_http(pcr_target: Target) -> Iterator[HttpPool]:
    pool = HttpPool(pcr_target)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def pcr_cleanup(pcr_target: Target, pcr_data: TestData, pcr_http: HttpPool,
                request: pytest.FixtureRequest) -> Iterator[LoanLedger]:
    """The run's loan ledger; at session end its loans are cancelled (design.md §6) when --cleanup says so."""
    state = _state(request.config)
    yield state.ledger
    mode = request.config.getoption("cleanup")
    if not len(state.ledger) or not should_clean(mode, embedded=pcr_target.embedded, read_only=pcr_target.read_only):
        return
    clients = Clients(pcr_target, pcr_http, CallLog(), pcr_data.batch_reference)
    state.cleanup_line = cancel_all(state.ledger, clients.get, pcr_data.report_reference).line()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The cleanup outcome, after the tests (output written during fixture teardown would be captured)."""
    state = terminalreporter.config.stash.get(_STATE, None)
    if state is not None and state.cleanup_line:
        terminalreporter.write_line(state.cleanup_line)


@pytest.fixture
def pcr_clients(pcr_target: Target, pcr_data: TestData, pcr_http: HttpPool, pcr_cleanup: LoanLedger,
                request: pytest.FixtureRequest) -> Clients:
    """ApiClients by identity slot; their calls become this test's attachments."""
    log = request.node.stash.get(_LOG, None)
    if log is None:
        log = request.node.stash[_LOG] = CallLog()
    return Clients(pcr_target, pcr_http, log, pcr_data.batch_reference, ledger=pcr_cleanup)


# ---- session end: environment.properties, categories.json, summary.json -------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state.output is None or session.config.getoption("collectonly"):
        return
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller writes the reports from the workers' test reports
    if not state.verifies and not state.startup_error:
        return  # a unit-test run (no suite tests): nothing to report
    write_reports(state)


def write_reports(state: PcrState) -> None:
    target = state.resolved or state.target
    # The target's own name, not the path it was given by (a target file outside targets/ is named by path).
    target_name = target.name if target is not None else state.target_name
    kit_name = state.kit.name if state.kit is not None else state.kit_name
    specs = allure_support.spec_files()
    env = allure_support.environment_properties(allure_support.environment_values(
        target=target, target_name=target_name, kit=kit_name, profile=state.profile, seed=state.seed,
        run_id=state.run_id, specs=specs))
    dirs = {state.output}
    if state.alluredir:
        dirs.add(state.alluredir)  # Allure reads environment.properties and categories.json from its results dir
    for d in dirs:
        assert d is not None
        d.mkdir(parents=True, exist_ok=True)
        (d / "environment.properties").write_text(env, encoding="utf-8")
        (d / "categories.json").write_text(json.dumps(allure_support.CATEGORIES, indent=2), encoding="utf-8")
    kit = state.kit
    if kit is None:
        try:
            kit = load_kit(state.kit_name)
        except HarnessError:
            kit = None
    try:
        reqs = _requirements(state)
    except HarnessError:
        reqs = {}
    doc = summary.build(
        kit=kit, kit_name=kit_name, target_name=target_name, requirements=reqs,
        verifies=state.verifies, outcomes=state.outcomes, startup_error=state.startup_error,
        stakeholder=_stakeholder(state, target), spec_hashes={k: v["sha256"] for k, v in specs.items()},
        suite_version=allure_support.suite_version(), profile=state.profile, seed=state.seed, run_id=state.run_id,
        duration_s=time.monotonic() - state.started, known_deviations=state.deviations)
    doc["unmatched_expectations"] = state.unmatched_expectations
    assert state.output is not None
    (state.output / "summary.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def _stakeholder(state: PcrState, target: Target | None) -> list[dict[str, str]]:
    """Organisations behind the identities the run used (all configured ones when none was used yet)."""
    if target is None:
        return []
    slots = [s for s in target.identities if s in state.slots_used] or list(target.identities)
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for slot in slots:
        ident = target.identities[slot]
        key = (ident.owner.get("idCodeType", ""), ident.owner.get("idCode", ""))
        entry = seen.setdefault(key, {"name": ident.name, "idCodeType": key[0], "idCode": key[1], "slots": ""})
        entry["slots"] = ",".join(filter(None, [entry["slots"], slot]))
    return list(seen.values())
