"""summary.json (docs/concepts.md#summaryjson): the verdict of one kit against one target, per requirement.

Outcomes per test: passed, failed (an AssertionError: the implementation broke the requirement the failure
names), broken (could not run), skipped (not claimed / not applicable), xfailed (known deviation).

A requirement's status (first rule that holds; docs/concepts.md#verdicts-and-exit-codes):
  failed          a failed test named it (RequirementFailure, or a message starting with its ID), in any test
  not-applicable  its `applies_when` names no capability the target claims
  failed          a known deviation (xfailed test) named it, or named nothing and the test verifies it
  passed          a test verifying it passed
  inconclusive    a test verifying it failed (or deviated) on another requirement or named none
  not-run         a test verifying it was broken (could not run)
  skipped         its tests were skipped (the reasons say which slot, capability or pool tag was missing)
  not-tested      the register says the suites cannot check it (`not_tested`)
  not-run         no test verifying it ran

Under the public reading (readings.py) every selected modelled requirement is `informative`: its status by the
rules above is kept as `observed_status`, it never decides the verdict and is never a gap; a test whose failure
named only modelled requirements has the outcome `informative` (counted apart from failed).

The verdict: error (could not judge: a startup error, no test ran, or every test that ran was broken) >
not-conformant (a deciding requirement failed; known deviations do not decide) > incomplete (a deciding
requirement that applies is inconclusive, not-run or skipped: `gaps` lists which and why) > conformant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pcr_conformance import readings
from pcr_conformance.kits import Kit, Req

OUTCOMES = ("passed", "failed", "broken", "skipped", "xfailed", "informative")
STATUSES = ("passed", "failed", "inconclusive", "skipped", "not-applicable", "not-run", "not-tested", "informative")
VERDICTS = ("conformant", "not-conformant", "incomplete", "error")
GAP_STATUSES = ("inconclusive", "not-run", "skipped")

_SHORT_REASONS = (
    (re.compile(r"identity slot '([\w-]+)' is not configured"), r"no certificate for slot \1"),
    (re.compile(r"does not claim capability '([\w-]+)'"), r"capability \1 not claimed"),
    (re.compile(r"extra_certificates\.(\w+) is not configured"), r"no \1 certificate (extra_certificates.\1)"),
    (re.compile(r"is read-only and this test changes data"), "the target is read-only"),
)


def short_reason(reason: str) -> str:
    """A skip reason as the gap list names it: "no certificate for slot second_lender", "capability transfer
    not claimed", else the reason without its "not claimed: " prefix."""
    for pattern, replacement in _SHORT_REASONS:
        m = pattern.search(reason)
        if m:
            return m.expand(replacement)
    return reason.removeprefix("not claimed: ").strip()


def attribute(selected: Mapping[str, Req], known: Iterable[str], verifies: Mapping[str, Iterable[str]],
              outcomes: Mapping[str, str], named: Mapping[str, Iterable[str]], reasons: Mapping[str, str],
              kit_name: str = "the kit") -> tuple[dict[str, list[str]], dict[str, list[str]], list[dict[str, Any]]]:
    """({requirement: failed tests naming it}, {requirement: known deviations of it}, unattributed failures).

    A failure counts for the selected requirements it names, whether or not the test verifies them (a batch
    stuck in a reporting test is a BAT-010 failure). A failure naming no selected requirement is unattributed:
    the test is failed and its requirements inconclusive."""
    known = set(known)
    failed: dict[str, list[str]] = {}
    deviations: dict[str, list[str]] = {}
    unattributed: list[dict[str, Any]] = []
    for node in sorted(outcomes):
        outcome = outcomes[node]
        if outcome not in ("failed", "xfailed"):
            continue
        ids = list(named.get(node, ()))
        hits = [r for r in ids if r in selected]
        if outcome == "xfailed":
            # A listed deviation names its requirement; one that names none counts for what the test verifies.
            for rid in hits or [r for r in verifies.get(node, ()) if r in selected]:
                deviations.setdefault(rid, []).append(node)
            continue
        if hits:
            for rid in hits:
                failed.setdefault(rid, []).append(node)
            continue
        reason = reasons.get(node, "")
        if "XPASS" in reason:
            why = "a known deviation passed (strict xfail): the bug is fixed, remove the expectations entry"
        elif not ids:
            why = "the failure names no requirement"
        elif any(r in known for r in ids):
            why = f"the failure names {', '.join(ids)}, which {kit_name} does not select"
        else:
            why = f"the failure names {', '.join(ids)}, not a known requirement"
        unattributed.append({"test": node, "named": ids, "why": why, "message": reason})
    return failed, deviations, unattributed


