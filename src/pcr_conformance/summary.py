"""summary.json (docs/concepts.md#summaryjson): the verdict of one kit against one target, per requirement.

Outcomes per test: passed, failed (AssertionError: the implementation broke a requirement), broken (could
not run), skipped (not claimed / not applicable), xfailed (known deviation). A requirement is failed when
any of its tests failed or is a known deviation (the target does not meet it), passed when a test passed and none failed or broke,
not-run when its tests broke or none ran, skipped when all were skipped, not-tested when the register
says the suites cannot check it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pcr_conformance.kits import Kit, Req

OUTCOMES = ("passed", "failed", "broken", "skipped", "xfailed")


def requirement_statuses(selected: Mapping[str, Req], verifies: Mapping[str, Iterable[str]],
                         outcomes: Mapping[str, str]) -> dict[str, str]:
    by_req: dict[str, list[str]] = {rid: [] for rid in selected}
    for nodeid, ids in verifies.items():
        outcome = outcomes.get(nodeid)
        if outcome is None:
            continue
        for rid in ids:
            if rid in by_req:
                by_req[rid].append(outcome)
    statuses = {}
    for rid, req in selected.items():
        got = by_req[rid]
        if req.not_tested and not got:
            statuses[rid] = "not-tested"
        elif "failed" in got or "xfailed" in got:
            statuses[rid] = "failed"
        elif "broken" in got:
            statuses[rid] = "not-run"
        elif "passed" in got:
            statuses[rid] = "passed"
        elif got:
            statuses[rid] = "skipped"
        else:
            statuses[rid] = "not-run"
    return statuses


def verdict(kit: Kit | None, selected: Mapping[str, Req], verifies: Mapping[str, Iterable[str]],
            outcomes: Mapping[str, str], counts: Mapping[str, int], startup_error: str) -> str:
    """not-conformant when a test of a deciding-level requirement failed; error when the run could not judge.

    Known deviations (xfailed) do not decide: they are the target's listed, ticketed bugs, and a stale entry
    (the bug was fixed) shows up as a failed test (strict XPASS), which does."""
    if startup_error:
        return "error"
    deciding = {rid for rid, r in selected.items() if kit is not None and kit.decides(r)}
    if any(outcomes.get(nodeid) == "failed" and deciding & set(ids) for nodeid, ids in verifies.items()):
        return "not-conformant"
    if counts.get("broken", 0) or sum(counts.values()) == 0:
        return "error"
    return "conformant"


def build(*, kit: Kit | None, kit_name: str, target_name: str, requirements: Mapping[str, Req],
          verifies: Mapping[str, Iterable[str]], outcomes: Mapping[str, str], startup_error: str,
          stakeholder: list[dict[str, str]], spec_hashes: Mapping[str, str], suite_version: str,
          profile: str, seed: str, run_id: str, duration_s: float,
          known_deviations: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    selected = kit.selected(requirements) if kit is not None else {}
    counts = {o: 0 for o in OUTCOMES}
    for o in outcomes.values():
        counts[o] = counts.get(o, 0) + 1
    statuses = requirement_statuses(selected, verifies, outcomes)
    return {
        "kit": kit_name,
        "kit_title": kit.title if kit else kit_name,
        "target": target_name,
        "verdict": verdict(kit, selected, verifies, outcomes, counts, startup_error),
        "error": startup_error or None,
        "counts": counts,
        "deciding_levels": list(kit.deciding_levels) if kit else [],
        "requirements": dict(sorted(statuses.items())),
        "tests": {nodeid: {"outcome": outcomes.get(nodeid, "not-run"), "verifies": list(ids)}
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
