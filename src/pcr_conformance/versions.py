"""Contract versions: the files of ``specs/`` are one named version, each other version is overlays on a base.

``specs/version.toml`` names the version the files of ``specs/`` are (the current one, the default). Every
other version is a folder ``specs/versions/<name>/`` holding a ``version.toml`` (``base``: the version it
changes, ``description``, ``status``) and one OpenAPI Overlay 1.0 document per file it changes
(``<file stem>.overlay.yaml``, e.g. ``reporting.overlay.yaml``, ``errors.overlay.yaml``,
``requirements.overlay.yaml``). A version that changes one operation is one small overlay, not a copy.

Overlay actions, applied in order (https://spec.openapis.org/overlay/v1.0.0): ``target`` is an RFC 9535
JSONPath; ``update`` is merged into every node it selects (objects recursively, anything else replaced; on an
array the value is appended); ``remove: true`` deletes the selected nodes. An action that selects nothing is
an error: a misspelt target must not leave the base silently unchanged.

:func:`build` writes a version's complete files into a cache folder once (atomically: a half-written folder
is never used) and returns it; :func:`select` points ``PCR_SPECS_DIR`` at it, so this process, the pytest
session and the embedded register it starts all read that version. Every reader of the contract
(pcr_conformance.specs, pcr_register) reads a plain folder and knows nothing of versions.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import jsonpath
import yaml

from pcr_conformance import resources
from pcr_conformance.errors import HarnessError

VERSION_FILE = "version.toml"
VERSIONS_FOLDER = "versions"
OVERLAY_SUFFIX = ".overlay.yaml"
SPECS_ENV_VAR = "PCR_SPECS_DIR"
# The folder every built version is cached in (one sub-folder per version and content hash).
CACHE_FOLDER = "pcr-conformance-specs"


class VersionError(HarnessError):
    """An unknown version, or a version folder or overlay that cannot be applied (names the file and the fix)."""


@dataclasses.dataclass(frozen=True)
class ContractVersion:
    name: str
    base: str | None  # None for the version the files of specs/ are
    description: str
    status: str  # e.g. "in production", "upcoming"
    folder: Path  # specs/ for the current version, specs/versions/<name>/ for the others


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise VersionError(f"{path}: cannot be read as TOML ({e})") from None


def source_dir() -> Path:
    """The specs folder that holds the versions: the one in use, or the folder a built version came from."""
    folder = resources.specs_dir()
    meta = folder / VERSION_FILE
    if meta.is_file():
        source = _read_toml(meta).get("built_from")
        if isinstance(source, str) and Path(source).is_dir():
            return Path(source)
    return folder


def catalogue(specs: Path | None = None) -> dict[str, ContractVersion]:
    """``{name: version}``: the current version first, then the folders of specs/versions/ by name."""
    root = specs or source_dir()
    meta_path = root / VERSION_FILE
    if not meta_path.is_file():
        return {}
    meta = _read_toml(meta_path)
    current = ContractVersion(name=str(meta.get("name", "")), base=None, description=str(meta.get("description", "")),
                              status=str(meta.get("status", "")), folder=root)
    found = {current.name: current}
    for folder in sorted((root / VERSIONS_FOLDER).glob("*")) if (root / VERSIONS_FOLDER).is_dir() else []:
        if not (folder / VERSION_FILE).is_file():
            continue
        data = _read_toml(folder / VERSION_FILE)
        base = data.get("base")
        if not isinstance(base, str) or not base:
            raise VersionError(f"{folder / VERSION_FILE}: base is missing; name the version this one changes "
                               f"(e.g. base = {current.name!r})")
        found[folder.name] = ContractVersion(name=folder.name, base=base, description=str(data.get("description", "")),
                                             status=str(data.get("status", "")), folder=folder)
    for version in found.values():
        if version.base is not None and version.base not in found:
            raise VersionError(f"{version.folder / VERSION_FILE}: base {version.base!r} is not a version "
                               f"(known: {', '.join(found)})")
    return found


def current_name(specs: Path | None = None) -> str:
    """The name of the version the files of ``specs`` (default: the folder in use) are; "" when unnamed."""
    meta = (specs or resources.specs_dir()) / VERSION_FILE
    return str(_read_toml(meta).get("name", "")) if meta.is_file() else ""


def get(name: str) -> ContractVersion:
    versions = catalogue()
    if name not in versions:
        known = ", ".join(versions) or "none (specs/version.toml is missing)"
        raise VersionError(f"contract version {name!r} is unknown; known versions: {known}")
    return versions[name]


def lineage(name: str) -> list[ContractVersion]:
    """The version and its bases, the files' own version first: the order the overlays apply in."""
    versions = catalogue()
    chain: list[ContractVersion] = []
    version: ContractVersion | None = get(name)
    while version is not None:
        if version in chain:
            raise VersionError(f"contract version {name!r}: its bases form a cycle "
                               f"({' -> '.join(v.name for v in chain)})")
        chain.append(version)
        version = versions[version.base] if version.base else None
    return list(reversed(chain))


# ---- overlays -------------------------------------------------------------------------------------------


def _merge(target: Any, update: Any) -> Any:
    if isinstance(target, dict) and isinstance(update, dict):
        for key, value in update.items():
            target[key] = _merge(target[key], value) if key in target else copy.deepcopy(value)
        return target
    return copy.deepcopy(update)


