"""JSON bodies for the robustness matrix: the positions of a valid request body (member names, string values,
identifiers, numbers, objects, by depth) and a serialiser that writes what ``json.dumps`` cannot: raw bytes
spliced into a string or in place of a value (lone surrogate escapes, invalid UTF-8, 1e400, nesting 100 000
deep) and the same member name twice."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]

#: A placeholder that json.dumps leaves as it is; render() replaces it with the raw bytes of a case.
MARK = "@@pcr-robustness-mark@@"
_MARK = MARK.encode()
_QUOTED_MARK = json.dumps(MARK).encode()

#: Member names whose values identify something (a person, a loan, a batch, an order, a report), most telling first.
IDENTIFIER_KEYS = ("number", "idCode", "batchReference", "orderReference", "reportReference")
ENVELOPE = ("targetEnvironment", "owner")


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) of a body below the root, in document order (pre-order)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield (*path, k), v
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i), v
            yield from walk(v, (*path, i))


def get(body: Any, path: Path) -> Any:
    for step in path:
        body = body[step]
    return body


def replaced(body: Any, path: Path, value: Any) -> Any:
    """A deep copy of `body` with the value at `path` replaced (the root itself for path ())."""
    if not path:
        return copy.deepcopy(value)
    out = copy.deepcopy(body)
    get(out, path[:-1])[path[-1]] = value
    return out


def member_name(path: Path) -> str:
    """The last member name on a path (an array item is named by its array): what a fieldName should name."""
    return next((str(step) for step in reversed(path) if isinstance(step, str)), "")


def _envelope_last(paths: Sequence[Path]) -> list[Path]:
    """The operation's own members first, the envelope (targetEnvironment, owner) after them."""
    return sorted(paths, key=lambda p: bool(p) and p[0] in ENVELOPE)


def max_depth(body: Any) -> int:
    return max((len(p) for p, _ in walk(body)), default=0)


def at_depth(body: Any, depth: int) -> Path | None:
    """The first path of that length, preferring the operation's own members to the envelope."""
    paths = _envelope_last([p for p, _ in walk(body) if len(p) == depth])
    return paths[0] if paths else None


def deepest_object(body: Any) -> Path:
    """The path of the most deeply nested object (the root's () when there is none below it)."""
    objects = [p for p, v in walk(body) if isinstance(v, Mapping) and v]
    return max(_envelope_last(objects), key=len, default=())


def deepest_text(body: Any) -> Path | None:
    """The most deeply nested string value that is not an identifier (an enum, a date, a text)."""
    texts = [p for p, v in walk(body) if isinstance(v, str) and len(p) > 1 and p[-1] not in IDENTIFIER_KEYS]
    return max(_envelope_last(texts), key=len, default=None)


def own_identifier(body: Any) -> Path | None:
    """The operation's own identifier outside the owner (loanNumber.number, request.idCode, batchReference...)."""
    found = [p for p, v in walk(body) if isinstance(v, str) and p[0] != "owner" and p[-1] in IDENTIFIER_KEYS]
    return min(found, key=lambda p: (IDENTIFIER_KEYS.index(p[-1]), len(p)), default=None)


def first_number(body: Any) -> Path | None:
    """The first number member (booleans are not numbers), None when the body has none."""
    return next((p for p, v in walk(body) if isinstance(v, int | float) and not isinstance(v, bool)), None)


def first_array(body: Any) -> Path | None:
    return next((p for p, v in walk(body) if isinstance(v, list) and v), None)


def render(body: Any, *, raw: bytes = b"", in_string: bool = True,
           extra: Mapping[Path, Sequence[tuple[str, Any]]] | None = None) -> bytes:
    """UTF-8 JSON of `body`. Each MARK becomes `raw` (inside its string when `in_string`, else in place of
    the whole string value "MARK"); `extra` adds members after those of the object at a path (duplicates)."""
    text = _dump(body, (), extra or {}).encode("utf-8")
    return text.replace(_MARK, raw) if in_string else text.replace(_QUOTED_MARK, raw)


def _dump(value: Any, path: Path, extra: Mapping[Path, Sequence[tuple[str, Any]]]) -> str:
    if not any(where[:len(path)] == path for where in extra):
        # Nothing added at or below this path: json.dumps writes the same text (its separators are ", " and ": "),
        # in C, which matters for the matrix's 20 000-element arrays.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        pairs = [*value.items(), *extra.get(path, ())]
        inner = ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_dump(v, (*path, k), extra)}" for k, v in pairs)
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, (*path, i), extra) for i, v in enumerate(value)) + "]"
    return json.dumps(value, ensure_ascii=False)
