"""Validate requests and responses against the spec files themselves.

specs/*.yaml are loaded with yaml; the cross-file $refs (``components.yaml#/...``) are resolved by a small
bundler that copies every referenced file into the API document under ``x-bundled`` and rewrites the refs to
local ones. The bundled document is validated with jsonschema (Draft 2020-12, formats checked). When the
Rust validator (jsonschema_rs, a dependency of schemathesis) is importable it answers the common "valid"
case fast; the error items always come from jsonschema. No hand-copied model of the messages exists here.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from pcr_register.errors import item

try:  # pragma: no cover - optional accelerator
    import jsonschema_rs
except ImportError:  # pragma: no cover
    jsonschema_rs = None

log = logging.getLogger("pcr_register.validation")

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 8x faster start-up
BUNDLE_KEY = "x-bundled"
MAX_ERRORS = 50
REQUIREMENTS_FILE = "requirements.yaml"
ERRORS_FILE = "errors.yaml"  # the error codes as data: code -> http_status, description, ...
ROLE_KEY = "x-certificate-role"  # info.x-certificate-role of an API family's spec file


class SpecError(RuntimeError):
    """The spec files cannot be loaded or bundled."""


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(path: Any) -> str:
    return "".join("/" + _escape(str(p)) for p in path)


def _rewrite(node: Any, this_file: str, main: str, needed: set[str]) -> Any:
    """Copy node with every $ref made local to the bundle of `main`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                target, _, fragment = value.partition("#")
                target_file = Path(target).name if target else this_file
                if target_file == main:
                    out[key] = "#" + fragment
                else:
                    needed.add(target_file)
                    out[key] = f"#/{BUNDLE_KEY}/{_escape(target_file)}{fragment}"
            else:
                out[key] = _rewrite(value, this_file, main, needed)
        return out
    if isinstance(node, list):
        return [_rewrite(v, this_file, main, needed) for v in node]
    return node


