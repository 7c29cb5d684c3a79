"""What changes between two contract versions, and for whom (`pcr-conformance diff OLD NEW`).

Compares two folders of contract files (versions.build) operation by operation: operations, request and
response schemas member by member (added, removed, now required or optional, enum literals, type, format,
pattern, bounds), documented status codes, error codes (added, removed, renamed through errors.yaml
`replaces`, other HTTP status) and requirements (added, removed, changed). Each change is classified for both
sides of the contract:

- **client**: a stakeholder's system (lender, Kela, authority, credit information company). A request
  member that became required, a removed request member (unknown members are rejected, ENV-010), a removed
  response member, a new response enum literal (strict readers), a renamed error code break clients.
- **register**: an implementation of the register. A request member or enum literal it must now accept, a
  response member it must now send, a new operation, a new or changed requirement break registers.

A change touches requirements (those naming its operation, code or ID); a kit is affected when it selects
one of them and covers the operation's API family (kits.Kit.apis), so a change of a reporting operation
does not reach the authority kit through the envelope rules every operation shares.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import specs
from pcr_conformance.kits import Kit, Req, parse_requirements

BREAKING = "breaking"
COMPATIBLE = "compatible"
SIDES = ("client", "register")
# Schema keywords compared as one value: any difference is a change of that keyword for both sides.
_EXACT = ("type", "format", "pattern", "const", "additionalProperties")
# Bounds: (keyword, True when a larger value accepts more).
_BOUNDS = (("maxLength", True), ("minLength", False), ("maximum", True), ("minimum", False),
           ("maxItems", True), ("minItems", False))


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str  # e.g. "request member added", "operation added", "error code renamed"
    subject: str  # the operation, error code or requirement ID
    location: str  # where in the operation: "request /loanTerminations[]/termination/terminationReason"
    detail: str
    client: str  # BREAKING | COMPATIBLE
    register: str
    requirements: tuple[str, ...] = ()  # requirements the change touches (in either version)
    family: str = ""  # the operation's API family; "" for codes and requirements

    @property
    def breaking(self) -> bool:
        return BREAKING in (self.client, self.register)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Contract:
    """One version's files as the diff reads them."""

    operations: Mapping[str, tuple[str, dict[str, Any], dict[str, Any]]]  # op -> (family, operation, bundled doc)
    requirements: Mapping[str, dict[str, Any]]
    errors: Mapping[str, dict[str, Any]]


def load_contract(folder: Path) -> Contract:
    """The operations, requirements and error codes of a folder of contract files."""
    ops: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
    for family, file_name in specs.family_files_of(folder).items():
        doc = specs.bundled_of(folder, file_name)
        for item in (doc.get("paths") or {}).values():
            operation = item.get("post") if isinstance(item, dict) else None
            if isinstance(operation, dict) and operation.get("operationId"):
                ops[operation["operationId"]] = (family, operation, doc)
    reqs = {r["id"]: r for r in specs.requirements_of(folder)}
    return Contract(operations=ops, requirements=reqs, errors=specs.errors_of(folder))


# (client breaks, register breaks) per kind of schema change, by direction: the request is what the client
# sends and the register accepts; the response is what the register sends and the client reads.
_RULES: dict[tuple[str, str], tuple[bool, bool]] = {
    ("request", "member added (optional)"): (False, True),
    ("request", "member added (required)"): (True, True),
    ("request", "member removed"): (True, True),
    ("request", "member now required"): (True, True),
    ("request", "member now optional"): (False, True),
    ("request", "enum literal added"): (False, True),
    ("request", "enum literal removed"): (True, True),
    ("request", "constraint narrowed"): (True, True),
    ("request", "constraint widened"): (False, True),
    ("response", "member added (optional)"): (False, False),
    ("response", "member added (required)"): (False, True),
    ("response", "member removed"): (True, False),
    ("response", "member now required"): (False, True),
    ("response", "member now optional"): (True, False),
    ("response", "enum literal added"): (True, False),
    ("response", "enum literal removed"): (False, True),
    ("response", "constraint narrowed"): (False, True),
    ("response", "constraint widened"): (True, False),
}


