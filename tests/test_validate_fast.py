"""The offline validator's fast path (validate_schema.schema_problems): the Rust validator may answer "valid" for
jsonschema only where jsonschema finds no problem either. Checked on every request example of the specs and on
mutants of each (every member deleted, retyped, emptied, given a trailing newline, Unicode digits, an unknown
sibling member), deterministically."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from pcr_conformance import specs, validate_schema

OPERATIONS = sorted(op for op in specs.operation_index() if specs.request_examples(op))


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield at + (k,)
            yield from _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield at + (i,)
            yield from _paths(v, at + (i,))


def _replaced(doc: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    out = copy.deepcopy(doc)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def _value_at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _mutants(example: Any) -> Iterator[Any]:
    yield example
    for path in _paths(example):
        old = _value_at(example, path)
        yield _replaced(example, path, None, delete=True)
        for new in (None, 0, -1, 1.5, "", [], {}, True):
            if type(new) is not type(old):
                yield _replaced(example, path, new)
        if isinstance(old, str):
            for new in (old + "\n", old.upper(), old.lower(), old[:-1], old + "0", "\u0661\u0662\u0663",
                        old.replace("-", "\u2013"), " " + old, "x" * 300):
                yield _replaced(example, path, new)
        if isinstance(old, int | float) and not isinstance(old, bool):
            for new in (-old, old + 0.001, 10**12, str(old)):
                yield _replaced(example, path, new)
        if isinstance(old, dict):
            yield _replaced(example, path, {**old, "unknownMember": 1})


@pytest.mark.parametrize("operation", OPERATIONS)
def test_fast_valid_is_jsonschema_valid(operation: str) -> None:
    """Every body the Rust validator calls valid has no jsonschema problem; the mutants do include invalid ones."""
    fast = validate_schema._fast_validator(str(specs.specs_dir()), operation)
    assert fast is not None, "jsonschema_rs (a dependency of schemathesis) cannot compile the schema"
    slow = validate_schema.request_validator(operation)
    checked = invalid = 0
    for example in specs.request_examples(operation).values():
        for body in _mutants(example):
            checked += 1
            errors = [e.message for e in slow.iter_errors(body)]
            invalid += bool(errors)
            if fast.is_valid(body):
                assert not errors, (operation, body, errors)
    assert checked > 50 and invalid > 10, (checked, invalid)
