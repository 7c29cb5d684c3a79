"""Load the contract in ``specs/``: the OpenAPI files of the four API families and the requirement register.

The API files reference shared parts in ``components.yaml`` with relative refs such as
``components.yaml#/components/schemas/Owner``. :func:`load_spec` bundles a family's file into one
self-contained OpenAPI document: the components of ``components.yaml`` are copied into the document's own
``components`` (same names; a clash is an error) and every ``components.yaml#/...`` ref becomes ``#/...``.
The result can be given to openapi-core, schemathesis or jsonschema without a file resolver.

Dependencies: PyYAML and jsonschema only. ``pcr_register`` must not import this module (design rule: the
parts meet only at ``specs/`` and HTTP); it has its own loader.

Typical use::

    from pcr_conformance import specs
    family, path, op = specs.operation_index()["AddLoans"]
    errors = specs.validate(specs.schema_for_request("AddLoans"), body)
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

COMPONENTS_FILE = "components.yaml"
REQUIREMENTS_FILE = "requirements.yaml"
ERRORS_FILE = "errors.yaml"
_EXTERNAL_PREFIX = COMPONENTS_FILE + "#"
_COMPONENT_KINDS = ("schemas", "responses", "parameters", "examples", "requestBodies", "headers",
                    "securitySchemes", "links")

Operation = tuple[str, str, dict[str, Any]]


def specs_dir() -> Path:
    """The folder holding the spec files: ``$PCR_SPECS_DIR`` if set, else the checkout's ``specs/``, else the
    installed ``pcr_specs`` (pcr_conformance.resources)."""
    from pcr_conformance import resources

    return resources.specs_dir()


# libyaml's safe loader where PyYAML has it (the same documents, several times faster: the specs are read by
# every pytest session at start-up), else the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=32)
def _read_yaml(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when present)


def load_raw(file_name: str) -> dict[str, Any]:
    """One spec file as written (refs to components.yaml left as they are). A fresh copy on every call."""
    return copy.deepcopy(_read_yaml(str(specs_dir() / file_name)))


def _file_name(name: str) -> str:
    files = _family_files(str(specs_dir()))
    if name in files:
        return files[name]
    return name if name.endswith(".yaml") else name + ".yaml"


def _rewrite_refs(node: Any) -> Any:
    """Turn every ``components.yaml#/x`` ref into ``#/x`` (in place); returns the node."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_EXTERNAL_PREFIX):
            node["$ref"] = ref[len(COMPONENTS_FILE):]
        for value in node.values():
            _rewrite_refs(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value)
    return node


def _bundle(doc: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {})
    for kind in _COMPONENT_KINDS:
        for name, value in shared.get("components", {}).get(kind, {}).items():
            own = components.setdefault(kind, {})
            if name in own:
                # Allowed only when the document's entry just points at the shared one (securitySchemes
                # cannot be referenced from a security requirement in another file, so it is re-declared).
                if own[name] != {"$ref": f"{COMPONENTS_FILE}#/components/{kind}/{name}"}:
                    raise ValueError(f"component name clash with {COMPONENTS_FILE}: {kind}/{name}")
            own[name] = copy.deepcopy(value)
    return _rewrite_refs(doc)


@functools.lru_cache(maxsize=8)
def _bundled(file_name: str, folder: str) -> dict[str, Any]:
    doc = copy.deepcopy(_read_yaml(str(Path(folder) / file_name)))
    if file_name == COMPONENTS_FILE:
        return doc
    shared = _read_yaml(str(Path(folder) / COMPONENTS_FILE))
    return _bundle(doc, shared)


def load_spec(name: str) -> dict[str, Any]:
    """The bundled OpenAPI document of an API family ("reporting") or file ("reporting.yaml").

    External refs into components.yaml are resolved by copying the shared components into the document.
    Returns a fresh copy; the caller may change it.
    """
    return copy.deepcopy(_bundled(_file_name(name), str(specs_dir())))


def shared_spec(name: str) -> dict[str, Any]:
    """The bundled document of :func:`load_spec`, shared and NOT copied: the caller must not change it.

    For readers on a hot path (messages.completed runs for every built report): a deep copy of the reporting
    document costs about 30 ms, which made the 10 000-report batch test take minutes (issue 12)."""
    return _bundled(_file_name(name), str(specs_dir()))


@functools.lru_cache(maxsize=8)
def _family_files(folder: str) -> dict[str, str]:
    """``{family: file name}``: every OpenAPI document of the folder (a YAML file with ``openapi`` and
    ``paths``), the family being the file's stem; in file-name order."""
    found = {}
    for path in sorted(Path(folder).glob("*.yaml"), key=lambda p: p.stem):
        if path.name == COMPONENTS_FILE:
            continue
        doc = _read_yaml(str(path))
        if isinstance(doc, dict) and "openapi" in doc and "paths" in doc:
            found[path.stem] = path.name
    return found


def family_files() -> dict[str, str]:
    """``{API family: spec file name}`` of the spec folder, derived from the files present."""
    return dict(_family_files(str(specs_dir())))


def available_families() -> list[str]:
    """The API families whose spec file exists in :func:`specs_dir`."""
    return list(_family_files(str(specs_dir())))