class _SchemaDiff:
    """Walks one request or response schema of an operation in both versions."""

    def __init__(self, op: str, family: str, direction: str, old_doc: dict[str, Any], new_doc: dict[str, Any],
                 requirements: tuple[str, ...]) -> None:
        self.op, self.family, self.direction = op, family, direction
        self.old_doc, self.new_doc, self.requirements = old_doc, new_doc, requirements
        self.changes: list[Change] = []

    def add(self, kind: str, where: str, detail: str) -> None:
        client, register = _RULES[(self.direction, kind)]
        label = self.direction if not where else f"{self.direction} {where}"
        self.changes.append(Change(kind=f"{self.direction} {kind}", subject=self.op, location=label, detail=detail,
                                   client=BREAKING if client else COMPATIBLE,
                                   register=BREAKING if register else COMPATIBLE,
                                   requirements=self.requirements, family=self.family))

    def walk(self, old: Any, new: Any, where: str, seen: frozenset[tuple[int, int]] = frozenset()) -> None:
        old, new = specs.resolve(self.old_doc, old), specs.resolve(self.new_doc, new)
        if not isinstance(old, dict) or not isinstance(new, dict) or (id(old), id(new)) in seen:
            return
        seen = seen | {(id(old), id(new))}
        self._keywords(old, new, where)
        old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
        old_req, new_req = set(old.get("required") or ()), set(new.get("required") or ())
        for name in sorted(set(new_props) - set(old_props)):
            self.add("member added (required)" if name in new_req else "member added (optional)",
                     f"{where}/{name}", "a new required member" if name in new_req else "a new optional member")
        for name in sorted(set(old_props) - set(new_props)):
            self.add("member removed", f"{where}/{name}", "the member is no longer in the contract")
        for name in sorted(set(old_props) & set(new_props)):
            if name in new_req and name not in old_req:
                self.add("member now required", f"{where}/{name}", "the member became required")
            elif name in old_req and name not in new_req:
                self.add("member now optional", f"{where}/{name}", "the member became optional")
            self.walk(old_props[name], new_props[name], f"{where}/{name}", seen)
        if "items" in old and "items" in new:
            self.walk(old["items"], new["items"], f"{where}[]", seen)
        for combinator in ("anyOf", "oneOf", "allOf"):
            olds, news = old.get(combinator) or [], new.get(combinator) or []
            for i, (a, b) in enumerate(zip(olds, news, strict=False)):
                # allOf parts are one object together: their members are the object's own.
                self.walk(a, b, where if combinator == "allOf" else f"{where}<{combinator}[{i}]>", seen)
            if len(olds) != len(news):
                kind = "constraint widened" if len(news) > len(olds) and combinator != "allOf" else "constraint narrowed"
                self.add(kind, where or "/", f"{combinator}: {len(olds)} -> {len(news)} alternatives")

    def _keywords(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        at = where or "/"
        old_enum, new_enum = old.get("enum"), new.get("enum")
        if isinstance(old_enum, list) and isinstance(new_enum, list):
            for literal in [v for v in new_enum if v not in old_enum]:
                self.add("enum literal added", at, f"new literal {literal!r}")
            for literal in [v for v in old_enum if v not in new_enum]:
                self.add("enum literal removed", at, f"literal {literal!r} removed")
        for key in _EXACT:
            if old.get(key) != new.get(key) and (key in old or key in new):
                narrowed = key != "additionalProperties" or new.get(key) is False
                self.add("constraint narrowed" if narrowed else "constraint widened", at,
                         f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
        for key, larger_accepts_more in _BOUNDS:
            a, b = old.get(key), new.get(key)
            if a == b or not (isinstance(a, int | float) or isinstance(b, int | float)):
                continue
            if a is None or b is None:
                widened = b is None
            else:
                widened = (b > a) == larger_accepts_more
            self.add("constraint widened" if widened else "constraint narrowed", at, f"{key}: {a!r} -> {b!r}")


def _body_schema(doc: dict[str, Any], node: Any) -> Any:
    node = specs.resolve(doc, node) if node is not None else None
    if not isinstance(node, dict):
        return None
    return ((node.get("content") or {}).get("application/json") or {}).get("schema")


def _naming(contract: Contract, op: str) -> set[str]:
    return {rid for rid, r in contract.requirements.items() if op in (r.get("operations") or ())}


def operation_changes(old: Contract, new: Contract) -> list[Change]:
    changes: list[Change] = []
    for op in sorted(set(new.operations) - set(old.operations)):
        family = new.operations[op][0]
        changes.append(Change("operation added", op, "", f"a new operation of the {family} API", COMPATIBLE,
                              BREAKING, tuple(sorted(_naming(new, op))), family))
    for op in sorted(set(old.operations) - set(new.operations)):
        family = old.operations[op][0]
        changes.append(Change("operation removed", op, "", "the operation is no longer in the contract", BREAKING,
                              COMPATIBLE, tuple(sorted(_naming(old, op))), family))
    for op in sorted(set(old.operations) & set(new.operations)):
        (family, old_op, old_doc), (_f, new_op, new_doc) = old.operations[op], new.operations[op]
        reqs = tuple(sorted(_naming(old, op) | _naming(new, op)))
        request = _SchemaDiff(op, family, "request", old_doc, new_doc, reqs)
        request.walk(_body_schema(old_doc, old_op.get("requestBody")), _body_schema(new_doc, new_op.get("requestBody")),
                     "")
        changes += request.changes
        old_statuses, new_statuses = old_op.get("responses") or {}, new_op.get("responses") or {}
        for status in sorted(set(new_statuses) - set(old_statuses)):
            changes.append(Change("response status added", op, f"response {status}",
                                  f"the register may now answer {status}", BREAKING, COMPATIBLE, reqs, family))
        for status in sorted(set(old_statuses) - set(new_statuses)):
            changes.append(Change("response status removed", op, f"response {status}",
                                  f"{status} is no longer an answer of the operation", COMPATIBLE, BREAKING, reqs,
                                  family))
        for status in sorted(set(old_statuses) & set(new_statuses)):
            response = _SchemaDiff(op, family, "response", old_doc, new_doc, reqs)
            response.walk(_body_schema(old_doc, old_statuses[status]), _body_schema(new_doc, new_statuses[status]),
                          "")
            changes += [dataclasses.replace(c, location=c.location.replace("response", f"response {status}", 1))
                        for c in response.changes]
    return changes


def error_changes(old: Contract, new: Contract) -> list[Change]:
    changes: list[Change] = []

    def using(code: str) -> tuple[str, ...]:
        return tuple(sorted(rid for c in (old, new) for rid, r in c.requirements.items() if r.get("error_code") == code))

    renamed = {prev: code for code, e in new.errors.items() for prev in e.get("replaces") or () if prev in old.errors}
    for prev, code in sorted(renamed.items()):
        changes.append(Change("error code renamed", prev, "errors.yaml", f"{prev} is now {code}", BREAKING, BREAKING,
                              tuple(sorted(set(using(prev)) | set(using(code))))))
    for code in sorted(set(new.errors) - set(old.errors) - set(renamed.values())):
        changes.append(Change("error code added", code, "errors.yaml", str(new.errors[code].get("description", "")),
                              COMPATIBLE, BREAKING if using(code) else COMPATIBLE, using(code)))
    for code in sorted(set(old.errors) - set(new.errors) - set(renamed)):
        changes.append(Change("error code removed", code, "errors.yaml", "the code is no longer in the contract",
                              COMPATIBLE, BREAKING, using(code)))
    for code in sorted(set(old.errors) & set(new.errors)):
        a, b = old.errors[code].get("http_status"), new.errors[code].get("http_status")
        if a != b:
            changes.append(Change("error status changed", code, "errors.yaml", f"HTTP status {a} -> {b}", BREAKING,
                                  BREAKING, using(code)))
    return changes


# Requirement fields whose change makes an implementation of the register change (the rest is wording).
_DECIDING_FIELDS = ("level", "error_code", "operations", "actors", "api", "applies_when", "not_tested")


def requirement_changes(old: Contract, new: Contract) -> list[Change]:
    """Added, removed and changed requirements. An operations list that changed only by operations the version
    added or removed is no change of its own (the operation's change says it)."""
    changes: list[Change] = []
    came_and_went = set(new.operations) ^ set(old.operations)

    def operations(entry: Mapping[str, Any]) -> list[str]:
        return [op for op in entry.get("operations") or () if op not in came_and_went]

    for rid in [r for r in new.requirements if r not in old.requirements]:
        entry = new.requirements[rid]
        changes.append(Change("requirement added", rid, "requirements.yaml", str(entry.get("title", "")), COMPATIBLE,
                              BREAKING, (rid,)))
    for rid in [r for r in old.requirements if r not in new.requirements]:
        changes.append(Change("requirement removed", rid, "requirements.yaml", str(old.requirements[rid].get("title")),
                              COMPATIBLE, COMPATIBLE, (rid,)))
    for rid in [r for r in old.requirements if r in new.requirements]:
        a, b = old.requirements[rid], new.requirements[rid]
        fields = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
                  and (k != "operations" or operations(a) != operations(b))]
        if fields:
            deciding = any(f in _DECIDING_FIELDS for f in fields)
            changes.append(Change("requirement changed", rid, "requirements.yaml", f"changed: {', '.join(fields)}",
                                  COMPATIBLE, BREAKING if deciding else COMPATIBLE, (rid,)))
    return changes


def diff(old_folder: Path, new_folder: Path) -> list[Change]:
    """Every change from the contract files in ``old_folder`` to those in ``new_folder``."""
    old, new = load_contract(old_folder), load_contract(new_folder)
    return operation_changes(old, new) + error_changes(old, new) + requirement_changes(old, new)


def affected_kits(change: Change, kits: Iterable[Kit], reqs: Mapping[str, Req]) -> list[str]:
    """The kits a change reaches: they select one of its requirements and, for an operation's change, cover the
    operation's API family."""
    hit = []
    for kit in kits:
        if change.family and kit.apis and change.family not in kit.apis:
            continue
        if any(rid in reqs and kit.selects(reqs[rid]) for rid in change.requirements):
            hit.append(kit.name)
    return hit


# A requirement naming at most this many operations is specific to each of them (a rule shared by every
# reporting operation, or by all, reaches its tests through the operation named in their ids instead).
SPECIFIC_OPERATIONS = 3
_ID_TOKEN = re.compile(r"[A-Za-z]+")


def affected_tests(change: Change, verifies: Mapping[str, list[str]], reqs: Mapping[str, Req]) -> list[str]:
    """The tests a change reaches: for a code or requirement, those verifying one of its requirements; for an
    operation, those whose id names the operation and those verifying a requirement specific to it."""
    if not change.family:
        wanted = set(change.requirements)
        return sorted(node for node, ids in verifies.items() if wanted & set(ids))
    specific = {rid for rid in change.requirements if rid in reqs and len(reqs[rid].operations) <= SPECIFIC_OPERATIONS}
    return sorted(node for node, ids in verifies.items()
                  if specific & set(ids) or change.subject in _ID_TOKEN.findall(node.partition("::")[2]))


def requirements_of_both(old_folder: Path, new_folder: Path) -> dict[str, Req]:
    """The requirements of both versions as kits.Req (the newer one's entry where both have it)."""
    found: dict[str, Req] = {}
    for folder in (old_folder, new_folder):
        found.update(parse_requirements(specs.requirements_of(folder)))
    return found


def to_json(changes: list[Change], per_kit: Mapping[str, list[int]], tests: Mapping[int, list[str]]) -> str:
    return json.dumps({"breaking": any(c.breaking for c in changes),
                       "changes": [{**c.as_json(), "kits": [k for k, idx in per_kit.items() if i in idx],
                                    "tests": tests.get(i, [])} for i, c in enumerate(changes)]}, indent=1)


__all__ = ["BREAKING", "COMPATIBLE", "Change", "Contract", "affected_kits", "affected_tests", "diff",
           "error_changes", "load_contract", "operation_changes", "requirement_changes", "requirements_of_both"]
