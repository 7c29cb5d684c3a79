"""pytest plugin of pcr-conformance (entry point `pytest11`): the hooks, kept thin.

What the hooks do is in one module per concern:
- options (below) and the per-session state: `plugin_state` (target, kit, requirements, startup errors);
- known deviations: `expectations`;
- Hypothesis profiles, applied around suite tests only: `profiles`;
- outcome classification and recording: `outcomes`;
- fixtures: `fixtures` (imported here, so pytest offers them from this plugin);
- Allure labels and attachments: `allure_support`; reports at session end: `session_report` + `summary`.

Only tests that carry `@pytest.mark.verifies` (or live in the suites folder) are touched: the project's own
unit tests, and any other test of a pytest run where the package is installed, must not start a register,
be deselected by a kit or get the kit's Hypothesis settings.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pcr_conformance import allure_support, junit_support, profiles, versions, workers
from pcr_conformance.calllog import CallLog
from pcr_conformance.cleanup import CLEANUP_MODES
from pcr_conformance.client import IdentityRefused
from pcr_conformance.expectations import ExpectationsError, load_expectations
from pcr_conformance.fixtures import (
    HTTP_POOL,
    load_folders,
    load_options,
    pcr_cleanup,
    pcr_clients,
    pcr_data,
    pcr_http,
    pcr_load,
    pcr_target,
)
from pcr_conformance.outcomes import CERTIFICATES_ATTR, SLOTS_ATTR, Recorder, junit_properties, mark_report
from pcr_conformance.plugin_state import (
    LOG,
    STATE,
    PcrState,
    ensure_kits,
    ensure_target,
    in_suites,
    path_in_suites,
    requirements,
    startup_failed,
    state_of,
    verified_ids,
)
from pcr_conformance.session_report import write_reports
from pcr_conformance.target import contract_version_of
from pcr_conformance.testdata import new_run_id
from pcr_conformance.workers import EMBEDDED_BASE_ATTR, IDENTITY_ATTR, IDENTITY_LINE_ATTR

REQUIREMENT_PROPERTY = junit_support.REQUIREMENT_PROPERTY
RESULT_NAMES = pytest.StashKey["allure_support.ResultNames | None"]()

__all__ = ["pcr_cleanup", "pcr_clients", "pcr_data", "pcr_http", "pcr_load", "pcr_target", "verified_ids"]

MARKERS = (
    "verifies(*ids): requirement IDs this test verifies",
    "capability(name): the target capability this test needs (skipped when not claimed)",
    "read_only_safe: the test changes nothing and may run against a read-only target",
    "cost(n): the test takes about as long as n plain tests (a run's workers start the longest modules first)",
)


# ---- options and configuration ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("pcr-conformance")
    g.addoption("--pcr-target", default="reference",
                help="target name (targets/<name>.toml) or path [reference]")
    g.addoption("--pcr-kit", action="append", default=None,
                help="kit name (kits/<name>.toml) or path; repeat for several kits in one session, each test run "
                     "once and each kit's report in <pcr-output>/<kit>/ [register]")
    g.addoption("--pcr-kit-folders", action="store_true", default=False,
                help="write each kit's report into <pcr-output>/<kit>/ also with one kit")
    g.addoption("--pcr-profile", default="certification", choices=profiles.PROFILES,
                help="certification (deterministic) or regression (random, longer) [certification]")
    g.addoption("--pcr-contract", default=None, choices=("public", "reference"),
                help="contract reading that judges: public (what public material shows decides) or reference "
                     "(also our model) [the target's contract]")
    g.addoption("--pcr-contract-version", default=None, metavar="VERSION",
                help="contract version the target serves (specs/versions/<name>/, `pcr-conformance diff`) "
                     "[the target's contract_version, else the current version]")
    g.addoption("--pcr-implementation-profile", default=None,
                help="implementation profile (profiles/<name>.toml or path; '' = none) [the target's]")
    g.addoption("--pcr-expectations", default=None,
                help="known-deviations file [targets/<target>.expectations.toml if present]")
    g.addoption("--pcr-output", default=None,
                help="directory for summary.json, environment.properties, categories.json [the --alluredir]")
    g.addoption("--pcr-mask-pii", action="store_true", default=False,
                help="mask personal identity codes in attachments")
    g.addoption("--pcr-cleanup", default="auto", choices=CLEANUP_MODES,
                help="cancel the loans this run reported, at session end: auto (remote writable targets), "
                     "always, never [auto]")
    g.addoption("--pcr-recording", default=None,
                help="a HAR file of a stakeholder system's traffic, judged by the client kits (suites/client/; "
                     "pcr-conformance proxy records one)")
    g.addoption("--pcr-load", default=None, metavar="KEY=VALUE,...",
                help="the load run of the service-level tests (suites/load/): load.LoadOptions fields, e.g. "
                     "users=50,run_time_s=60,master=true,expect_workers=2 [a short load of 6 users for 8 s]")
    g.addoption("--pcr-load-results", default=None, metavar="FILE",
                help="judge the service levels over this load run's results instead of running one")
    parser.addini("pcr_suites", type="paths", default=[],
                  help="folders whose tests must verify requirements, besides the kit's own suites")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    _select_contract_version(config)
    profile = config.getoption("pcr_profile")
    seed, forced = profiles.choose_seed(config, profile)
    alluredir = config.getoption("allure_report_dir", None)
    out = config.getoption("pcr_output") or alluredir
    now = dt.datetime.now(dt.UTC)
    kit_names = tuple(dict.fromkeys(config.getoption("pcr_kit") or ["register"]))
    state = config.stash[STATE] = PcrState(
        target_name=config.getoption("pcr_target"), kit_name=kit_names[0], profile=profile,
        mask_pii=config.getoption("pcr_mask_pii"), output=Path(out) if out else None,
        alluredir=Path(alluredir) if alluredir else None, expectations_arg=config.getoption("pcr_expectations"),
        run_id=new_run_id(now), seed=seed, started=time.monotonic(),
        started_utc=now.strftime("%Y-%m-%dT%H:%M:%SZ"), forced_seed=forced, kit_names=kit_names,
        kit_folders=len(kit_names) > 1 or bool(config.getoption("pcr_kit_folders")),
        contract_arg=config.getoption("pcr_contract"), impl_profile_arg=config.getoption("pcr_implementation_profile"),
    )
    config.pluginmanager.register(Recorder(state), "pcr_conformance_recorder")
    config.stash[RESULT_NAMES] = allure_support.install_result_names(config)
    config.pluginmanager.register(workers.WorkerReports(state), "pcr_conformance_worker_reports")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    workers.prepare_controller(session)
    state = state_of(session.config)
    if state.kit_folders and state.alluredir is not None:
        allure_support.write_only_telling_containers(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    workers.unconfigure(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The service levels' load run starts now, in the background, when it can (load_session.py, issue 12)."""
    state = state_of(session.config)
    if session.config.getoption("collectonly") or session.config.getoption("pcr_load_results") or not session.items:
        return
    if state.startup_error or not any("pcr_load" in getattr(i, "fixturenames", ()) for i in session.items):
        return
    from pcr_conformance import load_session

    target = ensure_target(state)
    state.load_run = load_session.start(session.config, options=load_options(session.config, target), target=target,
                                        folders=load_folders(state, session.config), run_id=state.run_id)


