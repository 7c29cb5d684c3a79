"""The report's first page, `html/index.html` (docs/concepts.md#reports): the verdict and the requirement table.

Plain HTML with inline CSS, no script and no external resource, so it opens offline from file://. It reads
summary.json defensively (every field but `verdict` may be absent, a requirement's entry may be a status string
or an object with `status`, `reason` and `tests`), the requirement register for titles and levels, and
allure-results/ to link each test into the Allure single-file report beside it (`allure.html#<id>`, where
Allure 3 names a test result md5(its result file's uuid)).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance.allure_support import stable_id
from pcr_conformance.errors import HarnessError
from pcr_conformance.kits import Req, load_requirements

ALLURE_FILE = "allure.html"
VERDICTS = {  # verdict -> (colour, what it means)
    "conformant": ("#1a7f37", "every deciding requirement that applies passed"),
    "not-conformant": ("#cf222e", "a deciding requirement failed"),
    "incomplete": ("#9a6700", "nothing failed, but a deciding requirement was not shown"),
    "error": ("#57606a", "the run could not judge the target"),
}
STATUS_COLOURS = {
    "passed": "#1a7f37", "failed": "#cf222e", "inconclusive": "#9a6700", "skipped": "#6e7781",
    "not-applicable": "#8c959f", "not-run": "#bc4c00", "not-tested": "#8250df", "informative": "#0969da",
}
STATUS_ORDER = ("failed", "inconclusive", "not-run", "skipped", "not-applicable", "not-tested", "informative",
                "passed")
# A requirement's status -> the test outcomes that decided it (listed first, the others fold away).
DECIDED_BY = {"passed": {"passed"}, "failed": {"failed", "xfailed"}, "not-run": {"broken", "not-run"},
              "skipped": {"skipped"}, "not-applicable": {"skipped"}, "inconclusive": {"failed", "broken", "skipped"},
              "informative": {"informative", "failed", "passed"}}
SHOWN_TESTS = 6
ATTENTION = ("failed", "inconclusive", "not-run")  # listed under the verdict, linked to their rows


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def requirement_entries(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{id: {"status", "reason", "tests"}} from summary.json's `requirements` (strings or objects)."""
    out: dict[str, dict[str, Any]] = {}
    for rid, value in _dict(summary.get("requirements")).items():
        if isinstance(value, dict):
            tests = value.get("tests") or value.get("decided_by") or []
            out[str(rid)] = {"status": str(value.get("status", "not-run")), "reason": str(value.get("reason") or ""),
                             "tests": [str(t) for t in tests] if isinstance(tests, list) else []}
        else:
            out[str(rid)] = {"status": str(value), "reason": "", "tests": []}
    for rid, result in _dict(summary.get("requirement_results")).items():
        if rid in out and isinstance(result, dict) and result.get("observed_status"):
            out[rid]["observed_status"] = str(result["observed_status"])  # an informative requirement's
            out[rid]["reason"] = out[rid]["reason"] or str(result.get("reason") or "")
    return out


def read_results(results: Path) -> list[dict[str, Any]]:
    """The Allure result files of a run (unreadable ones left out)."""
    found = []
    for path in sorted(results.glob("*-result.json")) if results.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def _label_values(result: Mapping[str, Any], name: str) -> list[str]:
    return [str(lb.get("value")) for lb in result.get("labels") or [] if isinstance(lb, dict) and lb.get("name") == name]


def _nodeid_guess(result: Mapping[str, Any]) -> str:
    """suites.x.test_y#test_z + name test_z[p] -> suites/x/test_y.py::test_z[p] (results without our labels)."""
    module = str(result.get("fullName") or "").split("#", 1)[0]
    return f"{module.replace('.', '/')}.py::{result.get('name', '')}" if module else str(result.get("name", ""))


