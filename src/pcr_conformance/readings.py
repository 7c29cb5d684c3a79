"""Two readings of one contract (docs/concepts.md#two-readings-of-the-contract), derived from ``specs/``.

- ``reference``: the specs as written, with everything our model fills in (``x-provenance: modelled``). It is
  what our reference register implements and the default of the embedded ``reference`` target.
- ``public``: only what official and third-party public material shows. It decides the verdict against any
  other register. Modelled requirements still run; their results are ``informative``.

What is derived here (and cached), nothing copied into a table:

- a requirement is public when its ``provenance`` (specs/requirements.yaml) is official or third-party;
- an error code is public when its ``provenance`` (specs/errors.yaml) is;
- the public reading of a *response* schema: a member required by a modelled object, or marked
  ``x-provenance: modelled`` / ``x-required-provenance: modelled`` itself, is optional; objects tolerate
  members we do not know (no ``additionalProperties: false``) unless ``x-closed`` names public evidence;
  a modelled node's ``format``, ``pattern``, ``enum`` and ``const`` do not decide, nor do the literals an
  enum lists in ``x-modelled-values``; a node with ``x-public-reading`` is replaced by that schema (the
  extract's dates: a date or an offset date-time).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pcr_conformance import specs

READINGS = ("public", "reference")
PUBLIC_PROVENANCE = ("official", "third-party")
MODELLED = "modelled"
# Keywords that state a modelled value; under the public reading they do not decide.
_VALUE_KEYWORDS = ("format", "pattern", "enum", "const")


def check_reading(reading: str) -> str:
    if reading not in READINGS:
        raise ValueError(f"unknown contract reading {reading!r}; use one of {READINGS}")
    return reading


@functools.cache
def requirement_provenance() -> dict[str, str]:
    """{requirement ID: provenance} of specs/requirements.yaml."""
    return {str(r["id"]): str(r.get("provenance") or MODELLED) for r in specs.load_requirements()}


def is_public_requirement(rid: str) -> bool:
    """Official or third-party. An ID the register does not know is not modelled by us: treated as public."""
    return requirement_provenance().get(rid, "official") in PUBLIC_PROVENANCE


def decides(rid: str, reading: str) -> bool:
    """Whether a requirement can decide the verdict under `reading` (the kit's levels still apply)."""
    return reading == "reference" or is_public_requirement(rid)


@functools.cache
def error_code_provenance() -> dict[str, str]:
    return {code: str(e.get("provenance") or MODELLED) for code, e in specs.load_errors().items()}


def is_public_code(code: str) -> bool:
    """The error code itself is public (official or third-party: D02, D21, D30, D31, D40, E20, E21)."""
    return error_code_provenance().get(code) in PUBLIC_PROVENANCE


# ---- the public reading of a response schema ----------------------------------------------------------------


def public_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The public reading of a standalone response schema (specs.schema_for_response): a new document."""
    out = copy.deepcopy(schema)
    components = out.get("components", {})
    for name, node in list(components.get("schemas", {}).items()):
        components["schemas"][name] = _public_node(node, node.get("x-provenance", MODELLED))
    body = {k: v for k, v in out.items() if k not in ("components", "$schema")}
    derived = _public_node(body, out.get("x-provenance", MODELLED))
    derived["$schema"] = out.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    derived["components"] = components
    return derived


def _public_node(node: Any, inherited: str) -> Any:
    if isinstance(node, list):
        return [_public_node(n, inherited) for n in node]
    if not isinstance(node, dict):
        return node
    if "x-public-reading" in node:
        return copy.deepcopy(node["x-public-reading"])
    prov = str(node.get("x-provenance", inherited))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _VALUE_KEYWORDS and prov == MODELLED:
            continue
        if key == "enum" and node.get("x-modelled-values"):
            continue  # another register may use another literal where ours is modelled
        if key in ("additionalProperties", "unevaluatedProperties") and value is False \
                and node.get("x-closed") not in PUBLIC_PROVENANCE:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {m: _public_node(v, _member_provenance(v, prov)) for m, v in value.items()}
        elif key == "required" and isinstance(value, list):
            props = node.get("properties") or {}
            out[key] = [m for m in value if _required_publicly(props.get(m), prov)]
        elif isinstance(value, (dict, list)) and not key.startswith("x-"):
            out[key] = _public_node(value, prov)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _member_provenance(member: Any, owner: str) -> str:
    if isinstance(member, dict) and "x-provenance" in member:
        return str(member["x-provenance"])
    return owner


def _required_publicly(member: Any, owner: str) -> bool:
    """A required member stays required when neither the member nor its owner is modelled."""
    if isinstance(member, dict):
        if member.get("x-required-provenance") == MODELLED:
            return False
        if "x-provenance" in member:
            return member["x-provenance"] in PUBLIC_PROVENANCE
    return owner in PUBLIC_PROVENANCE


@functools.lru_cache(maxsize=256)
def _response_schema(operation: str, status: str, reading: str, folder: str) -> dict[str, Any] | None:
    schema = specs.schema_for_response(operation, status)
    if schema is None or reading == "reference":
        return schema
    return public_schema(schema)


def schema_for_response(operation: str, status: int | str, reading: str) -> dict[str, Any] | None:
    """The response schema of `operation` and `status` under `reading` (None: the status is not documented).
    Cached per spec folder; treat the result as read-only."""
    return _response_schema(operation, str(status), check_reading(reading), str(specs.specs_dir()))


def body_findings(operation: str, status: int | str, body: Any) -> tuple[list[str], list[str]]:
    """(what the public reading finds, what only the reference reading adds) for one answer's body."""
    public_schema_ = schema_for_response(operation, status, "public")
    if public_schema_ is None:
        return [], []
    public = specs.validate(public_schema_, body)
    reference = specs.validate(schema_for_response(operation, status, "reference") or {}, body)
    return public, [p for p in reference if p not in public]


# ---- which members of an answer are modelled ------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _modelled_paths(operation: str, status: str, folder: str) -> frozenset[tuple[str, ...]]:
    schema = specs.schema_for_response(operation, status)
    found: set[tuple[str, ...]] = set()
    if schema is not None:
        _walk_members(schema, schema, str(schema.get("x-provenance", MODELLED)), (), found, 0)
    return frozenset(found)


def _walk_members(doc: dict[str, Any], node: Any, owner: str, path: tuple[str, ...], found: set[tuple[str, ...]],
                  depth: int) -> None:
    if depth > 12 or not isinstance(node, dict):
        return
    target = specs.resolve(doc, node)
    prov = str(target.get("x-provenance", owner)) if isinstance(target, dict) else owner
    if not isinstance(target, dict):
        return
    if isinstance(target.get("items"), dict):
        _walk_members(doc, target["items"], prov, path, found, depth + 1)
    for name, member in (target.get("properties") or {}).items():
        mine = _member_provenance(member, prov)
        if mine == MODELLED:
            found.add((*path, name))
        else:
            _walk_members(doc, member, mine, (*path, name), found, depth + 1)


def modelled_paths(operation: str, status: int | str) -> frozenset[tuple[str, ...]]:
    """The member paths (names from the body's root, array items transparent) of an operation's answer that only
    our model states: marked modelled, or inside a modelled object. A test expecting one of them checks it as
    modelled (suite.modelled_value), not as the public requirement it verifies."""
    return _modelled_paths(operation, str(status), str(specs.specs_dir()))


def split_expected(expected: Any, modelled: frozenset[tuple[str, ...]], path: tuple[str, ...] = ()
                   ) -> tuple[Any, Any]:
    """(the public part, the modelled part) of an expected answer subset (mappings split by member; a list or
    value stays whole). Either part is None when empty."""
    if not isinstance(expected, dict):
        return expected, None
    public: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for key, value in expected.items():
        here = (*path, key)
        if here in modelled:
            model[key] = value
            continue
        pub, mod = split_expected(value, modelled, here)
        if pub is not None:
            public[key] = pub
        if mod is not None:
            model[key] = mod
    return (public or None), (model or None)
