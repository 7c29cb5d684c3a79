"""Kits (docs/concepts.md#kits): which requirements a stakeholder's conformance run covers, and which levels decide.

A kit selects requirements by actor, API and level, plus explicit include/exclude IDs. A test belongs to a
kit when any requirement it verifies is selected; tests are never copied per kit.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import catalogue, resources, specs
from pcr_conformance.errors import HarnessError
from pcr_conformance.target import KNOWN_CAPABILITIES

LEVELS = ("must", "should", "may")


@dataclasses.dataclass(frozen=True)
class Req:
    """The part of a requirement the harness needs (normalised from specs/requirements.yaml)."""

    id: str
    title: str
    level: str
    actors: tuple[str, ...]
    api: str
    operations: tuple[str, ...]
    error_code: str | None
    not_tested: str | None
    applies_when: tuple[str, ...] = ()  # target capabilities; the requirement applies when one is claimed
    # "register": judged by running the suites against a register; "client": a stakeholder's own system,
    # judged from its traffic through `pcr-conformance proxy` (CLI-..., docs/client-testing.md).
    side: str = "register"

    def applies(self, capabilities: Iterable[str]) -> bool:
        """The requirement applies to a target claiming `capabilities`: no condition, or one of its capabilities
        is claimed. A requirement that does not apply is not-applicable, which is no gap in the verdict."""
        return not self.applies_when or bool(set(self.applies_when) & set(capabilities))


@dataclasses.dataclass(frozen=True)
class Kit:
    name: str
    title: str
    description: str = ""
    actors: tuple[str, ...] = ()  # empty = any actor
    apis: tuple[str, ...] = ()  # empty = any API
    levels: tuple[str, ...] = LEVELS
    deciding_levels: tuple[str, ...] = ("must",)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    side: str = "register"  # which side of the contract the kit judges (Req.side); never both
    # Requirement families by ID prefix ("PRF": the service levels of the load kit); empty = every family.
    prefixes: tuple[str, ...] = ()
    source: str = ""

    def selects(self, req: Req) -> bool:
        if req.side != self.side:  # a register kit never selects a client requirement, nor the reverse
            return False
        if self.prefixes and req.id.split("-", 1)[0] not in self.prefixes:
            return False
        if req.id in self.exclude:
            return False
        if req.id in self.include:
            return True
        if self.levels and req.level not in self.levels:
            return False
        if self.actors and not set(self.actors) & set(req.actors):
            return False
        if self.apis and not _api_matches(req, self.apis):
            return False
        return True

    def selected(self, reqs: Mapping[str, Req]) -> dict[str, Req]:
        return {rid: r for rid, r in reqs.items() if self.selects(r)}

    def decides(self, req: Req) -> bool:
        return req.level in self.deciding_levels


def _api_matches(req: Req, apis: Iterable[str]) -> bool:
    apis = set(apis)
    if req.api in apis:
        return True
    # Cross-API requirements (ENV, IDN, SEC) belong to a kit when they name one of the kit's operations.
    ops = set(req.operations)
    return any(ops & set(catalogue.operation_ids(a)) for a in apis)


def kit_dirs() -> list[Path]:
    """Where kit names are looked up: kits/ of the current folder (the user's own kits win), then the kits
    shipped with pcr-conformance."""
    here = Path.cwd() / "kits"
    shipped = resources.kits_dir()
    return [here, shipped] if here.is_dir() and here.resolve() != shipped.resolve() else [shipped]


def available_kits() -> list[str]:
    return sorted({p.stem for d in kit_dirs() for p in d.glob("*.toml")})


def find_kit(name_or_path: str | os.PathLike[str]) -> Path:
    """The kit file: an existing .toml path as given, else <name>.toml in the first of kit_dirs() holding it."""
    raw = str(name_or_path)
    if raw.endswith(".toml") and Path(raw).is_file():
        return Path(raw)
    for d in kit_dirs():
        if (d / f"{raw}.toml").is_file():
            return d / f"{raw}.toml"
    raise HarnessError(f"kit {raw!r} not found; known kits: {', '.join(available_kits()) or 'none'}")


def load_kit(name_or_path: str | os.PathLike[str]) -> Kit:
    p = find_kit(name_or_path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"{p}: not valid TOML: {e}") from e
    known = {f.name for f in dataclasses.fields(Kit)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise HarnessError(f"{p}: field {unknown[0]}: unknown; known fields are {sorted(known)}")

    def strs(field: str, default: tuple[str, ...], allowed: Iterable[str] | None = None) -> tuple[str, ...]:
        v = data.get(field, list(default))
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise HarnessError(f"{p}: field {field}: must be a list of strings")
        if allowed is not None:
            bad = [x for x in v if x not in allowed]
            if bad:
                raise HarnessError(f"{p}: field {field}: unknown value {bad[0]!r}; use one of {list(allowed)}")
        return tuple(v)

    for f in ("name", "title"):
        if not isinstance(data.get(f), str) or not data[f]:
            raise HarnessError(f"{p}: field {f}: required string")
    return Kit(name=data["name"], title=data["title"], description=str(data.get("description", "")),
               actors=strs("actors", ()), apis=strs("apis", (), catalogue.families()), levels=strs("levels", LEVELS, LEVELS),
               deciding_levels=strs("deciding_levels", ("must",), LEVELS), include=strs("include", ()),
               exclude=strs("exclude", ()), side=_side(data, p), prefixes=strs("prefixes", ()), source=str(p))


SIDES = ("register", "client")


def _side(data: Mapping[str, Any], p: Path) -> str:
    side = data.get("side", "register")
    if side not in SIDES:
        raise HarnessError(f"{p}: field side: unknown value {side!r}; use one of {list(SIDES)}")
    return str(side)


# ---- requirements -----------------------------------------------------------------------------------


def load_requirements() -> dict[str, Req]:
    """{id: Req} of specs/requirements.yaml (through pcr_conformance.specs), in the register's order."""
    try:
        entries = specs.load_requirements()
    except (OSError, KeyError, TypeError) as e:
        raise HarnessError(f"cannot read the requirement register in {specs.specs_dir()}: {e}") from e
    return parse_requirements(entries)


def parse_requirements(entries: Iterable[Mapping[str, Any]]) -> dict[str, Req]:
    """{id: Req} of requirement entries as requirements.yaml holds them, in their order."""
    return {str(e["id"]): _req(e) for e in entries}


def default_applies_when(api: str) -> tuple[str, ...]:
    """A requirement of API family F applies when the target claims capability F; `api: all` always."""
    return (api,) if api in KNOWN_CAPABILITIES else ()


def _req(e: Mapping[str, Any]) -> Req:
    api = str(e.get("api") or "all")
    applies = e.get("applies_when")
    return Req(id=str(e["id"]), title=str(e.get("title", "")), level=str(e.get("level", "must")),
               actors=tuple(e.get("actors") or ()), api=api,
               operations=tuple(e.get("operations") or ()), error_code=e.get("error_code") or None,
               not_tested=e.get("not_tested") or None,
               applies_when=tuple(applies) if applies is not None else default_applies_when(api),
               side=str(e.get("side") or "register"))
