"""Where the kit's own files are: the contract (specs/), the suites, the kits and the targets.

One function per folder, used everywhere instead of paths relative to this file. Each is the repository's
folder when pcr-conformance runs from a checkout (an editable install, or `python -m` in the repository),
else the data package the wheel installed (pyproject.toml maps the repository's folders onto them):

    specs/   -> pcr_specs                 (also read by pcr_register)
    suites/  -> pcr_conformance.suites
    kits/    -> pcr_kits
    targets/ -> pcr_targets
    profiles/ -> pcr_profiles   (implementation profiles)

User files still win where a name is looked up (kits.load_kit, target.resolve_target_path): a
`kits/<name>.toml` or `targets/<name>.toml` in the current folder, or a path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

SPECS_PACKAGE = "pcr_specs"
SUITES_PACKAGE = "pcr_conformance.suites"
KITS_PACKAGE = "pcr_kits"
TARGETS_PACKAGE = "pcr_targets"
PROFILES_PACKAGE = "pcr_profiles"
# The pytest configuration of the suites' runs (`-c`): a user's own pytest.ini, tox.ini, setup.cfg or
# pyproject.toml in the folder `pcr-conformance` is started in must not change how the suites run.
SUITES_PYTEST_CONFIG = Path(__file__).with_name("suites.ini")


@functools.cache
def checkout() -> Path | None:
    """The repository this package runs from (src/pcr_conformance inside it), None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "pcr_conformance").is_dir():
        return root
    return None


@functools.cache  # asked for each spec read (~35 000 times a session): the folders do not move while we run
def _folder(name: str, package: str) -> Path:
    root = checkout()
    if root is not None and (root / name).is_dir():
        return root / name
    installed = _installed(package)
    if installed is not None:
        return installed
    where = f"{root / name} or " if root is not None else ""
    raise FileNotFoundError(f"{name}/ not found ({where}the installed package {package}); "
                            f"reinstall pcr-conformance")


def _installed(package: str) -> Path | None:
    """The folder of an installed (data) package, without importing anything of it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def specs_dir() -> Path:
    """The contract: ``$PCR_SPECS_DIR`` if set, else the checkout's specs/, else the installed pcr_specs."""
    override = os.environ.get("PCR_SPECS_DIR")
    if override:
        return Path(override)
    return _folder("specs", SPECS_PACKAGE)


def suites_dir() -> Path:
    """The conformance suites (pytest tests). Their node ids are relative to its parent: `suites/...`."""
    return _folder("suites", SUITES_PACKAGE)


def kits_dir() -> Path:
    """The kits shipped with pcr-conformance (kits/<name>.toml)."""
    return _folder("kits", KITS_PACKAGE)


def targets_dir() -> Path:
    """The targets shipped with pcr-conformance (targets/reference.toml, targets/example-remote.toml)."""
    return _folder("targets", TARGETS_PACKAGE)


def profiles_dir() -> Path:
    """The implementation profiles shipped with pcr-conformance (profiles/reference.toml): the values a register
    chose where the public material is silent. Not the Hypothesis profiles of `--profile`."""
    return _folder("profiles", PROFILES_PACKAGE)


def suites_pytest_args() -> list[str]:
    """pytest options that run the suites the same from any folder: the kit's own configuration (never the
    user's), rootdir above suites/ (node ids `suites/...`, as in the repository) and conftest files only from
    inside suites/."""
    suites = suites_dir().resolve()
    return ["-c", str(SUITES_PYTEST_CONFIG), "--rootdir", str(suites.parent), "--confcutdir", str(suites)]


def cache_home() -> Path | None:
    """The kit's cache folder: $PCR_CACHE_DIR, else $XDG_CACHE_HOME/pcr-conformance, else
    ~/.cache/pcr-conformance; None when PCR_CACHE_DIR=off. What is kept there can be derived again."""
    given = os.environ.get("PCR_CACHE_DIR", "")
    if given.lower() == "off":
        return None
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "pcr-conformance"


def share_hypothesis_storage() -> None:
    """Hypothesis keeps what it derives once per machine (its Unicode tables: about 1.5 s of the first fuzz test
    of each process, issue 12) under `.hypothesis/` of the folder pytest runs in: for `pcr-conformance`, the
    user's folder, new for every fresh folder. Our commands keep it in the cache instead (the environment
    variable reaches every pytest process they start), unless the user chose a folder or turned the cache off.
    The suites' profiles keep no example database, so nothing else goes there."""
    home = cache_home()
    if home is not None:
        os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(home / "hypothesis"))
