"""Reports of a run (docs/concepts.md#reports): summaries, the verdict table, the single-file Allure 3 HTML.

A report folder is `reports/<kit>/<target>/` with `allure-results/`, `junit.xml`, `summary.json` (written by
the plugin) and `html/index.html` (written here by the npm package `allure`, pinned in package.json, run
offline). Without Node or the package the HTML is skipped with one line saying how to install it; the rest of
the report stays usable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance import resources

ALLURERC_TEMPLATE = Path(__file__).with_name("allurerc.mjs")
ALLURE_TIMEOUT_S = 120
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
    ok: bool
    message: str
    index: str = ""


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
                   error=str(data.get("error") or ""), broken_tests=broken)


# ---- the verdict table --------------------------------------------------------------------------------


def requirements_cell(summary: Summary) -> str:
    """`met of selected`, naming those no test could meet in this run (not tested, not run, skipped)."""
    cell = f"{summary.met} of {len(summary.requirements)}"
    rest = [f"{n} {status.replace('-', ' ')}" for status in ("inconclusive", "not-run", "skipped", "not-applicable",
                                                            "not-tested")
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


def write_allurerc(folder: Path, report_name: str) -> Path:
    """Write allurerc.mjs (the categories of docs/concepts.md#categories) into a report folder."""
    text = ALLURERC_TEMPLATE.read_text(encoding="utf-8").replace("__REPORT_NAME__", json.dumps(report_name))
    path = folder / "allurerc.mjs"
    path.write_text(text, encoding="utf-8")
    return path


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
    """Generate folder/html/index.html (single file) from folder/allure-results; never half-written."""
    folder = Path(folder).resolve()
    results = folder / "allure-results"
    if not results.is_dir():
        return HtmlOutcome(False, f"HTML report skipped: {results} does not exist")
    command = find_allure()
    if command is None:
        return HtmlOutcome(False, ALLURE_MISSING)
    rc = write_allurerc(folder, report_name or f"PCR conformance: {folder.parent.name} on {folder.name}")
    tmp = folder / ".html.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [*command, "awesome", str(results), "--single-file", "--output", str(tmp), "--config", str(rc),
           "--cwd", str(folder), "--group-by", GROUP_BY]
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    try:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
    except OSError as e:
        return HtmlOutcome(False, f"HTML report skipped: cannot start Allure ({e})")
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        return HtmlOutcome(False, f"HTML report skipped: Allure did not finish within {timeout_s:.0f} s")
    index = tmp / "index.html"
    if proc.returncode != 0 or not index.is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        last = (output or "").strip().splitlines()[-1:] or ["no output"]
        return HtmlOutcome(False, f"HTML report failed: allure exited {proc.returncode}: {last[0][:300]}")
    final = folder / "html"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return HtmlOutcome(True, f"HTML report: {final / 'index.html'}", str(final / "index.html"))


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
