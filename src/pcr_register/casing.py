"""Case-insensitive member names (ENV-011).

Real clients send PascalCase bodies (domain.md §11). Every incoming member name is mapped to the canonical
camelCase name known from the spec schemas before validation; names the specs do not know are kept as sent
so that validation can reject them as unknown members (ENV-010). The same walk enforces the nesting limit
(H00, ENV-009).
"""

from __future__ import annotations

from typing import Any

from pcr_register.config import MAX_DEPTH


class TooDeep(ValueError):
    """The body is nested deeper than MAX_DEPTH."""


def name_map(names: set[str]) -> dict[str, str]:
    """lower-case name -> canonical name, for every property name of every spec schema."""
    return {n.lower(): n for n in sorted(names)}


def normalise(value: Any, names: dict[str, str], depth: int = 1) -> Any:
    """Return value with every member name replaced by its canonical spelling."""
    if depth > MAX_DEPTH:
        raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            canonical = names.get(key.lower(), key) if isinstance(key, str) else key
            out[canonical] = (
                normalise(item, names, depth + 1) if isinstance(item, dict | list) else item
            )
        return out
    if isinstance(value, list):
        return [normalise(v, names, depth + 1) if isinstance(v, dict | list) else v for v in value]
    return value