# On a test whose requirement IDs belong to another contract version only: those IDs.
OTHER_VERSION = pytest.StashKey[list[str]]()


def _select_contract_version(config: pytest.Config) -> None:
    """Before anything reads the contract: the version given, else the target file's, becomes the folder every
    reader uses (PCR_SPECS_DIR, also for the embedded register this session starts). Unset: the current one."""
    name = config.getoption("pcr_contract_version") or contract_version_of(config.getoption("pcr_target"))
    if not name:
        return
    try:
        versions.select(name)
    except versions.VersionError as e:
        raise pytest.UsageError(f"--pcr-contract-version: {e}") from None


# ---- collection: verifies marker, kit selection, expectations, Allure labels ----------------------------


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    """A suite module is imported under the kit's Hypothesis profile, so settings bound at decoration time
    (`@given`, `@settings(...)` without a parent) get it, as they would have with a session-wide profile."""
    if not isinstance(collector, pytest.Module) or not path_in_suites(collector.config, collector.path):
        return (yield)
    state = state_of(collector.config)
    with profiles.applied(profiles.profile_for(collector.config, state.profile), None):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Iterator[Any]:
    """A test in the suites must verify known requirements: anything else is a collection error."""
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        ids = verified_ids(item)
        if not ids:
            if in_suites(item):
                raise collector.CollectError(
                    f"{item.nodeid}: a test under suites/ needs @pytest.mark.verifies(\"<requirement ID>\", ...)")
            continue
        known = requirements(state_of(item.config))
        unknown = [i for i in ids if i not in known]
        if unknown and all(i in versions.requirement_ids() for i in unknown):
            # A requirement of another contract version (e.g. of an operation a later version adds): the test
            # is left out of this session (pytest_collection_modifyitems), not an error.
            item.stash[OTHER_VERSION] = unknown
        elif unknown:
            raise collector.CollectError(
                f"{item.nodeid}: @pytest.mark.verifies names unknown requirement ID(s) {', '.join(unknown)}; "
                f"IDs are listed in specs/requirements.yaml")
    return result


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = state_of(config)
    if not any(verified_ids(i) for i in items):
        return
    kits = ensure_kits(state)
    kit = kits[0]  # the Allure parentSuite of the session's results (kit_reports gives each kit its own title)
    reqs = requirements(state)
    by_kit = [(k, k.selected(reqs)) for k in kits]
    selected = {rid: r for _, sel in by_kit for rid, r in sel.items()}
    collected = {i.nodeid for i in items}
    keep = [i for i in items if not verified_ids(i) or (any(r in selected for r in verified_ids(i))
                                                        and OTHER_VERSION not in i.stash)]
    if len(keep) < len(items):
        kept = set(map(id, keep))
        config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
        items[:] = keep
    target = ensure_target(state)
    path = Path(state.expectations_arg) if state.expectations_arg else target.expectations_path()
    try:
        deviations = load_expectations(path)
    except ExpectationsError as e:
        startup_failed(state, str(e))
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
        first = next((k for k, sel in by_kit if any(r in sel for r in ids)), kit)
        for label_type, value in allure_support.allure_labels(item, ids, reqs, first):
            item.add_marker(pytest.mark.allure_label(value, label_type=label_type))
        names = config.stash.get(RESULT_NAMES, None)
        if names is not None:
            names.remember(item)
    if hasattr(config, "workerinput"):
        workers.order_longest_first(items)


