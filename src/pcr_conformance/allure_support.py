"""Allure mapping of docs/concepts.md#allure-mapping: labels, attachments, categories and environment.properties.

allure-pytest reads labels from `allure_label` markers when the test ends, so the plugin adds them as
markers at collection; it writes neither environment.properties nor categories.json, so we do.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from allure_commons import hookimpl as allure_hookimpl

from pcr_conformance import catalogue, specs, versions
from pcr_conformance.calllog import CallLog
from pcr_conformance.kits import Kit, Req

if TYPE_CHECKING:
    from pcr_conformance.target import Target

SEVERITY = {"must": "critical", "should": "normal", "may": "minor"}
_LEVEL_RANK = {"must": 0, "should": 1, "may": 2}

# Allure categories: the first match wins, so the specific ones come first. Regexes are written to work
# both as Java full matches (Allure 2) and JavaScript searches (Allure 3): `[\s\S]*` instead of DOTALL.
# allure-pytest prefixes the message with the exception type ("AssertionError: RPT-005 ...").
_ID = r"(?:[A-Za-z_.]+: )?"
CATEGORIES: list[dict[str, Any]] = [
    {"name": "Known deviation", "matchedStatuses": ["skipped"],
     "messageRegex": r"[\s\S]*(?:XFAIL|known deviation)[\s\S]*"},
    {"name": "Not claimed", "matchedStatuses": ["skipped"], "messageRegex": r"[\s\S]*not claimed[\s\S]*"},
    {"name": "Harness or infrastructure", "matchedStatuses": ["broken"]},
    {"name": "Server error", "matchedStatuses": ["failed"],
     "messageRegex": _ID + r"[A-Z]{3}-\d{3}[\s\S]*(?:HTTP 5\d\d|status 5\d\d)[\s\S]*"},
    {"name": "Security violation", "matchedStatuses": ["failed"], "messageRegex": _ID + r"SEC-\d{3}[\s\S]*"},
    {"name": "Contract violation (schema)", "matchedStatuses": ["failed"],
     "messageRegex": r"(?:" + _ID + r"ENV-014[\s\S]*)|(?:[\s\S]*(?:[Ss]chema|Undocumented|undocumented)[\s\S]*)"},
    {"name": "Business-rule violation", "matchedStatuses": ["failed"],
     "messageRegex": _ID + r"[A-Z]{3}-\d{3}[\s\S]*"},
]


def stable_id(nodeid: str) -> str:
    """A stable Allure id: the first 12 hex characters of sha1(node id)."""
    return hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:12]


def _existing(item: pytest.Item, label_type: str) -> bool:
    return any(m.kwargs.get("label_type") == label_type for m in item.iter_markers("allure_label"))


def api_of(item: pytest.Item, reqs: Iterable[Req]) -> str:
    """The epic: the requirement's API, or for cross-API requirements the suite folder naming one."""
    families = catalogue.families()
    apis = [r.api for r in reqs if r.api in families]
    if apis:
        return apis[0]
    path = Path(str(item.path))
    for part in [*path.parent.parts, path.stem.removeprefix("test_")]:  # suites/fuzz/test_voluntary_ban.py too
        if part.replace("_", "-") in families:
            return part.replace("_", "-")
    return "all"


def subject_of(item: pytest.Item) -> str:
    """The feature: the test module's subject (test_add_loans.py -> add loans, test_tls.py -> tls)."""
    stem = Path(str(item.path)).stem
    return stem.removeprefix("test_").replace("_", " ") or stem


def corpus_case(item: pytest.Item) -> tuple[str, str] | None:
    """(API family, operationId) of a data-driven case (a test parametrized with `operation` and `api`)."""
    params = getattr(getattr(item, "callspec", None), "params", None) or {}
    operation, api = params.get("operation"), params.get("api")
    if isinstance(operation, str) and isinstance(api, str):
        return api, operation
    return None


def allure_labels(item: pytest.Item, ids: list[str], reqs: Mapping[str, Req], kit: Kit) -> list[tuple[str, str]]:
    """(label type, value) pairs for a suite test; labels the test sets itself are kept. A corpus case is
    grouped by its operation: epic = its API family, feature and subSuite = its operationId."""
    verified = [reqs[i] for i in ids if i in reqs]
    case = corpus_case(item)
    labels: list[tuple[str, str]] = []
    if not _existing(item, "parentSuite"):
        labels.append(("parentSuite", kit.title))
    if not _existing(item, "epic"):
        labels.append(("epic", case[0] if case else api_of(item, verified)))
    if not _existing(item, "feature"):
        labels.append(("feature", case[1] if case else subject_of(item)))
    if case and not _existing(item, "subSuite"):
        labels.append(("subSuite", case[1]))
    for r in verified:
        labels.append(("story", f"{r.id} {r.title}"))
        labels.append(("requirement", r.id))
        if r.error_code:
            labels.append(("tag", r.error_code))
    if verified and not _existing(item, "severity"):
        top = min((r.level for r in verified), key=lambda lv: _LEVEL_RANK.get(lv, 9))
        labels.append(("severity", SEVERITY.get(top, "normal")))
    if not _existing(item, "as_id"):
        labels.append(("as_id", stable_id(item.nodeid)))
    return labels