def allure_ids(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{as_id or guessed node id: {"id": Allure test result id, "name", "status", "requirements"}}; latest wins."""
    by_key: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r.get("stop") or 0):
        if not r.get("uuid"):
            continue
        entry = {"id": hashlib.md5(str(r["uuid"]).encode("utf-8")).hexdigest(), "name": str(r.get("name", "")),
                 "status": str(r.get("status", "")), "requirements": _label_values(r, "requirement"),
                 "nodeid": _nodeid_guess(r)}
        for key in {*_label_values(r, "as_id"), entry["nodeid"]}:
            by_key[key] = entry
    return by_key


def tests_by_requirement(summary: Mapping[str, Any], entries: Mapping[str, dict[str, Any]],
                         linked: Mapping[str, dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """{requirement: [(node id, outcome)]}: the requirement's own list, else summary `tests`, else Allure labels."""
    tests = _dict(summary.get("tests"))
    out: dict[str, list[tuple[str, str]]] = {rid: [] for rid in entries}

    def outcome(nodeid: str) -> str:
        t = _dict(tests.get(nodeid))
        if t:
            return str(t.get("outcome", "not-run"))
        hit = linked.get(stable_id(nodeid)) or linked.get(nodeid) or {}
        return str(hit.get("status") or "not-run")

    for rid, entry in entries.items():
        out[rid] = [(n, outcome(n)) for n in entry["tests"]]
    if tests:
        for nodeid, t in sorted(tests.items()):
            for rid in _dict(t).get("verifies") or []:
                if rid in out and not entries[rid]["tests"]:
                    out[rid].append((nodeid, str(t.get("outcome", "not-run"))))
    else:
        seen: set[str] = set()
        for entry in linked.values():
            if entry["id"] in seen:
                continue
            seen.add(entry["id"])
            for rid in entry["requirements"]:
                if rid in out and not entries[rid]["tests"]:
                    out[rid].append((entry["nodeid"], entry["status"]))
    return out


def _when(summary: Mapping[str, Any], results: Sequence[Mapping[str, Any]], summary_path: Path) -> str:
    start, end = summary.get("started_utc"), summary.get("ended_utc")
    if not start:
        stamps = [r[k] for r in results for k in ("start", "stop") if isinstance(r.get(k), int | float)]
        if stamps:
            start, end = (dt.datetime.fromtimestamp(s / 1000, dt.UTC).isoformat(timespec="seconds")
                          for s in (min(stamps), max(stamps)))
        elif summary_path.is_file():
            start = dt.datetime.fromtimestamp(summary_path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")
    return f"{start} – {end}" if start and end else str(start or "unknown")


def _pill(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#57606a")
    return f'<span class="pill" style="background:{colour}">{html.escape(status)}</span>'


def _test_link(nodeid: str, outcome: str, linked: Mapping[str, dict[str, Any]], allure: bool) -> str:
    hit = linked.get(stable_id(nodeid)) or linked.get(nodeid)
    label = f'{html.escape(nodeid)} <span class="outcome o-{html.escape(outcome)}">{html.escape(outcome)}</span>'
    if allure and hit:
        return f'<li><a href="{ALLURE_FILE}#{hit["id"]}">{label}</a></li>'
    return f'<li title="search the Allure report for this name">{label}</li>'


def _tests_cell(status: str, tests: Sequence[tuple[str, str]], linked: Mapping[str, dict[str, Any]],
                allure: bool) -> str:
    if not tests:
        return '<span class="muted">no test</span>'
    deciding = DECIDED_BY.get(status, set())
    ordered = sorted(tests, key=lambda t: (t[1] not in deciding, t[0]))
    first, rest = ordered[:SHOWN_TESTS], ordered[SHOWN_TESTS:]
    cell = "<ul>" + "".join(_test_link(n, o, linked, allure) for n, o in first) + "</ul>"
    if rest:
        cell += (f"<details><summary>{len(rest)} more</summary><ul>"
                 + "".join(_test_link(n, o, linked, allure) for n, o in rest) + "</ul></details>")
    return cell


def _facts(summary: Mapping[str, Any], when: str, gate: str) -> list[tuple[str, str]]:
    commit = str(summary.get("git_commit") or "")
    facts = [("kit", str(summary.get("kit_title") or summary.get("kit") or "?")),
             ("target", str(summary.get("target") or "?")), ("when (UTC)", when),
             ("tool version", str(summary.get("tool_version") or summary.get("suite_version") or "unknown")
              + (f" ({commit[:12]})" if commit else "")),
             ("profile / seed", f"{summary.get('profile') or '?'} / {summary.get('seed') or '?'}"),
             ("run id", str(summary.get("run_id") or "?")),
             ("contract version", str(summary.get("contract_version") or "unnamed")),
             ("deciding levels", ", ".join(summary.get("deciding_levels") or []) or "?")]
    if summary.get("contract"):
        # The reading that judged: under the public one modelled requirements are informative, never deciding.
        facts.append(("contract reading", str(summary["contract"])))
        facts.append(("implementation profile", str(summary.get("implementation_profile") or "none")))
    if isinstance(summary.get("duration_s"), int | float):
        facts.append(("duration", f"{summary['duration_s']:.0f} s"))
    capabilities = summary.get("capabilities")
    if isinstance(capabilities, list | dict):
        facts.append(("claimed capabilities", ", ".join(map(str, capabilities)) or "none"))
    if gate:
        facts.append(("Allure quality gate", gate))
    return facts


def render(summary: Mapping[str, Any], requirements: Mapping[str, Req], results: Sequence[Mapping[str, Any]], *,
           allure: bool, allure_note: str = "", gate: str = "", summary_path: Path = Path()) -> str:
    """The verdict page as one HTML string."""
    verdict = str(summary.get("verdict") or "error")
    colour, meaning = VERDICTS.get(verdict, ("#57606a", ""))
    entries = requirement_entries(summary)
    linked = allure_ids(results)
    tests = tests_by_requirement(summary, entries, linked)
    deciding = set(summary.get("deciding_levels") or [])
    counts = _dict(summary.get("counts"))
    by_status = {s: sum(1 for e in entries.values() if e["status"] == s) for s in STATUS_ORDER}
    e = html.escape
    rows = []
    order = {rid: i for i, rid in enumerate(requirements)}
    for rid in sorted(entries, key=lambda r: (order.get(r, len(order)), r)):
        entry, req = entries[rid], requirements.get(rid)
        level = req.level if req else "?"
        reason = entry["reason"] or (req.not_tested if req and entry["status"] == "not-tested" and req.not_tested else "")
        if entry["status"] == "informative":
            reason = f"modelled, not deciding; observed {entry.get('observed_status') or '?'}" + \
                (f": {reason}" if reason else "")
        rows.append(
            f'<tr id="{e(rid)}" class="s-{e(entry["status"])}"><td class="id">{e(rid)}</td>'
            f'<td>{e(req.title if req else "(not in the requirement register)")}'
            + (f'<div class="reason">{e(str(reason))}</div>' if reason else "")
            + f'</td><td class="level{" deciding" if level in deciding else ""}">{e(level)}</td>'
            f'<td>{_pill(entry["status"])}</td><td class="tests">{_tests_cell(entry["status"], tests[rid], linked, allure)}</td></tr>')
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                    for k, v in _facts(summary, _when(summary, results, summary_path), gate))
    test_counts = " · ".join(f"{e(str(k))} {e(str(v))}" for k, v in counts.items())
    req_counts = " · ".join(f"{_pill(s)} {n}" for s, n in by_status.items() if n)
    error = f'<p class="error">{e(str(summary["error"]))}</p>' if summary.get("error") else ""
    attention = [rid for s in ATTENTION for rid in sorted(entries) if entries[rid]["status"] == s]
    if attention:
        error += ('<p class="attention"><b>Not shown to be met:</b> '
                  + " ".join(f'<a href="#{e(r)}">{e(r)}</a>&nbsp;{_pill(entries[r]["status"])}' for r in attention)
                  + "</p>")
    link = (f'<p><a class="button" href="{ALLURE_FILE}">Open the full Allure report</a> every test with its '
            f'requests, responses and curl commands; trends across runs</p>' if allure
            else f'<p class="muted">{e(allure_note or "The Allure report was not generated.")}</p>')
    title = f"{summary.get('kit') or '?'} on {summary.get('target') or '?'}: {verdict}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }}
main {{ max-width: 1300px; margin: 0 auto; padding: 24px; }}
.verdict {{ background: {colour}; color: #fff; border-radius: 10px; padding: 18px 26px; margin-bottom: 18px; }}
.verdict .word {{ font-size: 44px; font-weight: 800; letter-spacing: .02em; text-transform: uppercase; }}
.verdict .meaning {{ font-size: 17px; opacity: .95; }}
.grid {{ display: flex; gap: 18px; flex-wrap: wrap; align-items: flex-start; }}
.card {{ background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 16px; }}
.facts th {{ text-align: left; color: #57606a; font-weight: 500; padding-right: 16px; }}
table.reqs {{ border-collapse: collapse; width: 100%; background: #fff; margin-top: 18px; }}
table.reqs th, table.reqs td {{ border-bottom: 1px solid #d8dee4; padding: 6px 8px; vertical-align: top; text-align: left; }}
table.reqs thead th {{ position: sticky; top: 0; background: #eaeef2; }}
td.id {{ font-family: ui-monospace, monospace; white-space: nowrap; font-weight: 600; }}
td.level.deciding {{ font-weight: 700; }}
td.tests ul {{ margin: 0; padding-left: 16px; font-family: ui-monospace, monospace; font-size: 12px; }}
td.tests a {{ color: #0969da; text-decoration: none; }} td.tests a:hover {{ text-decoration: underline; }}
.pill {{ color: #fff; border-radius: 10px; padding: 1px 9px; font-size: 13px; font-weight: 600; white-space: nowrap; }}
.outcome {{ font-family: system-ui, sans-serif; font-size: 11px; color: #57606a; }}
.o-failed, .o-broken {{ color: #cf222e; font-weight: 700; }}
tr.s-failed td.id {{ color: #cf222e; }}
.reason {{ color: #57606a; font-size: 13px; }}
.attention {{ background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 16px; }}
.attention a {{ font-family: ui-monospace, monospace; font-weight: 700; color: #1f2328; }}
.muted {{ color: #57606a; }} .error {{ color: #cf222e; font-weight: 600; }}
a.button {{ background: #0969da; color: #fff; padding: 6px 14px; border-radius: 6px; text-decoration: none; font-weight: 600; }}
</style></head>
<body><main>
<div class="verdict"><div class="word">{e(verdict)}</div><div class="meaning">{e(title)} — {e(meaning)}</div></div>
{error}
<div class="grid">
<div class="card"><table class="facts">{facts}</table></div>
<div class="card"><div><b>Tests</b>: {test_counts or "none"}</div>
<div style="margin-top:8px"><b>Requirements</b> ({len(entries)} selected): {req_counts or "none"}</div></div>
</div>
{link}
<table class="reqs"><thead><tr><th>ID</th><th>requirement</th><th>level</th><th>status</th><th>tests that decided it</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</main></body></html>
"""


def write(folder: Path, html_dir: Path, *, allure: bool, allure_note: str = "", gate: str = "") -> Path | None:
    """Write html_dir/index.html from folder/summary.json; None when there is no readable summary."""
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    try:
        requirements = load_requirements()
    except HarnessError:
        requirements = {}
    page = render(summary, requirements, read_results(folder / "allure-results"), allure=allure,
                  allure_note=allure_note, gate=gate, summary_path=summary_path)
    html_dir.mkdir(parents=True, exist_ok=True)
    index = html_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
