"""Parsing a request body: UTF-8, JSON, then the checks a JSON parser does not make (ENV-018, ENV-021, ENV-022).

Checked once here, before member names are mapped and before any handler runs:

- bytes that are not UTF-8, a lone surrogate escape (``"\\ud800"``) or NUL in a member name or a string value at
  any depth: 400 H01 (ENV-018) — such a string cannot be stored, logged or answered as UTF-8;
- the same member name twice in one object, also in another letter case (members match case-insensitively,
  ENV-011): 400 D01 naming the member (ENV-021);
- a number the register cannot hold — 1e400 (inf), an integer beyond 64 bits, the NaN/Infinity literals —
  400 D01 naming the member (ENV-022).

The parser hooks only mark what they find (cheaply, in the common case nothing); the pointer of the first
problem is found by a second walk that runs only when a hook or the escape scan fired.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pcr_register.config import MAX_DEPTH

INT_LIMIT = 2**63 - 1  # SQLite INTEGER
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")  # may become a lone surrogate or NUL
_BAD_CHAR = re.compile("[\ud800-\udfff\x00]")


class BadJson(ValueError):
    """Not JSON (H00)."""


class TooDeep(ValueError):
    """Nested deeper than MAX_DEPTH (H00)."""


@dataclass(frozen=True)
class Problem(Exception):
    """A body that parses but cannot be accepted: code H01 or D01, the JSON pointer and a text."""

    code: str
    pointer: str
    text: str  # "": errors.yaml's description of the code
    kind: str  # "utf8", "unicode", "duplicate", "number": the faults' handle on one class


class OutOfRange:
    """Stands in for a number the register cannot hold until the walk names its member."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class DuplicateMembers(dict):
    """An object that had a member name twice (any letter case); keeps the first value, names the second."""

    duplicate: str = ""


def _visible(text: str) -> str:
    """text with lone surrogates and NUL written as \\uXXXX, so that the answer naming it is UTF-8."""
    return _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _pointer(path: list[str | int]) -> str:
    return _visible("".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path))


class _Hooks:
    def __init__(self) -> None:
        self.suspect = False  # a duplicate or an out-of-range number was seen

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs) and len({k.lower() for k in obj}) == len(obj):
            return obj
        self.suspect = True
        first: DuplicateMembers = DuplicateMembers()
        seen: set[str] = set()
        for key, value in pairs:
            if key.lower() in seen:
                if not first.duplicate:
                    first.duplicate = key
                continue
            seen.add(key.lower())
            first[key] = value
        return first

    def integer(self, text: str) -> Any:
        if len(text) > 20:
            self.suspect = True
            return OutOfRange(text)
        value = int(text)
        if -INT_LIMIT - 1 <= value <= INT_LIMIT:
            return value
        self.suspect = True
        return OutOfRange(text)

    def real(self, text: str) -> Any:
        value = float(text)
        if math.isfinite(value):
            return value
        self.suspect = True
        return OutOfRange(text)

    def constant(self, text: str) -> Any:
        # NaN, Infinity, -Infinity are not JSON (RFC 8259): the body is not JSON (ENV-007, H00)
        raise BadJson(f"{text} is not a JSON value")


def _find(value: Any, path: list[str | int], unicode: bool, numbers: bool, depth: int = 1) -> Problem | None:
    """The first problem in document order (invalid Unicode before the others when unicode is set)."""
    if depth > MAX_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if unicode and _BAD_CHAR.search(value):
            return Problem("H01", _pointer(path), "", "unicode")
        return None
    if isinstance(value, OutOfRange):
        if numbers:
            return Problem("D01", _pointer(path), f"The number {value.text[:40]} is out of range.", "number")
        return None
    if isinstance(value, dict):
        if numbers and isinstance(value, DuplicateMembers):
            where = _pointer([*path, value.duplicate])
            return Problem("D01", where, f"The member '{value.duplicate[:80]}' appears more than once.",
                           "duplicate")
        for key, item in value.items():
            if unicode and _BAD_CHAR.search(key):
                return Problem("H01", _pointer([*path, key]), "", "unicode")
            found = _find(item, [*path, key], unicode, numbers, depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find(item, [*path, index], unicode, numbers, depth + 1)
            if found:
                return found
    return None


def parse(raw: bytes, *, check_duplicates: bool = True) -> Any:
    """The parsed body, or BadJson / TooDeep / Problem (check_duplicates=False: the fault's last value wins)."""
    # A raw NUL byte is a control character JSON does not allow unescaped: json.loads refuses it (H00); an
    # escaped one (\u0000) is found below (H01).
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Bytes that are not UTF-8 inside what is otherwise JSON are invalid Unicode (ENV-018, H01); a body that
        # would not be JSON either is simply not JSON (ENV-007, H00).
        try:
            json.loads(raw.decode("utf-8-sig", errors="replace"))
        except (ValueError, RecursionError):
            raise BadJson("not UTF-8 and not JSON") from None
        raise Problem("H01", "", "", "utf8") from None
    hooks = _Hooks()
    try:
        value = json.loads(text, object_pairs_hook=hooks.pairs if check_duplicates else None,
                           parse_int=hooks.integer, parse_float=hooks.real, parse_constant=hooks.constant)
    except (ValueError, RecursionError) as exc:
        raise BadJson(str(exc)[:200]) from None
    if _SUSPECT_ESCAPE.search(raw) is not None:  # a valid UTF-8 text holds a surrogate only by an escape
        found = _find(value, [], True, False)
        if found:
            raise found
    if hooks.suspect:
        found = _find(value, [], False, True)
        if found:
            raise found
    return value