def result_names(nodeid: str) -> tuple[str, list[str]]:
    """(fullName, titlePath) of a node id. allure-pytest splits the whole node id at "::", so a parameter id
    containing "::" (the corpus' `OrderData::missing-legal-basis`) gives `...test_corpus[OrderData#test_corpus`;
    here only the part before "[" is split, and the parameter id stays whole."""
    base, bracket, param = nodeid.partition("[")
    filepath, *classes, function = base.split("::") if "::" in base else (base, "")
    segments = filepath.split("/")
    package = ".".join([*segments[:-1], segments[-1].rsplit(".", 1)[0]])
    class_part = "".join(f".{c}" for c in classes)
    return f"{package}{class_part}#{function}{bracket}{param}", [*segments, *classes]


class ResultNames:
    """An allure_commons plugin that gives each suite test's result its fullName, testCaseId, historyId and
    titlePath from the node id, just before the result file is written (`report_result`, tryfirst).

    historyId is md5(node id): the node id is the test's stable ID (docs/concepts.md#outcomes), so the history
    survives changes to how a parameter is rendered (a corpus case's whole mapping is one)."""

    def __init__(self) -> None:
        self.by_id: dict[str, str] = {}  # as_id label -> node id

    def remember(self, item: pytest.Item) -> None:
        as_ids = [m.args[0] for m in item.iter_markers("allure_label")
                  if m.kwargs.get("label_type") == "as_id" and m.args]
        for as_id in as_ids or [stable_id(item.nodeid)]:
            self.by_id[str(as_id)] = item.nodeid

    @allure_hookimpl(tryfirst=True)
    def report_result(self, result: Any) -> None:
        as_id = next((lb.value for lb in getattr(result, "labels", []) if lb.name == "as_id"), None)
        nodeid = self.by_id.get(str(as_id)) if as_id is not None else None
        if nodeid is None:
            return
        from allure_commons.utils import md5

        full_name, title_path = result_names(nodeid)
        bad_sub_suite = "::".join(nodeid.split("::")[1:-1])  # what allure-pytest took for a class
        result.fullName = full_name
        result.testCaseId = md5(full_name)
        result.historyId = md5(nodeid)
        result.titlePath = title_path
        if "[" in bad_sub_suite:
            result.labels = [lb for lb in result.labels if not (lb.name == "subSuite" and lb.value == bad_sub_suite)]


def install_result_names(config: pytest.Config) -> ResultNames | None:
    """Register ResultNames with allure_commons for this session (None without --alluredir)."""
    if not config.getoption("allure_report_dir", None):
        return None
    import allure_commons

    names = ResultNames()
    allure_commons.plugin_manager.register(names)
    config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(names))
    return names


def attachments_of(node: Any) -> Iterable[str]:
    """The attachment file names a result or container refers to, its steps and fixtures included."""
    if isinstance(node, dict):
        for att in node.get("attachments") or ():
            if isinstance(att, dict) and att.get("source"):
                yield str(att["source"])
        for value in node.values():
            if isinstance(value, list | dict):
                yield from attachments_of(value)
    elif isinstance(node, list):
        for value in node:
            yield from attachments_of(value)


def shows_something(container: Mapping[str, Any]) -> bool:
    """Whether a fixture container has anything for a reader: a fixture that did not pass, or an attachment.
    Nearly every test has one only for pcr_clients' set-up and tear-down, passed, with nothing attached (issue 12:
    they were half the files a kit session wrote and each report generation read)."""
    fixtures = [*(container.get("befores") or ()), *(container.get("afters") or ())]
    return any(f.get("status") not in ("passed", None) for f in fixtures if isinstance(f, dict)) \
        or any(True for _ in attachments_of(fixtures))