def requirement_results(selected: Mapping[str, Req], verifies: Mapping[str, Iterable[str]],
                        outcomes: Mapping[str, str], named: Mapping[str, Iterable[str]],
                        reasons: Mapping[str, str], capabilities: Iterable[str] | None,
                        failed: Mapping[str, list[str]], deviations: Mapping[str, list[str]],
                        ) -> dict[str, dict[str, Any]]:
    """{requirement: {status, tests (that decided it), reason, needs, known_deviation}} by the rules above.

    `capabilities` None (no target could be loaded): every requirement applies."""
    tests_of: dict[str, list[str]] = {rid: [] for rid in selected}
    for node, ids in sorted(verifies.items()):
        for rid in ids:
            if rid in tests_of:
                tests_of[rid].append(node)
    claimed = None if capabilities is None else list(capabilities)
    results: dict[str, dict[str, Any]] = {}
    for rid, req in selected.items():
        mine = tests_of[rid]
        by: dict[str, list[str]] = {}
        for node in mine:
            if node in outcomes:
                by.setdefault(outcomes[node], []).append(node)
        res: dict[str, Any] = {"status": "", "tests": [], "reason": "", "needs": [], "known_deviation": False}
        if failed.get(rid):
            res.update(status="failed", tests=failed[rid], reason=reasons.get(failed[rid][0], ""))
        elif claimed is not None and not req.applies(claimed):
            res.update(status="not-applicable",
                       reason=f"applies when the target claims {' or '.join(req.applies_when)}",
                       needs=[f"capability {c}" for c in req.applies_when])
        elif deviations.get(rid):
            res.update(status="failed", tests=deviations[rid], known_deviation=True,
                       reason=reasons.get(deviations[rid][0], ""))
        elif by.get("passed"):
            res.update(status="passed", tests=by["passed"])
        elif by.get("failed") or by.get("xfailed"):
            stopped = by.get("failed", []) + by.get("xfailed", [])
            on = sorted({r for n in stopped for r in named.get(n, ())} - {rid})
            res.update(status="inconclusive", tests=stopped,
                       reason=(f"its test(s) stopped on {', '.join(on)} before showing it" if on
                               else f"its test failed naming no requirement: {reasons.get(stopped[0], '')}"))
        elif by.get("broken"):
            res.update(status="not-run", tests=by["broken"],
                       reason=f"its test(s) could not run: {reasons.get(by['broken'][0], '')}")
        elif by.get("skipped"):
            shorts = sorted({short_reason(reasons.get(n, "")) for n in by["skipped"]})
            res.update(status="skipped", tests=by["skipped"], reason="; ".join(shorts), needs=shorts)
        elif req.not_tested:
            res.update(status="not-tested", reason=req.not_tested)
        else:
            res.update(status="not-run", reason="no test verifying it ran" if mine else "no test verifies it")
        results[rid] = res
    return results