def bundle(main: str, documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One self-contained document: `main` plus every file it references (transitively) under x-bundled."""
    needed: set[str] = set()
    result = _rewrite(documents[main], main, main, needed)
    bundled: dict[str, Any] = {}
    done: set[str] = set()
    while needed - done:
        name = sorted(needed - done)[0]
        done.add(name)
        if name not in documents:
            raise SpecError(f"{main}: $ref to {name}, which is not in the specs directory")
        bundled[name] = _rewrite(documents[name], name, main, needed)
    if bundled:
        result[BUNDLE_KEY] = bundled
    return result


def _collect_property_names(node: Any, names: set[str]) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            names.update(k for k in props if isinstance(k, str))
        for key in ("required",):
            value = node.get(key)
            if isinstance(value, list):
                names.update(v for v in value if isinstance(v, str))
        for value in node.values():
            _collect_property_names(value, names)
    elif isinstance(node, list):
        for value in node:
            _collect_property_names(value, names)


@dataclass
class _Schema:
    pointer: str
    bundle: dict[str, Any]
    _py: Draft202012Validator | None = None
    _rs: Any = None

    def py(self) -> Draft202012Validator:
        if self._py is None:
            root = dict(self.bundle)
            root["$ref"] = "#" + self.pointer
            root.pop("$schema", None)
            self._py = Draft202012Validator(root, format_checker=FormatChecker())
        return self._py

    def rs(self) -> Any:
        if self._rs is None and jsonschema_rs is not None:
            root = dict(self.bundle)
            root["$ref"] = "#" + self.pointer
            root.pop("$schema", None)
            try:
                self._rs = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
            except Exception as exc:  # the Rust validator is only an accelerator
                log.warning("jsonschema_rs cannot compile %s: %s", self.pointer, exc)
                self._rs = False
        return self._rs


_LOADED: dict[tuple[str, tuple[tuple[str, int, int], ...]], Specs] = {}


def load_specs(directory: Path) -> Specs:
    """Specs.load, kept while the folder's spec files are unchanged (names, sizes, modification times): a fork
    server (forkserver.py) parses them once for every register it forks."""
    files = sorted(directory.glob("*.yaml"))
    key = (str(directory.resolve()), tuple((p.name, *_size_and_mtime(p)) for p in files))
    if key not in _LOADED:
        _LOADED.clear()  # one contract per process at a time
        _LOADED[key] = Specs.load(directory)
    return _LOADED[key]


def _size_and_mtime(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@dataclass
class Specs:
    """The operations of every spec file: request and response schemas, and the member-name vocabulary."""

    directory: Path
    requests: dict[str, _Schema] = field(default_factory=dict)
    responses: dict[tuple[str, str], _Schema] = field(default_factory=dict)
    property_names: set[str] = field(default_factory=set)
    families: dict[str, str] = field(default_factory=dict)  # operationId -> spec file stem
    certificate_roles: dict[str, str] = field(default_factory=dict)  # spec file stem -> info.x-certificate-role
    error_codes: dict[str, ErrorCode] = field(default_factory=dict)  # errors.yaml, by code

    @property
    def renamed(self) -> dict[str, str]:
        """old code -> the code that replaces it in this contract version (errors.yaml `replaces`)."""
        return {old: entry.code for entry in self.error_codes.values() for old in entry.replaces}
    error_schema: _Schema | None = None  # components.yaml ErrorResponse: 4xx/5xx an operation does not list

    @classmethod
    def load(cls, directory: Path) -> Specs:
        specs = cls(directory)
        documents: dict[str, dict[str, Any]] = {}
        specs.error_codes = load_error_codes(directory / ERRORS_FILE)
        for path in sorted(directory.glob("*.yaml")):
            if path.name in (REQUIREMENTS_FILE, ERRORS_FILE):
                continue
            try:
                doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
            except yaml.YAMLError as exc:
                raise SpecError(f"{path}: {exc}") from exc
            if isinstance(doc, dict):
                documents[path.name] = doc
        if "ErrorResponse" in documents.get("components.yaml", {}).get("components", {}).get("schemas", {}):
            specs.error_schema = _Schema("/components/schemas/ErrorResponse", bundle("components.yaml", documents))
        for name, doc in documents.items():
            _collect_property_names(doc.get("components", {}), specs.property_names)
            _collect_property_names(doc.get("paths", {}), specs.property_names)
            if not doc.get("paths"):
                continue
            role = (doc.get("info") or {}).get(ROLE_KEY)
            if role is not None:
                if not isinstance(role, str) or not role:
                    raise SpecError(f"{directory / name}: info.{ROLE_KEY} must be a role name, not {role!r}")
                specs.certificate_roles[Path(name).stem] = role
            bundled = bundle(name, documents)
            for path_name, item_ in doc["paths"].items():
                post = (item_ or {}).get("post")
                if not post:
                    continue
                op = post.get("operationId") or path_name.strip("/")
                base = f"/paths/{_escape(path_name)}/post"
                specs.families[op] = Path(name).stem
                content = ((post.get("requestBody") or {}).get("content") or {}).get("application/json")
                if content and "schema" in content:
                    specs.requests[op] = _Schema(f"{base}/requestBody/content/application~1json/schema", bundled)
                for status, response in (post.get("responses") or {}).items():
                    pointer = f"{base}/responses/{_escape(str(status))}"
                    if isinstance(response, dict) and "$ref" in response:
                        pointer = _response_pointer(response["$ref"], name)
                    resolved = _resolve_local(response, bundled, name)
                    if ((resolved or {}).get("content") or {}).get("application/json", {}).get("schema"):
                        specs.responses[(op, str(status))] = _Schema(f"{pointer}/content/application~1json/schema", bundled)
        return specs

    # -- error codes ----------------------------------------------------------------------------------
    def describe(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in errors.yaml's description of every item that has no text of its own (in place)."""
        for one in items:
            # A contract version that renamed a code (errors.yaml `replaces`) is answered with its new code: the
            # rules keep raising the code they were written with.
            one["errorCode"] = self.renamed.get(one["errorCode"], one["errorCode"])
            if one.get("errorDescription") is None:
                one["errorDescription"] = self.error_codes[one["errorCode"]].description
        return items

    # -- requests -------------------------------------------------------------------------------------
    def has_request(self, operation: str) -> bool:
        return operation in self.requests

    def request_errors(self, operation: str, body: Any, *, ignore_unknown: bool = False,
                       ignore_missing: bool = False) -> list[dict[str, str]]:
        """Error items (D01 and the field-specific codes) for a request body; [] when valid."""
        schema = self.requests.get(operation)
        if schema is None:
            return []
        rs = schema.rs()
        if rs and rs.is_valid(body):
            return []
        # The errors are taken as they come and no further than MAX_ERRORS answer items: an array of 20 000
        # wrong items (ENV-015) took the register 1-2 s when every error was listed first.
        items: list[dict[str, str]] = []
        seen: set[tuple[str, str, str]] = set()
        any_error = False
        for error in schema.py().iter_errors(body):
            any_error = True
            for one in _items(error, body, ignore_unknown, ignore_missing):
                mark = (one["fieldName"], one["errorCode"], one["errorDescription"])
                if mark not in seen:
                    seen.add(mark)
                    items.append(one)
            if len(items) >= MAX_ERRORS:
                break
        if not any_error and rs:
            # The two validators disagree (a format both should check): trust the stricter one.
            return [item("D01", _pointer(getattr(e, "instance_path", [])), str(e.message)[:300])
                    for e in itertools.islice(rs.iter_errors(body), MAX_ERRORS)]
        return items[:MAX_ERRORS]

    # -- responses ------------------------------------------------------------------------------------
    def response_schema(self, operation: str, status: int) -> _Schema | None:
        """The schema of an answer: the operation's for the status, its default or NXX, else for an error the
        shared error object (H04/H05/H50 are not listed per operation); None when the spec has none."""
        schema = self.responses.get((operation, str(status))) or self.responses.get((operation, "default"))
        if schema is None:
            schema = self.responses.get((operation, f"{str(status)[0]}XX"))
        if schema is None and status >= 400:
            schema = self.error_schema
        return schema

    def response_errors(self, operation: str, status: int, body: Any) -> list[str]:
        schema = self.response_schema(operation, status)
        if schema is None:
            return [f"no response schema for {operation} {status}"]
        return [f"{_pointer(e.absolute_path)}: {e.message}"
                for e in itertools.islice(schema.py().iter_errors(body), MAX_ERRORS)]


@dataclass(frozen=True)
class ErrorCode:
    """One entry of errors.yaml (its header comment explains the fields)."""

    code: str
    http_status: int | None  # None: the code appears only in a report's result or as an extract notice
    in_report: bool
    notice: bool
    description: str  # the errorDescription the register sends
    provenance: str = "modelled"  # of the code itself: official | third-party | modelled
    replaces: tuple[str, ...] = ()  # the codes of an earlier contract version this one renames


def load_error_codes(path: Path) -> dict[str, ErrorCode]:
    """errors.yaml by code; SpecError when the file is missing or an entry lacks what the register needs."""
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: {exc}") from exc
    entries = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise SpecError(f"{path}: expected a list under 'errors'")
    codes: dict[str, ErrorCode] = {}
    for i, entry in enumerate(entries):
        code = entry.get("code") if isinstance(entry, dict) else None
        if not isinstance(code, str) or not code:
            raise SpecError(f"{path}: errors[{i}] has no code")
        if code in codes:
            raise SpecError(f"{path}: {code} is listed twice")
        description, status = entry.get("description"), entry.get("http_status")
        if not isinstance(description, str) or not description.strip():
            raise SpecError(f"{path}: {code} has no description")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599):
            raise SpecError(f"{path}: {code} has http_status {status!r}, not an error status or null")
        codes[code] = ErrorCode(code=code, http_status=status, in_report=bool(entry.get("in_report")),
                                notice=bool(entry.get("notice")), description=description,
                                provenance=str(entry.get("provenance") or "modelled"),
                                replaces=tuple(str(c) for c in entry.get("replaces") or ()))
    return codes


