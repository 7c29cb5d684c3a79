"""The validator's view of specs/: member names (ENV-011), operation names and inference, and the request
schema's verdict mapped to problems (pointer, requirement, D01, a fix).

`infer_operation` is derived from the operation catalogue (the request members each operation's schema
defines), not from a list of operation names.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import catalogue
from pcr_conformance.validate_model import Problem, ValidationInputError, pointer, walk

# ---- member names (ENV-011) ---------------------------------------------------------------------------


def canonicalize(value: Any, names: Mapping[str, str]) -> tuple[Any, dict[str, str]]:
    """Map member names case-insensitively to the spec's names (ENV-011).

    `names` maps lower-cased names to canonical ones. Returns the canonical value and a map from canonical
    JSON pointers to the pointers as written in the file (for messages that quote the file's own spelling).
    Members the spec does not know keep their spelling (the schema then reports them, ENV-010).
    """
    pointers: dict[str, str] = {}

    def walk(v: Any, canon: str, orig: str) -> Any:
        pointers[canon] = orig
        if isinstance(v, Mapping):
            out = {}
            for k, item in v.items():
                name = names.get(k.lower(), k) if isinstance(k, str) else k
                if name in out:  # two spellings of one member: keep both visible to the schema
                    name = k
                out[name] = walk(item, canon + pointer(name), orig + pointer(k))
            return out
        if isinstance(v, list):
            return [walk(item, canon + pointer(i), orig + pointer(i)) for i, item in enumerate(v)]
        return v

    return walk(value, "", ""), pointers


def original_pointer(canonical: str, pointers: Mapping[str, str]) -> str:
    """The file's own spelling of a canonical pointer (its longest known prefix, rest unchanged)."""
    probe = canonical
    while True:
        if probe in pointers:
            return pointers[probe] + canonical[len(probe):]
        if not probe:
            return canonical
        probe = probe[: probe.rfind("/")]


# ---- operation inference ------------------------------------------------------------------------------


_NOT_AN_OBJECT = ("the body is not a JSON object; a request body is {\"targetEnvironment\": ..., "
                  "\"owner\": ..., ...}")


@dataclasses.dataclass(frozen=True)
class _Nested:
    """The object schema one level below a top-level request member (an array's items, allOf merged)."""

    properties: dict[str, tuple[Mapping[str, Any], ...]]  # member -> its (resolved) schemas
    required: frozenset[str]
    closed: bool  # additionalProperties false

    def allowed(self, name: str) -> frozenset[Any] | None:
        """The values the schema allows for a member (const/enum), None when it does not restrict them."""
        values: frozenset[Any] | None = None
        for schema in self.properties.get(name, ()):
            own = [schema["const"]] if "const" in schema else schema.get("enum")
            if isinstance(own, list) and all(isinstance(v, str | int | bool) for v in own):
                values = frozenset(own) if values is None else values & frozenset(own)
        return values

    def signature(self, name: str) -> tuple[bool, bool, frozenset[Any] | None]:
        return name in self.properties, name in self.required, self.allowed(name)

    def violations(self, value: Mapping[str, Any]) -> int:
        """How many of a nested object's members (or missing members) this schema rejects at its own level."""
        count = sum(1 for name in self.required if name not in value)
        for name, member in value.items():
            if name not in self.properties:
                count += self.closed
                continue
            allowed = self.allowed(name)
            count += allowed is not None and (not isinstance(member, str | int | bool) or member not in allowed)
        return count


@functools.cache
def _nested(operation: str, member: str) -> _Nested:
    specs = _specs()
    root = specs.schema_for_request(operation)
    node = specs.resolve(root, specs.resolve(root, root).get("properties", {}).get(member, {}))
    if node.get("type") == "array":
        node = specs.resolve(root, node.get("items", {}))
    parts = [node, *(specs.resolve(root, s) for s in node.get("allOf", []))]
    properties: dict[str, list[Mapping[str, Any]]] = {}
    for part in parts:
        for name, schema in part.get("properties", {}).items():
            properties.setdefault(name, []).append(specs.resolve(root, schema))
    return _Nested({k: tuple(v) for k, v in properties.items()},
                   frozenset(r for part in parts for r in part.get("required", [])),
                   any(part.get("additionalProperties") is False for part in parts))


def _nested_objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects one level below a top-level member: the object itself, or an array's object items."""
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _best(scores: Mapping[str, int], *, low: bool) -> list[str]:
    if not scores:
        return []
    best = (min if low else max)(scores.values())
    return [op for op, score in scores.items() if score == best]


def _cannot_tell(body: Mapping[str, Any]) -> ValidationInputError:
    example = next(iter(catalogue.submit_operations()), "AddLoans")
    return ValidationInputError("cannot tell the operation from the members "
                                f"{sorted(body)}; give it with --operation (e.g. --operation {example})")


def infer_operation(body: Any) -> str:
    """The operation a canonical body is for, from its members; ValidationInputError when it cannot tell.

    Derived from the operation catalogue: the operations whose request defines the body's top-level members
    are the candidates. Several candidates (AddLoans and UpdateLoans share ``loans``) are told apart by the
    schema one level down: the one that rejects fewer of the nested members and values wins; when they tie, a
    member whose allowed values differ between them decides: absent, it picks the operation that pins it
    to one value (AddLoans' reportType is NewReport); present with a value both allow, the body is
    ambiguous. A body with no known top-level member (the flat extract form) goes to the operation whose
    nested request defines most of its members.
    """
    if not isinstance(body, Mapping):
        raise ValidationInputError(_NOT_AN_OBJECT)
    ops = catalogue.operations()
    given = [m for m in body if m not in catalogue.ENVELOPE_MEMBERS]
    scores = {op.id: sum(m in op.members for m in given) for op in ops.values()}
    candidates = [op for op in _best(scores, low=False) if scores[op] > 0]
    if not candidates:
        return _by_nested_members(body, given)
    if len(candidates) == 1:
        return candidates[0]
    shared = [m for m in given if all(m in ops[op].members for op in candidates)]
    objects = {m: _nested_objects(body[m]) for m in shared}
    fits = {op: sum(_nested(op, m).violations(o) for m in shared for o in objects[m]) for op in candidates}
    tied = _best(fits, low=True)
    if len(tied) == 1:
        return tied[0]
    for member in shared:
        nested = {op: _nested(op, member) for op in tied}
        names = sorted({n for s in nested.values() for n in (*s.properties, *s.required)})
        deciding = [n for n in names if len({s.signature(n) for s in nested.values()}) > 1]
        if not deciding:
            continue
        carried = [n for n in deciding if any(n in o for o in objects[member])]
        if carried:
            name = carried[0]
            values = sorted({str(o[name]) for o in objects[member] if name in o})
            raise ValidationInputError(
                f"{member} with {name} {'/'.join(values)} may be {' or '.join(tied)}; "
                f"say which with {' or '.join(f'--operation {op}' for op in tied)}")
        pinned = [op for op in tied if all(len(nested[op].allowed(n) or ()) == 1 for n in deciding)]
        if len(pinned) == 1:
            return pinned[0]
        raise _cannot_tell(body)
    raise ValidationInputError(f"a body with {' and '.join(shared)} may be {' or '.join(tied)}; "
                               "say which with --operation")


def _by_nested_members(body: Mapping[str, Any], given: list[str]) -> str:
    """The operation whose nested request objects define most of the body's stray top-level members."""
    scores = {}
    for op in catalogue.operations().values():
        defined = {n for m in op.members for n in _nested(op.id, m).properties}
        scores[op.id] = sum(m in defined for m in given)
    best = [op for op in _best(scores, low=False) if scores[op] > 0]
    if len(best) == 1:
        return best[0]
    raise _cannot_tell(body)


# ---- the request schema (specs/) ------------------------------------------------------------------------


def _specs() -> Any:
    """`pcr_conformance.specs`, imported when first needed (the rules alone work without the specs)."""
    from pcr_conformance import specs

    return specs


def known_operations() -> list[str]:
    return sorted(_specs().operation_index())


def require_operation(operation: str) -> str:
    """The specs' spelling of an operation name (letter case aside); ValidationInputError when unknown."""
    known = known_operations()
    by_lower = {op.lower(): op for op in known}
    if operation.lower() not in by_lower:
        raise ValidationInputError(f"unknown operation {operation!r}; the specs define {', '.join(known)}")
    return by_lower[operation.lower()]


def member_names() -> dict[str, str]:
    """lower-case -> canonical name of every member any spec schema defines (for ENV-011). Computed once per
    specs folder: the proxy validates every request it forwards (CLI-001) and must not re-walk the specs."""
    return dict(_member_names(str(_specs().specs_dir())))


@functools.lru_cache(maxsize=4)
def _member_names(specs_dir: str) -> dict[str, str]:
    specs = _specs()
    names: dict[str, str] = {}
    files = sorted(p.name for p in Path(specs_dir).glob("*.yaml") if not p.name.startswith("requirements"))
    for file_name in files:
        for path, value in walk(specs.load_raw(file_name)):
            if path and path[-1] == "properties" and isinstance(value, Mapping):
                for name in value:
                    if isinstance(name, str):
                        names.setdefault(name.lower(), name)
    return names


# Schema keyword -> the requirement it stands for, when nothing more specific applies.
_KEYWORD_REQUIREMENTS = {
    "required": "ENV-017",
    "type": "ENV-017",
    "additionalProperties": "ENV-010",
    "unevaluatedProperties": "ENV-010",
    "enum": "ENV-012",
    "const": "ENV-012",
    "minimum": "RPT-037",
    "exclusiveMinimum": "RPT-037",
}
_DATE_MEMBERS = ("Date", "date")


# The flat extract form (specs/extract.yaml): valid alone, refused beside request.
_FLAT_EXTRACT_MEMBERS = {"idCodeType", "idCode", "creditRegisterExtractPurpose"}


def schema_problem(error: Any) -> list[Problem]:
    """Problems from a jsonschema ValidationError: pointer, requirement, D01, the schema's words, a fix."""
    path = list(error.absolute_path)
    keyword = error.validator
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, Mapping):
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return [_unknown_member(path, name, error.instance) for name in extra]
    where = pointer(*path)
    last = str(path[-1]) if path else ""
    requirement = _KEYWORD_REQUIREMENTS.get(keyword, "")
    fix = "Make the member match the request schema of the operation in specs/ (type, format, required members)."
    message = error.message
    if keyword == "required":
        missing = next((m for m in error.validator_value if isinstance(error.instance, Mapping)
                        and m not in error.instance), "")
        where = pointer(*path, missing) if missing else where
        message = f"required member {missing or error.message} is missing"
        fix = f"Add {missing}; the operation requires it."
        last = missing
    elif keyword in ("enum", "const"):
        allowed = error.validator_value if keyword == "enum" else [error.validator_value]
        fix = f"Use one of {', '.join(map(str, allowed))} (enum values are case-sensitive)."
    elif keyword in ("minimum", "exclusiveMinimum"):
        fix = f"Amounts and counts are never negative: use a number of at least {error.validator_value}."
    elif keyword == "minItems" and path and path[-1] in catalogue.collections().values():
        requirement, fix = "RPT-040", "Send at least one report in the batch."
    if keyword in ("format", "pattern") and last.endswith(_DATE_MEMBERS):
        requirement, fix = "ENV-013", "Write dates as yyyy-MM-dd, e.g. 2026-03-31."
    if keyword == "pattern" and last == "currencyCode":
        requirement, fix = "RPT-037", "Use an ISO 4217 code in capitals, e.g. EUR."
    if "creditRegisterExtractPurpose" in map(str, path):
        requirement = "EXT-001"
        fix = "Give at least one known purpose, each once, e.g. [\"NewConsumerCredit\"]."
    if keyword == "not" and len(path) == 1 and last in _FLAT_EXTRACT_MEMBERS:  # a mix of the two extract forms
        requirement, message = "ENV-010", f"{last} at top level beside request"
        fix = (f"Remove the top-level {last}: send the subject either nested in \"request\": {{...}} or as the "
               "three members idCodeType, idCode, creditRegisterExtractPurpose at top level, not both.")
    if path[:1] == ["targetEnvironment"] or last == "targetEnvironment":
        requirement, fix = "ENV-002", 'Set "targetEnvironment" to "Test" or "Production".'
    elif path[:1] == ["owner"] or last == "owner":
        requirement = "ENV-004"
        fix = 'Send "owner": {"idCodeType": "BusinessId", "idCode": "NNNNNNN-C"} (the certificate\'s organisation).'
    return [Problem(where, requirement or "schema", "D01", f"schema: {message}", fix)]


