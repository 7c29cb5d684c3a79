"""Reports of a run (docs/concepts.md#reports): summaries, the verdict table, the single-file Allure 3 HTML.

A report folder is `reports/<kit>/<target>/` with `allure-results/`, `junit.xml`, `summary.json` (written by
the plugin), `history.jsonl` (Allure's history of this kit against this target, one line per run) and `html/`:
`index.html`, the verdict page (verdict_page.py), and `allure.html`, the single-file Allure 3 report written
here by the npm package `allure` (pinned in package.json, run offline). Without Node or the package the Allure
report is skipped with one line saying how to install it; the verdict page and the rest stay usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance import resources, verdict_page

ALLURERC_TEMPLATE = Path(__file__).with_name("allurerc.mjs")
ALLURE_TIMEOUT_S = 120
HISTORY_FILE = "history.jsonl"  # beside allure-results/; allurerc.mjs names it (historyPath)
SEVERITY_OF_LEVEL = {"must": "critical", "should": "normal", "may": "minor"}  # as allure_support.SEVERITY
# The report's tree: kit -> API -> operation or flow (docs/concepts.md#allure-mapping). Not by story: a test verifying several
# requirements would be counted once per requirement. The stories are shown on each test.
GROUP_BY = "parentSuite,epic,feature"
COUNT_KEYS = ("passed", "failed", "broken", "skipped")
ALLURE_MISSING = ("HTML report skipped: Allure 3 is not installed (run `npm ci` in the pcr-conformance "
                  "repository; needs Node 20); allure-results/, junit.xml and summary.json are complete")


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


@dataclasses.dataclass(frozen=True)
class HtmlOutcome:
    ok: bool  # the Allure report was generated
    message: str
    index: str = ""  # html/index.html, the verdict page, when it was written


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


# ---- Allure 3 HTML --------------------------------------------------------------------------------------


def write_allurerc(folder: Path, report_name: str, deciding_levels: Sequence[str] = ("must",)) -> Path:
    """Write allurerc.mjs (categories, history, the quality gate of the kit's deciding levels) into a folder."""
    severities = sorted({SEVERITY_OF_LEVEL.get(lv, "normal") for lv in deciding_levels})
    text = (ALLURERC_TEMPLATE.read_text(encoding="utf-8").replace("__REPORT_NAME__", json.dumps(report_name))
            .replace("__DECIDING_SEVERITIES__", json.dumps(severities)))
    path = folder / "allurerc.mjs"
    path.write_text(text, encoding="utf-8")
    return path


def _deciding_levels(folder: Path) -> list[str]:
    try:
        levels = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("deciding_levels")
    except (OSError, ValueError, AttributeError):
        return ["must"]
    return [str(lv) for lv in levels] if isinstance(levels, list) and levels else ["must"]


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
    """Whether the results of folder/allure-results are a point of the history already (a regenerated report)."""
    ids = {hashlib.md5(str(r["uuid"]).encode("utf-8")).hexdigest()
           for r in verdict_page.read_results(folder / "allure-results") if r.get("uuid")}
    return bool(ids) and any(isinstance(item, dict) and item.get("id") in ids
                             for point in history_points(folder)
                             for item in (point.get("testResults") or {}).values())


def find_allure() -> list[str] | None:
    """The command that runs Allure 3, or None when Node or the npm package is missing.

    `PCR_ALLURE` may name the executable; otherwise node_modules/.bin/allure of the pcr-conformance
    checkout, if running from one (where `npm ci` installs the pinned version), then of the current folder
    and its parents.
    """
    if not shutil.which("node"):
        return None
    explicit = os.environ.get("PCR_ALLURE")
    if explicit:
        return [explicit] if Path(explicit).is_file() or shutil.which(explicit) else None
    here = Path.cwd().resolve()
    checkout = resources.checkout()
    for folder in (*([checkout] if checkout else []), here, *here.parents):
        exe = folder / "node_modules" / ".bin" / "allure"
        if exe.is_file():
            return [str(exe)]
    return None


def generate_html(folder: str | Path, *, report_name: str = "", timeout_s: float = ALLURE_TIMEOUT_S) -> HtmlOutcome:
    """Write folder/html/: index.html (the verdict page) and allure.html (Allure 3, single file); never half-written.

    The run's results join folder/history.jsonl unless they are in it already (regenerating adds no point)."""
    return next(generate_html_of([(Path(folder), report_name)], timeout_s=timeout_s))


ALLURE_KIT_SCRIPT = Path(__file__).with_name("allure_kit.mjs")
_KIT_LINE = "PCR-KIT "
# One Node process per core, each building its share of the kits at the same time (allure_kit.mjs): Node builds
# a report on one thread, and a process's file reads for one kit overlap its work on another. Six kits on
# 2 cores (benchmarks/run.py's reports): 7.3-7.9 s this way, 8.9-11.2 s in one process, 9.2-9.3 s as one
# process per kit three at a time.
HTML_PROCESSES = os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class _HtmlJob:
    folder: Path  # reports/<kit>/<target>/, resolved
    report_name: str

    @property
    def tmp(self) -> Path:  # the html/ being written; renamed into place when it is complete
        return self.folder / ".html.tmp"

    @property
    def results(self) -> Path:
        return self.folder / "allure-results"


def generate_html_of(folders: Sequence[tuple[Path, str]], *,
                     timeout_s: float = ALLURE_TIMEOUT_S) -> Iterator[HtmlOutcome]:
    """generate_html of each (folder, report name) (a name "" is made from the folder), yielded in the order
    given; the Allure reports of all of them are built together, HTML_PROCESSES Node processes at a time."""
    jobs = [_HtmlJob(Path(folder).resolve(), name) for folder, name in folders]
    jobs = [dataclasses.replace(j, report_name=j.report_name or f"PCR conformance: {j.folder.parent.name} on "
                                f"{j.folder.name}") for j in jobs]
    ready = [j for j in jobs if j.results.is_dir()]
    for job in ready:
        shutil.rmtree(job.tmp, ignore_errors=True)
    built = _run_allure_kits(ready, timeout_s)
    for job in jobs:
        if not job.results.is_dir():
            yield HtmlOutcome(False, f"HTML report skipped: {job.results} does not exist")
            continue
        if job.folder in built:
            allure, gate = built[job.folder]
        else:  # the one-process script cannot run here (no checkout's node_modules): the two allure commands
            allure = _run_allure(job.folder, job.tmp, job.report_name, timeout_s)
            gate = quality_gate(job.folder, timeout_s) if allure.ok else ""
        yield _finish_html(job, allure, gate)


def _finish_html(job: _HtmlJob, allure: HtmlOutcome, gate: str) -> HtmlOutcome:
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


def _share_out(jobs: Sequence[_HtmlJob], processes: int) -> list[list[_HtmlJob]]:
    """The jobs in `processes` groups of about the same number of test results, biggest first."""
    def size(job: _HtmlJob) -> int:
        return sum(1 for _ in job.results.glob("*-result.json"))

    groups: list[tuple[int, list[_HtmlJob]]] = [(0, []) for _ in range(min(processes, len(jobs)))]
    for job, n in sorted(((j, size(j)) for j in jobs), key=lambda pair: -pair[1]):
        least = min(range(len(groups)), key=lambda i: groups[i][0])
        groups[least] = (groups[least][0] + n, [*groups[least][1], job])
    return [group for _, group in groups]


def _run_allure_kits(jobs: Sequence[_HtmlJob], timeout_s: float) -> dict[Path, tuple[HtmlOutcome, str]]:
    """The reports and quality gates of the jobs by allure_kit.mjs (the same as `allure awesome` and `allure
    quality-gate` with each folder's allurerc.mjs, reading each kit's results once), keyed by folder; {} when
    the script or the npm packages it loads are not there (then the two commands run per kit)."""
    command = find_allure()
    node = shutil.which("node")
    if not jobs or command is None or node is None or os.environ.get("PCR_ALLURE"):
        return {}
    modules = Path(command[0]).resolve().parent.parent  # .bin/allure -> node_modules/allure/cli.js
    if not (modules / "@allurereport" / "core").is_dir() or not ALLURE_KIT_SCRIPT.is_file():
        return {}
    from concurrent.futures import ThreadPoolExecutor

    groups = _share_out(jobs, HTML_PROCESSES)
    built: dict[Path, tuple[HtmlOutcome, str]] = {}
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for part in pool.map(lambda group: _run_allure_kit(node, modules, group, timeout_s), groups):
            built.update(part)
    return built


def _run_allure_kit(node: str, modules: Path, jobs: Sequence[_HtmlJob],
                    timeout_s: float) -> dict[Path, tuple[HtmlOutcome, str]]:
    """One Node process building the jobs' reports; each job's outcome from its own output line."""
    specs = [{"results": str(j.results), "output": str(j.tmp), "cwd": str(j.folder), "groupBy": GROUP_BY,
              "config": str(write_allurerc(j.folder, j.report_name, _deciding_levels(j.folder))),
              "appendHistory": not results_in_history(j.folder)} for j in jobs]
    limit_s = timeout_s * len(jobs)
    with tempfile.TemporaryDirectory(prefix="pcr-allure-") as scratch:
        jobs_file = Path(scratch) / "jobs.json"
        jobs_file.write_text(json.dumps(specs), encoding="utf-8")
        # A young generation of 64 MiB: the report allocates a short-lived string per attachment and result, and
        # with Node's default semi-space it spends a fifth of its CPU in scavenges (register kit: 9.8 -> 7.9 s CPU).
        output, code = _node([node, "--max-semi-space-size=64", str(ALLURE_KIT_SCRIPT), str(modules), str(jobs_file)],
                             Path(scratch), limit_s, {})
    lines: dict[int, dict[str, Any]] = {}
    for line in output.splitlines():
        if line.startswith(_KIT_LINE):
            index, _, outcome = line[len(_KIT_LINE):].partition(" ")
            try:
                lines[int(index)] = json.loads(outcome)
            except ValueError:
                continue
    tail = (output.strip().splitlines()[-1:] or ["no output"])[0][:300]
    built: dict[Path, tuple[HtmlOutcome, str]] = {}
    for i, job in enumerate(jobs):
        outcome = lines.get(i)
        index = job.tmp / "index.html"
        if code is None and outcome is None:
            built[job.folder] = HtmlOutcome(False, f"HTML report skipped: {output}"), ""
        elif outcome is None or not outcome.get("ok") or not index.is_file():
            why = (outcome or {}).get("error") or (f"allure exited {code}: {tail}" if outcome is None
                                                  else f"allure wrote no {index.name}")
            built[job.folder] = HtmlOutcome(False, f"HTML report failed: {why}"), ""
        else:
            index.rename(job.tmp / verdict_page.ALLURE_FILE)
            failed = outcome.get("failed")
            gate = "" if failed is None else f"failed: {', '.join(map(str, failed))}" if failed else "passed"
            built[job.folder] = HtmlOutcome(True, f"HTML report: {job.tmp / verdict_page.ALLURE_FILE}"), gate
        if not built[job.folder][0].ok:
            shutil.rmtree(job.tmp, ignore_errors=True)
    return built


def _run_allure(folder: Path, tmp: Path, report_name: str, timeout_s: float) -> HtmlOutcome:
    """Allure awesome into tmp/allure.html; ok False with one line when it cannot (tmp then removed)."""
    command = find_allure()
    if command is None:
        return HtmlOutcome(False, ALLURE_MISSING)
    rc = write_allurerc(folder, report_name, _deciding_levels(folder))
    cmd = [*command, "awesome", str(folder / "allure-results"), "--single-file", "--output", str(tmp),
           "--config", str(rc), "--cwd", str(folder), "--group-by", GROUP_BY]
    append = "0" if results_in_history(folder) else "1"
    output, code = _node(cmd, folder, timeout_s, {"PCR_ALLURE_APPEND_HISTORY": append})
    index = tmp / "index.html"
    if code is None:
        shutil.rmtree(tmp, ignore_errors=True)
        return HtmlOutcome(False, f"HTML report skipped: {output}")
    if code != 0 or not index.is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        last = output.strip().splitlines()[-1:] or ["no output"]
        return HtmlOutcome(False, f"HTML report failed: allure exited {code}: {last[0][:300]}")
    index.rename(tmp / verdict_page.ALLURE_FILE)
    return HtmlOutcome(True, f"HTML report: {tmp / verdict_page.ALLURE_FILE}")


def quality_gate(folder: Path, timeout_s: float = ALLURE_TIMEOUT_S) -> str:
    """`allure quality-gate` with folder/allurerc.mjs: "passed", "failed: <rules>", or "" when it cannot run."""
    command = find_allure()
    if command is None or not (folder / "allurerc.mjs").is_file():
        return ""
    with tempfile.TemporaryDirectory(prefix="pcr-gate-") as scratch:  # Allure writes a report folder there
        output, code = _node([*command, "quality-gate", "--config", str(folder / "allurerc.mjs"), "--cwd",
                              str(folder), str(folder / "allure-results")], Path(scratch), timeout_s, {})
    if code == 0:
        return "passed"
    rules = [ln.strip().split()[-1] for ln in output.splitlines() if ln.strip().startswith("⨯")]
    return f"failed: {', '.join(rules)}" if code == 1 and rules else ""


def _node(cmd: list[str], cwd: Path, timeout_s: float, extra_env: Mapping[str, str]) -> tuple[str, int | None]:
    """(output, exit code) of an Allure command; (why, None) when it could not start or finish."""
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **extra_env}
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
    except OSError as e:
        return f"cannot start Allure ({e})", None
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return f"Allure did not finish within {timeout_s:.0f} s", None
    return output or "", proc.returncode


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def report_folders(root: str | Path) -> list[Path]:
    """The kit/target folders under root (root itself when it holds allure-results/)."""
    root = Path(root)
    if (root / "allure-results").is_dir():
        return [root]
    found = sorted(p.parent for p in root.glob("*/*/allure-results") if p.is_dir())
    if not found:
        found = sorted(p.parent for p in root.glob("*/allure-results") if p.is_dir())
    return found