def operation_index() -> dict[str, Operation]:
    """``{operationId: (api_family, path, operation)}`` over every spec file present (bundled operations)."""
    index: dict[str, Operation] = {}
    for family in available_families():
        doc = _bundled(_file_name(family), str(specs_dir()))
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                if method != "post" or not isinstance(operation, dict):
                    continue
                op_id = operation["operationId"]
                if op_id in index:
                    raise ValueError(f"operationId {op_id} appears twice")
                index[op_id] = (family, path, operation)
    return index


def _family_doc(op: str | dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    op_id = op if isinstance(op, str) else op["operationId"]
    family, _path, operation = operation_index()[op_id]
    return _bundled(_file_name(family), str(specs_dir())), operation


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` chains (``#/...``) of a bundled document until a non-ref node."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _standalone(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema (2020-12) that carries the document's components, so ``#/components/...`` refs resolve."""
    result = copy.deepcopy(schema)
    result["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    result["components"] = copy.deepcopy(doc.get("components", {}))
    return result


def schema_for_request(op: str | dict[str, Any]) -> dict[str, Any]:
    """Self-contained JSON Schema of an operation's application/json request body."""
    doc, operation = _family_doc(op)
    body = resolve(doc, operation["requestBody"])
    return _standalone(doc, body["content"]["application/json"]["schema"])


def schema_for_response(op: str | dict[str, Any], status: int | str) -> dict[str, Any] | None:
    """Self-contained JSON Schema of an operation's response body for a status code.

    Returns None when the status code is not documented for the operation.
    """
    doc, operation = _family_doc(op)
    response = operation.get("responses", {}).get(str(status))
    if response is None:
        return None
    response = resolve(doc, response)
    return _standalone(doc, response["content"]["application/json"]["schema"])


def documented_statuses(op: str | dict[str, Any]) -> list[str]:
    """The status codes documented for an operation, e.g. ``["202", "400", ...]``."""
    _doc, operation = _family_doc(op)
    return list(operation.get("responses", {}))


def _examples(doc: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, example in media.get("examples", {}).items():
        found[name] = copy.deepcopy(resolve(doc, example)["value"])
    if "example" in media:
        found["example"] = copy.deepcopy(media["example"])
    return found


def request_examples(op: str | dict[str, Any]) -> dict[str, Any]:
    """``{example name: request body}`` of an operation."""
    doc, operation = _family_doc(op)
    body = resolve(doc, operation["requestBody"])
    return _examples(doc, body["content"]["application/json"])


def response_examples(op: str | dict[str, Any], status: int | str) -> dict[str, Any]:
    """``{example name: response body}`` of an operation's documented response (empty when undocumented)."""
    doc, operation = _family_doc(op)
    response = operation.get("responses", {}).get(str(status))
    if response is None:
        return {}
    response = resolve(doc, response)
    return _examples(doc, response.get("content", {}).get("application/json", {}))


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A 2020-12 validator that also checks formats (date, date-time, uuid)."""
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate(schema: dict[str, Any], instance: Any) -> list[str]:
    """Messages of every violation (empty when valid), each prefixed with the JSON path of the member."""
    errors = sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors]


def family_files_of(folder: Path) -> dict[str, str]:
    """``{API family: spec file name}`` of any folder of contract files (another version's, for a diff)."""
    return dict(_family_files(str(folder)))


def bundled_of(folder: Path, file_name: str) -> dict[str, Any]:
    """The bundled OpenAPI document of a spec file of any folder of contract files (a fresh copy)."""
    return copy.deepcopy(_bundled(file_name, str(folder)))


def requirements_of(folder: Path) -> list[dict[str, Any]]:
    """The requirement register of any folder of contract files, in file order."""
    return copy.deepcopy(_read_yaml(str(Path(folder) / REQUIREMENTS_FILE))["requirements"])


def errors_of(folder: Path) -> dict[str, dict[str, Any]]:
    """The error codes of any folder of contract files, as ``{code: entry}``."""
    return {e["code"]: copy.deepcopy(e) for e in _read_yaml(str(Path(folder) / ERRORS_FILE))["errors"]}


def load_requirements() -> list[dict[str, Any]]:
    """The requirement register (specs/requirements.yaml) as a list of dicts, in file order."""
    return copy.deepcopy(_read_yaml(str(specs_dir() / REQUIREMENTS_FILE))["requirements"])


@functools.lru_cache(maxsize=8)
def _renamed(folder: str) -> dict[str, str]:
    entries = _read_yaml(str(Path(folder) / ERRORS_FILE))["errors"]
    return {str(old): entry["code"] for entry in entries for old in entry.get("replaces") or ()}


def code_in_force(code: str) -> str:
    """The code the contract in use gives a rule that an earlier version coded ``code`` (errors.yaml
    ``replaces``: 2027.1 renames D40 to D44); ``code`` itself when no version renamed it."""
    return _renamed(str(specs_dir())).get(code, code)


def load_errors() -> dict[str, dict[str, Any]]:
    """The error codes (specs/errors.yaml) as ``{code: entry}``, in file order; each entry keeps every field
    (``http_status``, ``in_report``, ``notice``, ``description``, ``meaning``, ``provenance``, ``source``)."""
    entries = _read_yaml(str(specs_dir() / ERRORS_FILE))["errors"]
    return {entry["code"]: copy.deepcopy(entry) for entry in entries}