# ---- running: skips, profile, call log, outcomes, attachments ------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[LOG] = CallLog()
    ids = verified_ids(item)
    if not ids:
        return
    # junit.xml: <property name="requirement" value="RPT-004"/> per verified ID (skipped tests too).
    item.user_properties.extend((REQUIREMENT_PROPERTY, rid) for rid in ids
                                if (REQUIREMENT_PROPERTY, rid) not in item.user_properties)
    state = state_of(item.config)
    target = ensure_target(state)
    for mark in item.iter_markers("capability"):
        for cap in mark.args:
            if not target.claims(cap):
                pytest.skip(f"not claimed: target {target.name!r} does not claim capability {cap!r}")
    if target.read_only and item.get_closest_marker("read_only_safe") is None:
        pytest.skip(f"not claimed: target {target.name!r} is read-only and this test changes data")
    allure_support.dynamic_parameters(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A suite test runs under the kit's Hypothesis profile (and regression seed); other tests do not.

    Settings read at call time (`hypothesis.settings.default`, as suites/fuzz does) see the profile; a test
    module of the suites was also imported under it (pytest_make_collect_report)."""
    if not verified_ids(item):
        return (yield)
    state = state_of(item.config)
    with profiles.applied(profiles.profile_for(item.config, state.profile), state.forced_seed):
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    allure_support.attach_informative(item)
    log = item.stash.get(LOG, None)
    if log is None or not log.calls:
        return
    state = state_of(item.config)
    state.slots_used.update(c.slot for c in log.calls)
    state.test_slots.setdefault(item.nodeid, set()).update(c.slot for c in log.calls)
    allure_support.attach_calls(log, mask=state.mask_pii)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    """After a suite test: a plainly dead target (the circuit breaker of the session's clients is open) stops the
    kit with one line, exit code 2, instead of every further test waiting its timeout."""
    result = yield
    pool = item.config.stash.get(HTTP_POOL, None)
    if pool is None or not verified_ids(item):
        return result
    state = state_of(item.config)
    if state.outcomes.get(item.nodeid) == "passed":
        pool.breaker.answered()  # a test that passed saw the target work (it may have expected a closed connection)
    if pool.breaker.tripped:
        if not state.startup_error:
            ran = sum(1 for o in state.outcomes.values() if o != "skipped")
            state.startup_error = f"{pool.breaker.tripped} (kit stopped after {ran} test(s))"
        pytest.exit(state.startup_error, returncode=2)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    ids = verified_ids(item)
    if ids:
        mark_report(report, call, ids)
        # junit.xml takes a test's properties from its teardown report, which copies the item's.
        item.user_properties.extend(junit_properties(report))
        allure_support.remember_informative(item, report)
        if report.when == "teardown":  # what an xdist controller learns only from the reports
            state = state_of(item.config)
            setattr(report, SLOTS_ATTR, sorted(state.test_slots.get(item.nodeid, ())))
            if state.certificates is not None and not state.certificates_reported:
                setattr(report, CERTIFICATES_ATTR, state.certificates)
                if state.resolved is not None and state.resolved.embedded and state.resolved.base_urls:
                    setattr(report, EMBEDDED_BASE_ATTR, next(iter(state.resolved.base_urls.values())))
                state.certificates_reported = True
        if call.excinfo is not None and isinstance(call.excinfo.value, IdentityRefused):
            # Both travel to an xdist controller, whose session never probed the slots itself.
            setattr(report, IDENTITY_ATTR, call.excinfo.value.slot)
            setattr(report, IDENTITY_LINE_ATTR, str(call.excinfo.value))
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Iterator[None]:
    """Once per run, after the short test summary: each identity slot that cannot connect (and how many tests
    it broke), then the cleanup outcome (output written during fixture teardown would be captured).

    The tests a refused identity broke are left out of pytest's FAILURES section and short summary (they
    would repeat the same line for every test); junit.xml, the Allure results and summary.json list them."""
    state = terminalreporter.config.stash.get(STATE, None)
    stats = terminalreporter.stats
    hidden: dict[str, list[Any]] = {}
    if state is not None and state.identity_problems:
        for key, reports in stats.items():
            hidden[key] = [r for r in reports if getattr(r, IDENTITY_ATTR, None)]
            reports[:] = [r for r in reports if not getattr(r, IDENTITY_ATTR, None)]
    try:
        return (yield)
    finally:
        for key, reports in hidden.items():
            stats[key].extend(reports)
        if state is not None:
            for line in identity_summary(state.identity_problems, stats):
                terminalreporter.write_line(line, red=True, bold=True)
            if state.cleanup_line:
                terminalreporter.write_line(state.cleanup_line)


# ---- session end: environment.properties, categories.json, summary.json -------------------------------


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """trylast: after pytest's junitxml has written junit.xml, whose broken tests become <error>s here."""
    state = state_of(session.config)
    if session.config.getoption("collectonly"):
        return
    if state.load_run is not None and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        # The maker's run ends before this process does (another worker may wait for it); an interrupted
        # session does not wait: at exit its register is stopped and Locust dies with this process.
        state.load_run.join()
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes the reports
        workers.hand_over(session.config, state)
        return
    if state.kit_folders and not state.kits and state.verifies:
        ensure_kits(state)  # an xdist controller collected nothing itself
    xmlpath = getattr(session.config.option, "xmlpath", None)
    if xmlpath:
        broken = [nodeid for nodeid, outcome in state.outcomes.items() if outcome == "broken"]
        junit_support.broken_as_errors(Path(xmlpath), broken, getattr(session.config.option, "junitprefix", None))
    if state.output is None:
        return
    if not state.verifies and not state.startup_error:
        return  # a unit-test run (no suite tests): nothing to report
    if exitstatus == pytest.ExitCode.INTERRUPTED and not state.startup_error:
        # Ctrl-C or the CLI's SIGINT (a kit's time limit, the CLI stopped): what ran is reported, but not judged.
        ran = sum(1 for o in state.outcomes.values() if o != "skipped")
        state.startup_error = (f"interrupted after {time.monotonic() - state.started:.0f} s "
                               f"({ran} test(s) had run): the run is incomplete and was not judged")
    if state.kit_folders:
        from pcr_conformance import kit_reports

        kit_reports.write_kit_reports(state, state.output, junit=Path(xmlpath) if xmlpath else None,
                                      results=state.alluredir,
                                      junit_prefix=getattr(session.config.option, "junitprefix", None))
    else:
        write_reports(state)


def identity_summary(problems: dict[str, str], stats: dict[str, list[Any]]) -> list[str]:
    """One line per identity slot that cannot connect, with the number of tests it broke."""
    broke: dict[str, int] = {}
    for reports in stats.values():
        for rep in reports:
            slot = getattr(rep, IDENTITY_ATTR, None)
            if slot and getattr(rep, "when", "") in ("setup", "call"):
                broke[slot] = broke.get(slot, 0) + 1
    lines = []
    for slot, line in sorted(problems.items()):
        n = broke.get(slot, 0)
        lines.append(f"{line} [{n} test(s) needing slot {slot} broken, not failed]")
    return lines
