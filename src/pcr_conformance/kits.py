"""Kits (design.md §5): which requirements a stakeholder's conformance run covers, and which levels decide.

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

from pcr_conformance.errors import HarnessError

REPO_ROOT = Path(__file__).resolve().parents[2]
LEVELS = ("must", "should", "may")
APIS = ("reporting", "extract", "authorities", "voluntary-ban")

# interfaces.md §1: operations of each API (used when a requirement spans APIs: api = "all").
API_OPERATIONS: dict[str, frozenset[str]] = {
    "reporting": frozenset({"AddLoans", "UpdateLoans", "Repayments", "DelayedRepayments", "TerminateLoans",
                            "GetBatchStatus", "GetLoan"}),
    "extract": frozenset({"GetCreditRegisterExtract", "GetExtractLog"}),
    "authorities": frozenset({"OrderData", "GetOrderStatus", "GetDistribution"}),
    "voluntary-ban": frozenset({"GetVoluntaryBan", "GetVoluntaryBanChanges"}),
}


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
    source: str = ""

    def selects(self, req: Req) -> bool:
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
    return any(ops & API_OPERATIONS.get(a, frozenset()) for a in apis)


def kits_dir() -> Path:
    for d in (Path.cwd() / "kits", REPO_ROOT / "kits"):
        if d.is_dir():
            return d
    return REPO_ROOT / "kits"


def available_kits() -> list[str]:
    return sorted(p.stem for p in kits_dir().glob("*.toml"))


def load_kit(name_or_path: str | os.PathLike[str]) -> Kit:
    raw = str(name_or_path)
    p = Path(raw)
    if not (raw.endswith(".toml") and p.is_file()):
        p = kits_dir() / f"{raw}.toml"
    if not p.is_file():
        raise HarnessError(f"kit {raw!r} not found; known kits: {', '.join(available_kits()) or 'none'}")
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
               actors=strs("actors", ()), apis=strs("apis", (), APIS), levels=strs("levels", LEVELS, LEVELS),
               deciding_levels=strs("deciding_levels", ("must",), LEVELS), include=strs("include", ()),
               exclude=strs("exclude", ()), source=str(p))


# ---- requirements -----------------------------------------------------------------------------------


def requirements_path() -> Path:
    """The specs folder: pcr_conformance.specs' choice ($PCR_SPECS_DIR or the repository's), else cwd/repo."""
    try:
        from pcr_conformance import specs

        return specs.specs_dir()
    except (ImportError, FileNotFoundError, AttributeError):
        pass
    for d in (Path.cwd() / "specs", REPO_ROOT / "specs"):
        if (d / "requirements.yaml").is_file() or (d / "requirements.seed.txt").is_file():
            return d
    return REPO_ROOT / "specs"


def load_requirements() -> dict[str, Req]:
    """{id: Req}. Reads specs/requirements.yaml (through pcr_conformance.specs when present) or the seed."""
    d = requirements_path()
    yaml_path = d / "requirements.yaml"
    if yaml_path.is_file():
        entries = _requirement_entries(yaml_path)
        return {e["id"]: _req(e) for e in entries}
    seed = d / "requirements.seed.txt"
    if seed.is_file():
        return _from_seed(seed)
    raise HarnessError(f"no requirement register found in {d} (specs/requirements.yaml)")


def _requirement_entries(path: Path) -> list[dict[str, Any]]:
    try:
        from pcr_conformance import specs  # the specs engineer's loader, when it exists

        loaded = specs.load_requirements()
        items = loaded.values() if isinstance(loaded, Mapping) else loaded
        out = []
        for r in items:
            out.append(r if isinstance(r, Mapping) else
                       {f: getattr(r, f, None) for f in ("id", "title", "level", "actors", "api", "operations",
                                                         "error_code", "not_tested")})
        if out:
            return out
    except (ImportError, AttributeError, TypeError):
        pass
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = data.get("requirements", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise HarnessError(f"{path}: expected a list under requirements:")
    return entries


def _req(e: Mapping[str, Any]) -> Req:
    return Req(id=str(e["id"]), title=str(e.get("title", "")), level=str(e.get("level", "must")),
               actors=tuple(e.get("actors") or ()), api=str(e.get("api") or "all"),
               operations=tuple(e.get("operations") or ()), error_code=e.get("error_code") or None,
               not_tested=e.get("not_tested") or None)


def _from_seed(path: Path) -> dict[str, Req]:
    """The pre-YAML seed format: `ID | level | operations | error_code | title`."""
    reqs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rid, level, ops, code, title = (x.strip() for x in line.split("|", 4))
        prefix = rid.split("-")[0]
        api = {"RPT": "reporting", "BAT": "reporting", "EXT": "extract", "AUT": "authorities",
               "BAN": "voluntary-ban"}.get(prefix, "all")
        reqs[rid] = Req(rid, title, level, ("lender", "kela", "authority", "credit-information-company",
                                            "register"), api, tuple(o for o in ops.split(",") if o),
                        None if code == "-" else code, None)
    return reqs
