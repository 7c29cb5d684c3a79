"""Reports of a run (docs/concepts.md#reports): summaries, the verdict table, the history, the html/ folder.

A report folder is `reports/<kit>/<target>/` with `allure-results/`, `junit.xml`, `summary.json` (written by
the plugin), `history.jsonl` (Allure's history of this kit against this target, one line per run) and `html/`:
`index.html`, the verdict page (verdict_page.py), and `allure.html`, the single-file Allure 3 report built
by allure_build.py with the npm package `allure` (pinned in package.json, run offline). Without Node or the package the Allure
report is skipped with one line saying how to install it; the verdict page and the rest stay usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance import allure_build, verdict_page
from pcr_conformance.allure_build import ALLURE_TIMEOUT_S, HtmlJob, HtmlOutcome

COUNT_KEYS = ("passed", "failed", "broken", "skipped")
HISTORY_FILE = "history.jsonl"  # beside allure-results/; allurerc.mjs names it (historyPath)


class ReportError(Exception):
    """A summary or results folder is missing or unreadable."""


@dataclasses.dataclass(frozen=True)
class Summary:
    """The part of summary.json (written by the plugin) the CLI shows."""

    kit: str
    target: str
    verdict: str  # conformant | not-conformant | incomplete | error
    counts: Mapping[str, int]
    requirements: Mapping[str, str]  # ID -> passed | failed | inconclusive | skipped | not-applicable | not-run | not-tested
    path: str = ""
    error: str = ""  # why the verdict is "error", when the plugin says
    broken_tests: tuple[str, ...] = ()  # node ids of tests that could not run (harness, network, TLS)
    identity_problems: tuple[str, ...] = ()  # one line per identity slot whose certificate was refused

    def requirement_count(self, status: str) -> int:
        return sum(1 for s in self.requirements.values() if s == status)

    @property
    def met(self) -> int:
        return self.requirement_count("passed")

    @property
    def failed_requirements(self) -> list[str]:
        return sorted(rid for rid, s in self.requirements.items() if s == "failed")


@dataclasses.dataclass(frozen=True)
class KitOutcome:
    """One kit run against one target: its summary, or why the run could not be made."""

    kit: str
    target: str
    exit_code: int  # 0 conformant, 1 not conformant, 3 incomplete, 2 could not run or judge
    summary: Summary | None = None
    reason: str = ""
    folder: str = ""
    fatal: bool = False  # nothing was judged (target, pool, pytest itself): the next kits would fail alike
    duration_s: float = 0.0


def read_summary(path: str | Path) -> Summary:
    """Read a summary.json; ReportError naming the file and the missing key."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{p}: no summary.json (the pytest session ended before the plugin wrote it)") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"{p}: unreadable summary: {e}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{p}: summary is not a JSON object")
    missing = [k for k in ("kit", "target", "verdict", "counts", "requirements") if k not in data]
    if missing:
        raise ReportError(f"{p}: summary lacks {', '.join(missing)}")
    counts = {k: int(data["counts"].get(k, 0)) for k in (*COUNT_KEYS, "xfailed")} \
        if isinstance(data["counts"], dict) else {}
    requirements = data["requirements"] if isinstance(data["requirements"], dict) else {}
    tests = data.get("tests") if isinstance(data.get("tests"), dict) else {}
    broken = tuple(sorted(n for n, t in tests.items() if isinstance(t, dict) and t.get("outcome") == "broken"))
    return Summary(kit=str(data["kit"]), target=str(data["target"]), verdict=str(data["verdict"]),
                   counts=counts, requirements={str(k): str(v) for k, v in requirements.items()}, path=str(p),
                   error=str(data.get("error") or ""), broken_tests=broken,
                   identity_problems=tuple(str(v) for v in (data.get("identity_problems") or {}).values()))


# ---- the verdict table --------------------------------------------------------------------------------


def requirements_cell(summary: Summary) -> str:
    """`met of selected`, naming those no test could meet in this run (not tested, not run, skipped)."""
    cell = f"{summary.met} of {len(summary.requirements)}"
    rest = [f"{n} {status.replace('-', ' ')}" for status in ("inconclusive", "not-run", "skipped", "not-applicable",
                                                            "not-tested", "informative")
            if (n := summary.requirement_count(status))]
    return f"{cell} ({', '.join(rest)})" if rest else cell