def _response_pointer(ref: str, this_file: str) -> str:
    target, _, fragment = ref.partition("#")
    target_file = Path(target).name if target else this_file
    if target_file == this_file:
        return fragment
    return f"/{BUNDLE_KEY}/{_escape(target_file)}{fragment}"


def _resolve_local(node: Any, bundled: dict[str, Any], this_file: str) -> Any:
    """Follow a $ref of a response object (components/responses) inside the bundle."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 10:
        pointer = _response_pointer(node["$ref"], this_file)
        node = bundled
        for token in pointer.strip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        seen += 1
    return node


# -- error items ---------------------------------------------------------------------------------------

_UNKNOWN = {"additionalProperties", "unevaluatedProperties"}


def _leaf(error: ValidationError) -> ValidationError:
    while error.context:
        error = best_match(error.context)
    return error


def _code_for(path: list[Any], keyword: str, body: Any) -> str:
    """The error code of one schema error: D01, or the identifier / field specific code."""
    last = str(path[-1]) if path else ""
    if "legalBasis" in (str(p) for p in path):
        return "D70"  # AUT-003
    if last in ("idCode", "businessId", "borrowerBusinessId") and keyword in ("pattern", "format", "minLength", "maxLength"):
        parent = body
        for p in path[:-1]:
            try:
                parent = parent[p]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        id_type = parent.get("idCodeType") if isinstance(parent, dict) else None
        if last != "idCode" or id_type in ("BusinessId",):
            return "D05"  # IDN-003
        if id_type == "ForeignBusinessId":
            return "D01"
        return "D04"  # IDN-001
    return "D01"


def _items(error: ValidationError, body: Any, ignore_unknown: bool, ignore_missing: bool = False) -> list[dict[str, str]]:
    error = _leaf(error)
    path = list(error.absolute_path)
    keyword = str(error.validator)
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        if ignore_missing and path:  # fault accept_missing_members (ENV-017): below the envelope only
            return []
        missing = [n for n in error.validator_value if n not in instance]
        out = []
        for name in missing:
            code = "D01"
            if name == "countryCode" and path and path[-1] == "owner":
                code = "D40"  # IDN-004
            elif name == "legalBasis":
                code = "D70"  # AUT-003
            out.append(item(code, _pointer([*path, name]), f"'{name}' is a required property"))
        return out
    if keyword in _UNKNOWN and isinstance(instance, dict):
        if ignore_unknown:  # fault accept_unknown_members (ENV-010)
            return []
        known = set((error.schema or {}).get("properties", {}) or {})
        parent_schema = error.schema if isinstance(error.schema, dict) else {}
        known |= set(parent_schema.get("properties", {}) or {})
        extras = [k for k in instance if k not in known] or list(instance)
        return [item("D01", _pointer([*path, k]), f"Unknown member '{k}'.") for k in extras]
    code = _code_for(path, keyword, body)
    if code != "D01":  # a field-specific code: its own text (errors.yaml), not the schema message
        return [item(code, _pointer(path))]
    description = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return [item(code, _pointer(path), description)]
