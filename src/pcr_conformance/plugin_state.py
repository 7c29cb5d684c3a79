"""The pytest plugin's per-session state and what its hooks share: the target, the kit and the requirement
register (loaded once, lazily), which tests are suite tests, and stopping the run when it cannot start."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pcr_conformance import judging, resources
from pcr_conformance.calllog import CallLog
from pcr_conformance.cleanup import LoanLedger
from pcr_conformance.errors import HarnessError
from pcr_conformance.impl_profile import NO_PROFILE, ImplementationProfile, load_profile
from pcr_conformance.kits import Kit, Req, load_kit, load_requirements
from pcr_conformance.target import Target, load_target

STATE = pytest.StashKey["PcrState"]()
LOG = pytest.StashKey[CallLog]()


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
    forced_seed: int | None = None  # regression: the Hypothesis seed of the suite tests
    target: Target | None = None  # loaded (unstarted) target
    resolved: Target | None = None  # after the embedded register started
    kit: Kit | None = None
    requirements: dict[str, Req] = dataclasses.field(default_factory=dict)
    verifies: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # nodeid -> IDs (kit tests)
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)  # nodeid -> outcome
    named: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # nodeid -> IDs its failure names
    reasons: dict[str, str] = dataclasses.field(default_factory=dict)  # nodeid -> skip reason, error, failure
    certificates: dict[str, Any] | None = None  # evidence.describe_certificates of the resolved target
    certificates_reported: bool = False  # sent on a report once (an xdist controller learns them so)
    deviations: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    unmatched_expectations: list[str] = dataclasses.field(default_factory=list)
    slots_used: set[str] = dataclasses.field(default_factory=set)
    startup_error: str = ""
    handle: Any = None  # embedded register process
    ledger: LoanLedger = dataclasses.field(default_factory=LoanLedger)  # loans to cancel at the end
    cleanup_line: str = ""
    # {identity slot: one line naming the slot and why its certificate cannot connect} (tlsprobe, at session
    # start); the tests asking for such a slot are broken with that line, and the run says it once.
    identity_problems: dict[str, str] = dataclasses.field(default_factory=dict)
    # Several kits in one session (kit_reports.py, issue 12): their names as given, loaded kits by name, and
    # whether each kit's report goes to <output>/<kit>/ (always so with more than one kit).
    kit_names: tuple[str, ...] = ()
    kits: dict[str, Kit] = dataclasses.field(default_factory=dict)
    kit_folders: bool = False
    test_slots: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # nodeid -> identity slots it used
    # The contract reading and implementation profile judging this run (--pcr-contract and
    # --pcr-implementation-profile, else the target's), and what each test observed or found informative.
    contract_arg: str | None = None
    impl_profile_arg: str | None = None
    contract: str = ""
    impl_profile: ImplementationProfile = NO_PROFILE
    observed: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    findings: dict[str, list[dict[str, str]]] = dataclasses.field(default_factory=dict)
    load_run: Any = None  # load_session.BackgroundLoad: the service levels' load run, made since the collection


def state_of(config: pytest.Config) -> PcrState:
    return config.stash[STATE]


def requirements(state: PcrState) -> dict[str, Req]:
    if not state.requirements:
        state.requirements = load_requirements()
    return state.requirements


def ensure_target(state: PcrState) -> Target:
    """Load (not start) the target; a bad target file stops the run with exit code 2."""
    if state.target is None:
        try:
            state.target = load_target(state.target_name)
        except HarnessError as e:
            startup_failed(state, f"target: {e}")
        assert state.target is not None
        state.contract = state.contract_arg or state.target.contract
        name = state.impl_profile_arg if state.impl_profile_arg is not None else state.target.implementation_profile
        try:
            state.impl_profile = load_profile(name)
        except HarnessError as e:
            startup_failed(state, f"implementation profile: {e}")
        judging.configure(state.contract, state.impl_profile)  # in each xdist worker too: each loads the target
    assert state.target is not None
    return state.target


def ensure_kit(state: PcrState) -> Kit:
    if state.kit is None:
        try:
            state.kit = load_kit(state.kit_name)
        except HarnessError as e:
            startup_failed(state, f"kit: {e}")
    assert state.kit is not None
    return state.kit


def ensure_kits(state: PcrState) -> list[Kit]:
    """The session's kits (one unless several were given); a bad kit file stops the run with exit code 2."""
    if not state.kit_folders:
        return [ensure_kit(state)]
    for name in state.kit_names:
        if name not in state.kits:
            try:
                state.kits[name] = load_kit(name)
            except HarnessError as e:
                startup_failed(state, f"kit: {e}")
    return [state.kits[name] for name in state.kit_names]


def startup_failed(state: PcrState, reason: str) -> None:
    state.startup_error = reason.splitlines()[0] if reason else "unknown error"
    pytest.exit(state.startup_error, returncode=2)


def verified_ids(item: pytest.Item) -> list[str]:
    """The requirement IDs of the item's `verifies` markers (a suite test has at least one)."""
    ids: list[str] = []
    for mark in item.iter_markers("verifies"):
        ids.extend(str(a) for a in mark.args)
    return list(dict.fromkeys(ids))


def in_suites(item: pytest.Item) -> bool:
    """The test lives in the kit's suites folder or in a folder the `pcr_suites` ini option names."""
    return path_in_suites(item.config, Path(item.path))


def path_in_suites(config: pytest.Config, path: Path) -> bool:
    """`path` is in the kit's suites folder (resources.suites_dir(): the checkout's or the installed one) or in
    a folder the `pcr_suites` ini option names. Only the location counts, never the rootdir: an unrelated
    project's own `suites/` folder is left alone."""
    path = path.resolve()
    folders = [Path(p).resolve() for p in config.getini("pcr_suites")]
    try:
        folders.append(resources.suites_dir().resolve())
    except FileNotFoundError:
        pass
    return any(path.is_relative_to(folder) for folder in folders)
