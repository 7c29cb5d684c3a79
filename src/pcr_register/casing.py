"""Case-insensitive member names (ENV-011).

Real clients send PascalCase bodies (docs/register-facts.md#real-clients-on-the-wire). Every incoming member name is mapped to the canonical
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


class Normaliser:
    """Maps member names with a cache per distinct key tuple (a batch repeats the same shapes)."""

    def __init__(self, names: dict[str, str], *, top_level_only: bool = False) -> None:
        self.names = names
        self.top_level_only = top_level_only  # fault casing_top_level_only (breaks ENV-011)
        self.known = frozenset(names.values())
        self._cache: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _keys(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        mapped = self._cache.get(keys)
        if mapped is None:
            mapped = tuple(self.names.get(k.lower(), k) if isinstance(k, str) else k for k in keys)
            # Only shapes made of the spec's names are kept: hostile bodies bring endless unknown (and huge)
            # names, which a cache would hold for the life of the process.
            if len(self._cache) < 10_000 and all(k in self.known for k in mapped):
                self._cache[keys] = mapped
        return mapped

    def __call__(self, value: Any, depth: int = 1) -> Any:
        """Return value with every member name replaced by its canonical spelling (TooDeep past MAX_DEPTH)."""
        if depth > MAX_DEPTH:
            raise TooDeep(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            keys = tuple(value) if self.top_level_only and depth > 1 else self._keys(tuple(value))
            return {
                k: (self(v, depth + 1) if isinstance(v, dict | list) else v)
                for k, v in zip(keys, value.values(), strict=True)
            }
        if isinstance(value, list):
            return [self(v, depth + 1) if isinstance(v, dict | list) else v for v in value]
        return value


def normalise(value: Any, names: dict[str, str]) -> Any:
    return Normaliser(names)(value)
