"""The files a suite run leaves at session end: environment.properties and categories.json (for Allure, in
the results folder and the output folder) and summary.json (summary.build) in the output folder."""

from __future__ import annotations

import datetime as dt
import json
import time

from pcr_conformance import allure_support, evidence, summary
from pcr_conformance.errors import HarnessError
from pcr_conformance.kits import load_kit
from pcr_conformance.plugin_state import PcrState, requirements
from pcr_conformance.target import Target


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
        reqs = requirements(state)
    except HarnessError:
        reqs = {}
    ended = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = summary.build(
        kit=kit, kit_name=kit_name, target_name=target_name, requirements=reqs,
        verifies=state.verifies, outcomes=state.outcomes, startup_error=state.startup_error,
        stakeholder=stakeholder(state, target), spec_hashes={k: v["sha256"] for k, v in specs.items()},
        suite_version=allure_support.suite_version(), profile=state.profile, seed=state.seed, run_id=state.run_id,
        duration_s=time.monotonic() - state.started, known_deviations=state.deviations,
        named=state.named, reasons=state.reasons,
        capabilities=target.capabilities if target is not None else None,
        reading=state.contract or (target.contract if target is not None else "reference"),
        implementation_profile=state.impl_profile.source or state.impl_profile.name,
        observed=state.observed, findings=state.findings,
        evidence=evidence.fields(target=target, started_utc=state.started_utc, ended_utc=ended, specs=specs,
                                 certificates=_certificates(state, target)))
    doc["unmatched_expectations"] = state.unmatched_expectations
    # One line per identity slot whose certificate the register refused (tlsprobe): its tests are broken.
    doc["identity_problems"] = dict(sorted(state.identity_problems.items()))
    assert state.output is not None
    (state.output / "summary.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


def stakeholder(state: PcrState, target: Target | None) -> list[dict[str, str]]:
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


def _certificates(state: PcrState, target: Target | None) -> dict | None:
    """The certificates read while the run went on; else read now, unless they were an embedded register's
    (deleted when it stopped: then the identities are listed without certificate details)."""
    if state.certificates is not None or target is None:
        return state.certificates
    if target.embedded and state.handle is not None:
        return {"identities": {slot: {"role": i.role, "name": i.name, "owner": dict(i.owner),
                                      "error": "certificate not read: the embedded register had stopped"}
                               for slot, i in sorted(target.identities.items())}, "extra_certificates": {}}
    return evidence.describe_certificates(target)