def _set_at(doc: Any, pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _remove_at(doc: Any, pointer: str) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[int(parts[-1]) if isinstance(node, list) else parts[-1]]


def apply_overlay(document: Any, overlay: dict[str, Any], where: str = "overlay") -> Any:
    """A copy of ``document`` with the overlay's actions applied in order (see the module's doc)."""
    doc = copy.deepcopy(document)
    if not str(overlay.get("overlay", "")).startswith("1."):
        raise VersionError(f"{where}: not an OpenAPI Overlay 1.x document (the member overlay: 1.0.0 is missing)")
    for index, action in enumerate(overlay.get("actions") or []):
        at = f"{where}: actions[{index}]"
        target = action.get("target") if isinstance(action, dict) else None
        if not isinstance(target, str):
            raise VersionError(f"{at}: target is missing; give an RFC 9535 JSONPath such as $.paths")
        if ("update" in action) == bool(action.get("remove")):
            raise VersionError(f"{at}: give exactly one of update or remove: true")
        try:
            matches = list(jsonpath.finditer(target, doc))
        except jsonpath.JSONPathError as e:
            raise VersionError(f"{at}: target {target!r} is not a valid JSONPath ({e})") from None
        if not matches:
            raise VersionError(f"{at}: target {target!r} selects nothing in the base; fix the path")
        # Deepest and last first, so that removing one match does not shift the pointer of another.
        for match in sorted(matches, key=lambda m: str(m.pointer()), reverse=True):
            pointer = str(match.pointer())
            if action.get("remove"):
                if not pointer:
                    raise VersionError(f"{at}: the whole document cannot be removed")
                _remove_at(doc, pointer)
            elif isinstance(match.obj, list):
                match.obj.append(copy.deepcopy(action["update"]))
            elif not pointer:
                doc = _merge(doc, action["update"])
            else:
                _set_at(doc, pointer, _merge(match.obj, action["update"]))
    return doc


# ---- building a version's folder --------------------------------------------------------------------------


def _overlays(version: ContractVersion) -> dict[str, Path]:
    """``{spec file name: overlay file}`` of a version folder (empty for the files' own version)."""
    if version.base is None:
        return {}
    return {p.name[: -len(OVERLAY_SUFFIX)] + ".yaml": p for p in sorted(version.folder.glob("*" + OVERLAY_SUFFIX))}


def _fingerprint(chain: list[ContractVersion]) -> str:
    digest = hashlib.sha256()
    root = chain[0].folder
    for path in sorted(root.glob("*.yaml")) + [root / VERSION_FILE]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for version in chain[1:]:
        for path in sorted(version.folder.iterdir()):
            if path.is_file():
                digest.update(version.name.encode() + path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: every version's files
# are read at each session's collection (requirement_ids), ~0.8 s per process with the pure-Python loader


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError) as e:
        raise VersionError(f"{path}: cannot be read as YAML ({e})") from None


def build(name: str, cache: Path | None = None) -> Path:
    """The folder holding every file of contract version ``name``: specs/ itself for the current version, else
    a cached folder built from the base's files and the overlays of each version up to ``name``."""
    chain = lineage(name)
    if len(chain) == 1:
        return chain[0].folder
    root = chain[0].folder
    folder = (cache or Path(tempfile.gettempdir()) / CACHE_FOLDER) / f"{name}-{_fingerprint(chain)}"
    if (folder / VERSION_FILE).is_file():
        return folder
    files: dict[str, Any] = {p.name: _load_yaml(p) for p in sorted(root.glob("*.yaml"))}
    for version in chain[1:]:
        for file_name, overlay_path in _overlays(version).items():
            if file_name not in files:
                raise VersionError(f"{overlay_path}: there is no {file_name} in the base to change; name an existing "
                                   f"spec file ({', '.join(sorted(files))})")
            overlay = _load_yaml(overlay_path)
            if not isinstance(overlay, dict):
                raise VersionError(f"{overlay_path}: an overlay must be a YAML mapping")
            files[file_name] = apply_overlay(files[file_name], overlay, str(overlay_path))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        for file_name, content in files.items():
            (staging / file_name).write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=120),
                                             encoding="utf-8")
        for extra in sorted(root.glob("*.md")):
            shutil.copy2(extra, staging / extra.name)
        last = chain[-1]
        meta = [f"name = {last.name!r}", f"base = {last.base!r}", f"description = {last.description!r}",
                f"status = {last.status!r}", f"built_from = {str(root)!r}"]
        (staging / VERSION_FILE).write_text("\n".join(meta) + "\n", encoding="utf-8")
        try:
            os.replace(staging, folder)
        except OSError:  # another process built the same version meanwhile: use its folder
            if not (folder / VERSION_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@functools.cache
def requirement_ids() -> frozenset[str]:
    """The requirement IDs of every contract version (a test may verify one that the version judged lacks)."""
    ids: set[str] = set()
    for name in catalogue():
        data = _load_yaml(build(name) / "requirements.yaml")
        ids.update(r["id"] for r in (data or {}).get("requirements") or [])
    return frozenset(ids)


def select(name: str) -> Path:
    """Build ``name`` and make it the contract of this process and of every process it starts
    (``PCR_SPECS_DIR``). Returns the folder."""
    folder = build(name).resolve()
    os.environ[SPECS_ENV_VAR] = str(folder)
    return folder


__all__ = ["ContractVersion", "VersionError", "apply_overlay", "build", "catalogue", "current_name", "get",
           "lineage", "requirement_ids", "select", "source_dir"]