def requirement_statuses(selected: Mapping[str, Req], verifies: Mapping[str, Iterable[str]],
                         outcomes: Mapping[str, str], named: Mapping[str, Iterable[str]] | None = None,
                         reasons: Mapping[str, str] | None = None,
                         capabilities: Iterable[str] | None = None) -> dict[str, str]:
    """{requirement: status} (see requirement_results)."""
    named, reasons = named or {}, reasons or {}
    failed, deviations, _ = attribute(selected, selected, verifies, outcomes, named, reasons)
    results = requirement_results(selected, verifies, outcomes, named, reasons, capabilities, failed, deviations)
    return {rid: r["status"] for rid, r in results.items()}


def verdict(kit: Kit | None, selected: Mapping[str, Req], results: Mapping[str, Mapping[str, Any]],
            counts: Mapping[str, int], startup_error: str) -> tuple[str, str]:
    """(verdict, why it is error). Known deviations (a failed status with known_deviation) do not decide: they
    are the target's listed, ticketed bugs, and a stale entry (the bug was fixed) shows up as an unattributed
    failed test (strict XPASS), whose requirements are inconclusive."""
    if startup_error:
        return "error", startup_error
    if sum(counts.values()) == 0:
        return "error", "no test ran"
    judged = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("xfailed", 0) + counts.get("informative", 0)
    if judged == 0 and counts.get("broken", 0):
        return "error", (f"every test that ran was broken ({counts['broken']} could not run: harness, network "
                         f"or TLS; not a conformance failure)")
    deciding = [rid for rid, r in selected.items() if kit is not None and kit.decides(r)]
    if any(results[rid]["status"] == "failed" and not results[rid]["known_deviation"] for rid in deciding):
        return "not-conformant", ""
    if any(results[rid]["status"] in GAP_STATUSES for rid in deciding):
        return "incomplete", ""
    if not any(results[rid]["status"] in ("passed", "failed") for rid in deciding):
        if deciding and all(results[rid]["status"] == "informative" for rid in deciding):  # the load kit, public
            return "error", ("nothing was judged: every deciding requirement is modelled, informative under the "
                             "public reading (judge by the model and the profile with --contract reference)")
        return "error", "nothing was judged: no deciding requirement applies to the claimed capabilities"
    return "conformant", ""


def gaps(kit: Kit | None, selected: Mapping[str, Req], results: Mapping[str, Mapping[str, Any]]
         ) -> list[dict[str, Any]]:
    """The deciding requirements that apply but were not shown: why the verdict is incomplete."""
    return [{"requirement": rid, "title": req.title, "level": req.level, "status": results[rid]["status"],
             "reason": results[rid]["reason"], "needs": results[rid]["needs"], "tests": results[rid]["tests"]}
            for rid, req in selected.items()
            if kit is not None and kit.decides(req) and results[rid]["status"] in GAP_STATUSES]


def informative_results(results: dict[str, dict[str, Any]], selected: Mapping[str, Req], reading: str,
                        findings: Mapping[str, Iterable[Mapping[str, str]]]) -> None:
    """Public reading: each modelled requirement becomes `informative` (in place), its status by the rules kept
    as `observed_status`; a modelled requirement a passed test left informative findings on is observed failed.
    Informative findings of any reading are listed per requirement."""
    by_requirement: dict[str, list[dict[str, str]]] = {}
    for node, items in sorted(findings.items()):
        for f in items:
            by_requirement.setdefault(f["requirement"], []).append({"test": node, "message": f["message"]})
    for rid, res in results.items():
        found = by_requirement.get(rid, [])
        if found:
            res["informative_findings"] = found
        if reading != "public" or readings.is_public_requirement(rid):
            continue
        observed = res["status"]
        if found and observed not in ("failed", "not-applicable"):  # a finding shows it was checked, and not met
            observed = "failed"
            res.update(tests=sorted({f["test"] for f in found}), reason=found[0]["message"])
        res.update(status="informative", observed_status=observed, needs=[])


def observed_values(observed: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, dict[str, list[str]]]:
    """{key: {value seen: [tests]}} over the run (judging.observe): what `profile --learn` drafts from."""
    out: dict[str, dict[str, list[str]]] = {}
    for node, items in sorted(observed.items()):
        for o in items:
            tests = out.setdefault(str(o["key"]), {}).setdefault(str(o["value"]), [])
            if node not in tests:
                tests.append(node)
    return {k: out[k] for k in sorted(out)}


