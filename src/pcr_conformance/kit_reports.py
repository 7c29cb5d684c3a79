"""One session, several kits (issue 12): each kit's report folder derived from the one set of results.

A session given several kits (`--pcr-kit A --pcr-kit B`, or `--pcr-kit-folders`) runs every test any of them
selects once. At session end each kit gets `<pcr-output>/<kit>/` with what a session of that kit alone would
have written: summary.json, environment.properties and categories.json (session_report.write_reports on a
view of the session state holding only the kit's tests), junit.xml (the session's, with only the kit's test
cases), allure-results/ (the kit's result files, parentSuite set to the kit's title, with the attachments they
use, hard-linked where the file is unchanged, and the fixture containers that show something: a fixture that
did not pass or an attachment) and certs/. A test in several kits is counted
in each; the verdict of a kit comes only from its own tests, as before.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pcr_conformance import junit_support
from pcr_conformance.allure_support import attachments_of, shows_something
from pcr_conformance.kits import Kit
from pcr_conformance.plugin_state import PcrState, requirements
from pcr_conformance.session_report import write_reports


def md5(text: str) -> str:
    from allure_commons.utils import md5 as allure_md5

    return str(allure_md5(text))


def kit_tests(kit: Kit | None, state: PcrState) -> dict[str, list[str]]:
    """{node id: verified IDs} of the session's tests that `kit` selects (the collection's rule: a test belongs
    to a kit when a requirement it verifies is selected). Without a kit (it could not be loaded): none."""
    if kit is None:
        return {}
    try:
        selected = kit.selected(requirements(state))
    except Exception:  # noqa: BLE001 - the requirement register is unreadable: the startup error says so
        return {}
    return {node: ids for node, ids in state.verifies.items() if any(r in selected for r in ids)}


def kit_view(state: PcrState, kit_name: str, kit: Kit | None, folder: Path) -> PcrState:
    """The session state as a session of `kit` alone would have it: its tests, outcomes and deviations."""
    tests = kit_tests(kit, state)

    def only(mapping: Mapping[str, Any]) -> dict[str, Any]:
        return {n: v for n, v in mapping.items() if n in tests}

    slots = {s for n in tests for s in state.test_slots.get(n, ())}
    return dataclasses.replace(
        state, kit_name=kit_name, kit=kit, output=folder,
        alluredir=folder / "allure-results" if state.alluredir is not None else None,
        verifies=dict(tests), outcomes=only(state.outcomes), named=only(state.named), reasons=only(state.reasons),
        deviations=only(state.deviations), slots_used=slots or set(state.slots_used))


def write_kit_reports(state: PcrState, root: Path, *, junit: Path | None, results: Path | None,
                      junit_prefix: str | None = None) -> None:
    """Each kit's folder root/<kit>/ from the session's junit.xml and allure-results (either may be absent)."""
    session_cases = _read_junit(junit)
    index = _read_results(results) if results is not None else None
    titles = {k.title for k in state.kits.values()}  # the parentSuite the plugin gave (a test's own stays)

    def write_kit(name: str) -> None:
        kit = state.kits.get(name)
        folder = root / (kit.name if kit is not None else Path(name).stem)
        folder.mkdir(parents=True, exist_ok=True)
        view = kit_view(state, name, kit, folder)
        if index is not None:
            copy_results(index, folder / "allure-results", set(view.verifies), kit.title if kit else name, titles)
        write_reports(view)
        if session_cases is not None and junit is not None:
            write_junit(session_cases, folder / "junit.xml", set(view.verifies), junit_prefix)
        if (root / "certs").is_dir() and not (folder / "certs").exists():
            shutil.copytree(root / "certs", folder / "certs")

    # The kits' folders at the same time: most of the work is creating files and links (~7 000 files and
    # 23 000 links for the six kits of a full run), in the kernel, while the session's workers are done.
    with ThreadPoolExecutor(max_workers=max(1, min(len(state.kit_names), os.cpu_count() or 1))) as pool:
        for done in [pool.submit(write_kit, name) for name in state.kit_names]:
            done.result()


# ---- junit.xml ----------------------------------------------------------------------------------------------


def _read_junit(path: Path | None) -> ET.ElementTree | None:
    if path is None or not path.is_file():
        return None
    try:
        return ET.parse(path)
    except ET.ParseError:
        return None


def write_junit(tree: ET.ElementTree, path: Path, nodeids: Iterable[str], prefix: str | None = None) -> None:
    """The session's JUnit XML with only the test cases of `nodeids`, each suite's counts recomputed."""
    keys = {junit_support.testcase_key(n, prefix) for n in nodeids}
    root = copy.deepcopy(tree.getroot())
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        elapsed = 0.0
        for case in list(suite.findall("testcase")):
            if (case.get("classname", ""), case.get("name", "")) not in keys:
                suite.remove(case)
                continue
            counts["tests"] += 1
            elapsed += float(case.get("time", "0") or 0)
            for tag, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
                counts[key] += len(case.findall(tag))
        for key, value in counts.items():
            suite.set(key, str(value))
        suite.set("time", f"{elapsed:.3f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# ---- allure-results ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResultsIndex:
    folder: Path
    results: dict[str, tuple[Path, dict[str, Any]]]  # historyId -> (file, parsed result)
    containers: list[tuple[Path, dict[str, Any]]]
    other: list[Path]  # environment.properties, categories.json, ... (rewritten per kit by write_reports)


def _read_results(folder: Path) -> ResultsIndex | None:
    if not folder.is_dir():
        return None
    results: dict[str, tuple[Path, dict[str, Any]]] = {}
    containers: list[tuple[Path, dict[str, Any]]] = []
    other: list[Path] = []
    for path in folder.iterdir():
        name = path.name
        if name.endswith("-result.json") or name.endswith("-container.json"):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if name.endswith("-result.json"):
                results[str(doc.get("historyId", path.name))] = (path, doc)
            else:
                containers.append((path, doc))
        elif "-attachment" not in name:
            other.append(path)
    return ResultsIndex(folder, results, containers, other)


def copy_results(index: ResultsIndex, dest: Path, nodeids: set[str], kit_title: str,
                 titles: set[str] | None = None) -> None:
    """The kit's result files into dest (parentSuite = the kit's title where it was a kit's title, in `titles`),
    with their containers and attachments.

    allure-pytest names no node id in a result; historyId is md5(node id) (allure_support.ResultNames)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {md5(n) for n in nodeids}
    uuids: set[str] = set()
    files: set[str] = set()
    for history_id, (path, doc) in index.results.items():
        if history_id not in wanted:
            continue
        uuids.add(str(doc.get("uuid", "")))
        files.update(attachments_of(doc))
        labels = [{**lb, "value": kit_title} if lb.get("name") == "parentSuite" and (
            titles is None or lb.get("value") in titles) else lb for lb in doc.get("labels") or []]
        doc = {**doc, "labels": labels}
        (dest / path.name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    for path, doc in index.containers:
        children = set(doc.get("children") or ())
        if not children & uuids or not shows_something(doc):
            continue
        doc = {**doc, "children": sorted(children & uuids)}
        files.update(attachments_of(doc))
        (dest / path.name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    for name in files:
        _link(index.folder / name, dest / name)


def _link(source: Path, dest: Path) -> None:
    """A hard link (the session's results and every kit's share one copy), else a copy."""
    try:
        os.link(source, dest)
    except (FileExistsError, FileNotFoundError):  # linked already; an attachment the test never wrote
        return
    except OSError:
        shutil.copy2(source, dest)
