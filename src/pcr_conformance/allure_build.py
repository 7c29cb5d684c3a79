"""The Allure 3 report of report folders, built offline by Node (docs/concepts.md#reports): allure_kit.mjs, one
Node process per core building several kits' reports and quality gates at once, or, where that script cannot
load Allure's modules, the two commands `allure awesome` and `allure quality-gate` of the npm package `allure`
(pinned in package.json). Also allurerc.mjs, the configuration both read. report.py puts the verdict page
beside the report and the finished html/ in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance import resources, verdict_page

ALLURERC_TEMPLATE = Path(__file__).with_name("allurerc.mjs")
ALLURE_TIMEOUT_S = 120
SEVERITY_OF_LEVEL = {"must": "critical", "should": "normal", "may": "minor"}  # as allure_support.SEVERITY
# The report's tree: kit -> API -> operation or flow (docs/concepts.md#allure-mapping). Not by story: a test verifying several
# requirements would be counted once per requirement. The stories are shown on each test.
GROUP_BY = "parentSuite,epic,feature"
ALLURE_MISSING = ("HTML report skipped: Allure 3 is not installed (run `npm ci` in the pcr-conformance "
                  "repository; needs Node 20); allure-results/, junit.xml and summary.json are complete")


@dataclasses.dataclass(frozen=True)
class HtmlOutcome:
    ok: bool  # the Allure report was generated
    message: str
    index: str = ""  # html/index.html, the verdict page, when it was written


@dataclasses.dataclass(frozen=True)
class HtmlJob:
    folder: Path  # reports/<kit>/<target>/, resolved
    report_name: str
    append_history: bool  # the results are not a point of folder/history.jsonl yet

    @property
    def tmp(self) -> Path:  # the html/ being written; renamed into place when it is complete
        return self.folder / ".html.tmp"

    @property
    def results(self) -> Path:
        return self.folder / "allure-results"


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


ALLURE_KIT_SCRIPT = Path(__file__).with_name("allure_kit.mjs")
_KIT_LINE = "PCR-KIT "
# One Node process per core, each building its share of the kits at the same time (allure_kit.mjs): Node builds
# a report on one thread, and a process's file reads for one kit overlap its work on another. Six kits on
# 2 cores (benchmarks/run.py's reports): 7.3-7.9 s this way, 8.9-11.2 s in one process, 9.2-9.3 s as one
# process per kit three at a time.
HTML_PROCESSES = os.cpu_count() or 1


def _share_out(jobs: Sequence[HtmlJob], processes: int) -> list[list[HtmlJob]]:
    """The jobs in `processes` groups of about the same number of test results, biggest first."""
    def size(job: HtmlJob) -> int:
        return sum(1 for _ in job.results.glob("*-result.json"))

    groups: list[tuple[int, list[HtmlJob]]] = [(0, []) for _ in range(min(processes, len(jobs)))]
    for job, n in sorted(((j, size(j)) for j in jobs), key=lambda pair: -pair[1]):
        least = min(range(len(groups)), key=lambda i: groups[i][0])
        groups[least] = (groups[least][0] + n, [*groups[least][1], job])
    return [group for _, group in groups]


def build_reports(jobs: Sequence[HtmlJob], timeout_s: float) -> dict[Path, tuple[HtmlOutcome, str]]:
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


def _run_allure_kit(node: str, modules: Path, jobs: Sequence[HtmlJob],
                    timeout_s: float) -> dict[Path, tuple[HtmlOutcome, str]]:
    """One Node process building the jobs' reports; each job's outcome from its own output line."""
    specs = [{"results": str(j.results), "output": str(j.tmp), "cwd": str(j.folder), "groupBy": GROUP_BY,
              "config": str(write_allurerc(j.folder, j.report_name, _deciding_levels(j.folder))),
              "appendHistory": j.append_history} for j in jobs]
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


def run_allure_commands(folder: Path, tmp: Path, report_name: str, append_history: bool,
                        timeout_s: float) -> HtmlOutcome:
    """Allure awesome into tmp/allure.html; ok False with one line when it cannot (tmp then removed)."""
    command = find_allure()
    if command is None:
        return HtmlOutcome(False, ALLURE_MISSING)
    rc = write_allurerc(folder, report_name, _deciding_levels(folder))
    cmd = [*command, "awesome", str(folder / "allure-results"), "--single-file", "--output", str(tmp),
           "--config", str(rc), "--cwd", str(folder), "--group-by", GROUP_BY]
    output, code = _node(cmd, folder, timeout_s, {"PCR_ALLURE_APPEND_HISTORY": "1" if append_history else "0"})
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