def build(*, kit: Kit | None, kit_name: str, target_name: str, requirements: Mapping[str, Req],
          verifies: Mapping[str, Iterable[str]], outcomes: Mapping[str, str], startup_error: str,
          stakeholder: list[dict[str, str]], spec_hashes: Mapping[str, str], suite_version: str,
          profile: str, seed: str, run_id: str, duration_s: float,
          known_deviations: Mapping[str, Mapping[str, str]],
          named: Mapping[str, Iterable[str]] | None = None, reasons: Mapping[str, str] | None = None,
          capabilities: Iterable[str] | None = None,
          evidence: Mapping[str, Any] | None = None, reading: str = "reference",
          implementation_profile: str = "",
          observed: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
          findings: Mapping[str, Iterable[Mapping[str, str]]] | None = None) -> dict[str, Any]:
    """The summary.json document. `evidence` (times, versions, commit, URLs, identities) is merged in."""
    named, reasons = named or {}, reasons or {}
    selected = kit.selected(requirements) if kit is not None else {}
    counts = {o: 0 for o in OUTCOMES}
    for o in outcomes.values():
        counts[o] = counts.get(o, 0) + 1
    # An informative test counts as failed for what it showed; informative_results then keeps modelled
    # requirements from deciding.
    judged = {n: ("failed" if o == "informative" else o) for n, o in outcomes.items()}
    failed, deviations, unattributed = attribute(selected, requirements, verifies, judged, named, reasons,
                                                 kit_name=f"kit {kit_name}")
    results = requirement_results(selected, verifies, judged, named, reasons, capabilities, failed, deviations)
    informative_results(results, selected, reading, findings or {})
    result, why = verdict(kit, selected, results, counts, startup_error)
    status_counts = {s: 0 for s in STATUSES}
    for r in results.values():
        status_counts[r["status"]] += 1
    doc: dict[str, Any] = {
        "kit": kit_name,
        "kit_title": kit.title if kit else kit_name,
        "target": target_name,
        "verdict": result,
        "error": why or None,
        "counts": counts,
        "deciding_levels": list(kit.deciding_levels) if kit else [],
        "requirements": {rid: results[rid]["status"] for rid in sorted(results)},
        "requirement_counts": status_counts,
        "requirement_results": {rid: {"title": selected[rid].title, "level": selected[rid].level,
                                      "deciding": bool(kit and kit.decides(selected[rid])),
                                      "applies_when": list(selected[rid].applies_when), **results[rid]}
                                for rid in sorted(results)},
        "contract": reading,
        "implementation_profile": implementation_profile,
        "informative": sorted(rid for rid, r in results.items() if r["status"] == "informative"),
        "observed_values": observed_values(observed or {}),
        "gaps": gaps(kit, selected, results),
        "unattributed_failures": unattributed,
        "tests": {nodeid: {"outcome": outcomes.get(nodeid, "not-run"), "verifies": list(ids),
                           "failed_requirements": list(named.get(nodeid, ())),
                           "reason": reasons.get(nodeid, ""),
                           **({"observed": list((observed or {})[nodeid])} if (observed or {}).get(nodeid) else {}),
                           **({"informative_findings": [f["message"] for f in (findings or {})[nodeid]]}
                              if (findings or {}).get(nodeid) else {})}
                  for nodeid, ids in sorted(verifies.items())},
        "known_deviations": [{"test": t, **d} for t, d in sorted(known_deviations.items())],
        "stakeholder": stakeholder,
        "spec_hashes": dict(spec_hashes),
        "suite_version": suite_version,
        "profile": profile,
        "seed": seed,
        "run_id": run_id,
        "duration_s": round(duration_s, 3),
    }
    doc.update(evidence or {})
    return doc