def _unknown_member(path: list[Any], name: str, instance: Mapping[str, Any]) -> Problem:
    """ENV-010: an unknown member."""
    fix = (f"Remove {name} or correct its spelling; the register rejects unknown members "
           f"(member names may differ in letter case only).")
    return Problem(pointer(*path, name), "ENV-010", "D01", f"schema: unknown member {name}", fix)


def request_validator(operation: str) -> Any:
    """A jsonschema validator (2020-12, with formats) for the operation's request body, built once per specs
    folder and operation (the proxy validates every request it forwards, CLI-001)."""
    return _request_validator(str(_specs().specs_dir()), operation)


@functools.lru_cache(maxsize=64)
def _request_validator(specs_dir: str, operation: str) -> Any:
    import jsonschema

    schema = _specs().schema_for_request(operation)
    if hasattr(schema, "iter_errors"):  # the specs module already gave a validator
        return schema
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@functools.lru_cache(maxsize=64)
def _fast_validator(specs_dir: str, operation: str) -> Any:
    """The Rust validator (jsonschema_rs, a dependency of schemathesis) of the request schema, None when it is not
    importable or cannot compile the schema: it only says valid or not, fast; the problems always come from
    jsonschema."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - schemathesis brings it
        return None
    schema = _specs().schema_for_request(operation)
    if not isinstance(schema, Mapping):
        return None
    try:
        return jsonschema_rs.Draft202012Validator(dict(schema), validate_formats=True)
    except Exception:  # noqa: BLE001 - an accelerator only: jsonschema decides without it
        return None


def schema_problems(body: Any, operation: str) -> list[Problem]:
    """The request schema's verdict on a canonical body (D01 problems)."""
    fast = _fast_validator(str(_specs().specs_dir()), operation)
    if fast is not None and fast.is_valid(body):
        # Most requests are valid: the Rust validator says so >100x faster than jsonschema walks the schema (the
        # proxy validates every request it forwards, CLI-001). It is at least as strict on this contract's
        # formats and patterns (tests/test_validate_fast.py), so "valid" from it is jsonschema's "valid".
        return []
    validator = request_validator(operation)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    out: list[Problem] = []
    for error in errors:
        # oneOf/anyOf/if-then failures: report their most specific cause instead of the umbrella message.
        leaves = _leaf_errors(error)
        for leaf in leaves:
            out.extend(schema_problem(leaf))
    unique: dict[tuple[str, str], Problem] = {}  # one problem per member and requirement is enough
    for p in out:
        unique.setdefault((p.pointer, p.requirement), p)
    return list(unique.values())


def _leaf_errors(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    import jsonschema.exceptions

    best = jsonschema.exceptions.best_match(error.context)
    return _leaf_errors(best) if best is not None else [error]