def render_table(outcomes: Sequence[KitOutcome]) -> str:
    """The end-of-run table: kit, target, verdict, passed / failed / broken / skipped, requirements met."""
    header = ("kit", "target", "verdict", "passed", "failed", "broken", "skipped", "requirements met")
    rows: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    for o in outcomes:
        s = o.summary
        if s is None:
            rows.append((o.kit, o.target, "could not run", "-", "-", "-", "-", "-"))
            if o.reason:
                notes.append(f"{o.kit}: {o.reason}")
            continue
        rows.append((o.kit, o.target, s.verdict, *(str(s.counts.get(k, 0)) for k in COUNT_KEYS),
                     requirements_cell(s)))
        if s.failed_requirements:
            notes.append(f"{o.kit}: failed requirements {', '.join(s.failed_requirements)}")
        if s.counts.get("xfailed"):
            notes.append(f"{o.kit}: {s.counts['xfailed']} known deviation(s) ran as expected failures (xfail)")
        if o.reason:
            notes.append(f"{o.kit}: {o.reason}")
    numeric = {3, 4, 5, 6}
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[1:]]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def outcomes_to_json(outcomes: Sequence[KitOutcome]) -> list[dict[str, Any]]:
    return [
        {"kit": o.kit, "target": o.target, "exit_code": o.exit_code, "reason": o.reason, "folder": o.folder,
         "verdict": o.summary.verdict if o.summary else "error",
         "counts": dict(o.summary.counts) if o.summary else {},
         "requirements_met": o.summary.met if o.summary else 0,
         "requirements_selected": len(o.summary.requirements) if o.summary else 0}
        for o in outcomes
    ]


# ---- history ----------------------------------------------------------------------------------------------


def carry_history(previous: Path, folder: Path) -> None:
    """Copy previous/history.jsonl into the new report folder (the run replaces the previous folder)."""
    old = previous / HISTORY_FILE
    if old.is_file() and not (folder / HISTORY_FILE).exists():
        shutil.copy2(old, folder / HISTORY_FILE)


def history_points(folder: Path) -> list[dict[str, Any]]:
    """The runs in folder/history.jsonl, oldest first (unreadable lines left out)."""
    path = folder / HISTORY_FILE
    points = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            point = json.loads(line)
        except ValueError:
            continue
        if isinstance(point, dict):
            points.append(point)
    return points


def results_in_history(folder: Path) -> bool:
    """Whether the results of folder/allure-results are a point of the history already (a regenerated report).
    The history first: without one (a run's first report) the result files are not read for nothing."""
    points = history_points(folder)
    if not points:
        return False
    ids = {hashlib.md5(str(r["uuid"]).encode("utf-8")).hexdigest()
           for r in verdict_page.read_results(folder / "allure-results") if r.get("uuid")}
    return bool(ids) and any(isinstance(item, dict) and item.get("id") in ids
                             for point in points for item in (point.get("testResults") or {}).values())


def generate_html(folder: str | Path, *, report_name: str = "", timeout_s: float = ALLURE_TIMEOUT_S) -> HtmlOutcome:
    """Write folder/html/: index.html (the verdict page) and allure.html (Allure 3, single file); never half-written.

    The run's results join folder/history.jsonl unless they are in it already (regenerating adds no point)."""
    return next(generate_html_of([(Path(folder), report_name)], timeout_s=timeout_s))


def generate_html_of(folders: Sequence[tuple[Path, str]], *,
                     timeout_s: float = ALLURE_TIMEOUT_S) -> Iterator[HtmlOutcome]:
    """generate_html of each (folder, report name) (a name "" is made from the folder), yielded in the order
    given; the Allure reports of all of them are built together (allure_build.build_reports)."""
    jobs = []
    for given, name in folders:
        folder = Path(given).resolve()
        jobs.append(HtmlJob(folder, name or f"PCR conformance: {folder.parent.name} on {folder.name}",
                            append_history=not results_in_history(folder)))
    ready = [j for j in jobs if j.results.is_dir()]
    for job in ready:
        shutil.rmtree(job.tmp, ignore_errors=True)
    built = allure_build.build_reports(ready, timeout_s)
    for job in jobs:
        if not job.results.is_dir():
            yield HtmlOutcome(False, f"HTML report skipped: {job.results} does not exist")
            continue
        if job.folder in built:
            allure, gate = built[job.folder]
        else:  # the one-process script cannot run here (no checkout's node_modules): the two allure commands
            allure = allure_build.run_allure_commands(job.folder, job.tmp, job.report_name, job.append_history,
                                                      timeout_s)
            gate = allure_build.quality_gate(job.folder, timeout_s) if allure.ok else ""
        yield _finish_html(job, allure, gate)


def _finish_html(job: HtmlJob, allure: HtmlOutcome, gate: str) -> HtmlOutcome:
    """The verdict page beside the Allure report, and the finished html/ in place of the old one."""
    index = verdict_page.write(job.folder, job.tmp, allure=allure.ok, allure_note=allure.message, gate=gate)
    if not job.tmp.is_dir():
        return allure
    final = job.folder / "html"
    shutil.rmtree(final, ignore_errors=True)
    job.tmp.rename(final)
    page = str(final / "index.html") if index else ""
    if allure.ok:
        return HtmlOutcome(True, f"HTML report: {final / ('index.html' if index else verdict_page.ALLURE_FILE)}", page)
    return dataclasses.replace(allure, index=page)


def report_folders(root: str | Path) -> list[Path]:
    """The kit/target folders under root (root itself when it holds allure-results/)."""
    root = Path(root)
    if (root / "allure-results").is_dir():
        return [root]
    found = sorted(p.parent for p in root.glob("*/*/allure-results") if p.is_dir())
    if not found:
        found = sorted(p.parent for p in root.glob("*/allure-results") if p.is_dir())
    return found