def write_only_telling_containers(config: pytest.Config) -> None:
    """In a kit-folder session (`pcr-conformance run`), allure-pytest's file logger writes a fixture container
    only where shows_something: kit_reports drops the others from every kit's results anyway, and writing them
    cost a worker about a sixth of its time (issue 12). Called at session start, after allure-pytest registered
    its logger. The logger object stays the one registered, so allure-pytest's own clean-up still finds it."""
    import allure_commons
    import attr
    from allure_commons.logger import AllureFileLogger

    manager = allure_commons.plugin_manager
    for logger in [p for p in manager.get_plugins() if isinstance(p, AllureFileLogger)]:
        write_container = logger.report_container

        @allure_hookimpl
        def report_container(container: Any, _write: Any = write_container) -> None:
            if shows_something(attr.asdict(container, filter=lambda _, v: v or v is False)):
                _write(container)

        name = manager.get_name(logger)
        manager.unregister(logger)
        # pluggy reads a hook implementation off the object when it is registered: the instance attribute
        # shadows the class's method from the next registration on.
        logger.report_container = report_container
        manager.register(logger, name)


def dynamic_parameters(item: pytest.Item) -> None:
    """Give a parametrized test its "operation" parameter, so Allure history keeps operations apart."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return
    params = callspec.params
    value = params.get("operation") or params.get("operation_id")
    if value is None:
        return
    import allure

    allure.dynamic.parameter("operation", str(getattr(value, "label", value)))


def attach_calls(log: CallLog, *, mask: bool) -> None:
    """One text attachment per call (Call.render: request, response, curl), numbered in order: together they
    are the test's call sequence."""
    import allure

    for i, call in enumerate(log.calls, 1):
        allure.attach(call.render(mask), name=call.attachment_name(i), attachment_type=allure.attachment_type.TEXT)


_INFORMATIVE = pytest.StashKey[list[str]]()


def remember_informative(item: pytest.Item, report: pytest.TestReport) -> None:
    """Keep a phase's informative outcome and findings (outcomes.py) for attach_informative."""
    lines = item.stash.setdefault(_INFORMATIVE, [])
    if getattr(report, "pcr_outcome", None) == "informative":
        lines.append(f"informative (modelled requirement, not deciding): {getattr(report, 'pcr_reason', '')}")
    lines.extend(f"informative finding: {f['message']}" for f in getattr(report, "pcr_findings", []) or [])
    lines.extend(f"observed {o['key']} = {o['value']}" for o in getattr(report, "pcr_observed", []) or [])


def attach_informative(item: pytest.Item) -> None:
    """In the test's Allure result: tag `informative` and one attachment listing the informative findings and
    the implementation-defined values the test observed (called at teardown, while the result is open)."""
    lines = item.stash.get(_INFORMATIVE, None)
    if not lines:
        return
    import allure

    if any(ln.startswith("informative") for ln in lines):
        allure.dynamic.tag("informative")
    allure.attach("\n".join(lines), name="informative findings and observed values",
                  attachment_type=allure.attachment_type.TEXT)


def suite_version() -> str:
    try:
        return importlib.metadata.version("pcr-conformance")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# sha256 of a spec file -> its version: parsed once per content (the self-test's ~140 runs, forks of one
# process that read it first, report the same files).
_SPEC_VERSIONS: dict[str, str] = {}


def spec_files() -> dict[str, dict[str, str]]:
    """{file name: {version, sha256}} of specs/*.yaml (the contract the run was judged against)."""
    out: dict[str, dict[str, str]] = {}
    for p in sorted(specs.specs_dir().glob("*.yaml")):
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest not in _SPEC_VERSIONS:
            _SPEC_VERSIONS[digest] = _spec_version(data)
        out[p.name] = {"version": _SPEC_VERSIONS[digest], "sha256": digest}
    return out


def _spec_version(data: bytes) -> str:
    try:
        import yaml

        doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe
        if isinstance(doc, dict):
            return str((doc.get("info") or {}).get("version", "") or doc.get("version", "") or "")
    except Exception:  # noqa: BLE001 - a broken spec must not stop the report; its hash still shows
        return "unreadable"
    return ""


def environment_properties(values: Mapping[str, str]) -> str:
    """Java properties text (Allure's environment.properties)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:")

    return "".join(f"{esc(k)}={esc(str(v))}\n" for k, v in values.items())


def environment_values(*, target: Target | None, target_name: str, kit: str, profile: str, seed: str,
                       run_id: str, specs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    values = {"target": target_name, "kit": kit, "profile": profile, "seed": seed, "run_id": run_id,
              "suite_version": suite_version(), "contract_version": versions.current_name() or "unnamed"}
    if target is not None:
        values["target.environment"] = target.environment
        values["target.embedded"] = str(target.embedded).lower()
        for fam, url in sorted(target.base_urls.items()):
            values[f"base_url.{fam}"] = url
    for name, info in specs.items():
        values[f"spec.{name}.version"] = info["version"]
        values[f"spec.{name}.sha256"] = info["sha256"]
    return values
