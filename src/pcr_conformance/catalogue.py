"""The operation catalogue, derived from the OpenAPI files in ``specs/``: one place that knows each
operation's API family, collection member, whether it submits a batch, and which capability and certificate
role it needs.

Nothing here is written by hand: a new operation in a spec file is in the catalogue. The family is the spec
file's stem (``reporting``, ``extract``, ``authorities``, ``voluntary-ban``) and is spelt that way
everywhere: the key of a target's ``[base_urls]``, the capability a target claims, a kit's ``apis`` and the
corpus folder name. (Python packages cannot hold a dash, so ``suites/scenarios/voluntary_ban/`` is the one
exception, a folder name and nothing else.)

Derivation rules:
- *submits*: the operation takes the ``BatchReference`` header (answered 202, results through
  GetBatchStatus).
- *collection*: the array member of a submitting operation's request body (``loans``, ``repayments``, ...).
- *writes*: the operation stores something when accepted (answers 202): never sent to a read-only target.
- *role*: ``info.x-certificate-role`` of the family's spec file.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from pcr_conformance import specs

BATCH_REFERENCE_HEADER = "BatchReference"
ENVELOPE_MEMBERS = ("targetEnvironment", "owner")


@dataclasses.dataclass(frozen=True)
class Operation:
    """One operation of the contract as the harness needs it."""

    id: str
    family: str  # spec file stem: reporting | extract | authorities | voluntary-ban
    path: str
    submits: bool  # takes a BatchReference header; processed as a batch
    collection: str | None  # the reports' array member of a submitting operation's body
    writes: bool  # stores something when accepted (202)
    members: tuple[str, ...]  # the request body's top-level members other than the envelope
    required: tuple[str, ...]  # of those, the required ones
    provenance: str

    @property
    def capability(self) -> str:
        """The target capability that claims this operation: its family."""
        return self.family


def _header_names(doc: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    names = set()
    for param in operation.get("parameters", []):
        param = specs.resolve(doc, param)
        if param.get("in") == "header":
            names.add(param.get("name"))
    return names


def _request_object(op_id: str) -> dict[str, Any]:
    schema = specs.schema_for_request(op_id)
    return specs.resolve(schema, schema)


@functools.cache
def operations() -> dict[str, Operation]:
    """``{operationId: Operation}`` of every spec file present, in spec-file order."""
    out: dict[str, Operation] = {}
    for op_id, (family, path, operation) in specs.operation_index().items():
        doc = specs.load_spec(family)
        body = _request_object(op_id)
        properties = body.get("properties", {})
        members = tuple(m for m in properties if m not in ENVELOPE_MEMBERS)
        required = tuple(m for m in body.get("required", []) if m not in ENVELOPE_MEMBERS)
        submits = BATCH_REFERENCE_HEADER in _header_names(doc, operation)
        collection = None
        if submits:
            arrays = [m for m in required if specs.resolve(doc, properties[m]).get("type") == "array"]
            if len(arrays) != 1:
                raise ValueError(f"{op_id}: a submitting operation needs exactly one required array member, "
                                 f"found {arrays}")
            collection = arrays[0]
        out[op_id] = Operation(
            id=op_id, family=family, path=path, submits=submits, collection=collection,
            writes="202" in operation.get("responses", {}), members=members, required=required,
            provenance=str(operation.get("x-provenance", "")))
    return out


def get(op_id: str) -> Operation:
    """The operation; KeyError naming the known ones when the specs do not define it."""
    ops = operations()
    if op_id not in ops:
        raise KeyError(f"unknown operation {op_id!r}; the specs define {', '.join(ops)}")
    return ops[op_id]


def families() -> tuple[str, ...]:
    """The API families, in spec order."""
    return tuple(dict.fromkeys(op.family for op in operations().values()))


def operation_ids(family: str | None = None) -> tuple[str, ...]:
    """Every operation id, or those of one family."""
    return tuple(op.id for op in operations().values() if family is None or op.family == family)


def family_of(op_id: str) -> str | None:
    """The family of an operation, None for a name the specs do not define."""
    op = operations().get(op_id)
    return op.family if op else None


def submit_operations() -> tuple[str, ...]:
    """Operations that take a batch (BatchReference header)."""
    return tuple(op.id for op in operations().values() if op.submits)


def collections() -> dict[str, str]:
    """``{operationId: collection member}`` of the submitting operations."""
    return {op.id: op.collection for op in operations().values() if op.collection}


def collection_of(op_id: str) -> str | None:
    op = operations().get(op_id)
    return op.collection if op else None


@functools.cache
def family_roles() -> dict[str, str]:
    """``{family: certificate role}`` from each spec file's ``info.x-certificate-role``."""
    roles: dict[str, str] = {}
    for family in families():
        role = specs.load_spec(family).get("info", {}).get("x-certificate-role")
        if not role:
            raise ValueError(f"specs/{specs.family_files()[family]}: info.x-certificate-role is missing")
        roles[family] = str(role)
    return roles
