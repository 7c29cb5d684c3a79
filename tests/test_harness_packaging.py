"""The wheel carries everything a user needs outside the checkout (specs, suites, kits, targets as data
packages, pyproject.toml [tool.setuptools]); pcr_conformance.resources finds them in the checkout here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pcr_conformance import resources

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_python_package_under_src_is_packaged() -> None:
    """`packages` is a list (the data packages need package-dir); a new package under src/ must be in it."""
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")
             if "egg-info" not in str(p)}
    missing = sorted(found - set(SETUPTOOLS["packages"]))
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"


def test_data_packages_map_the_repository_folders_and_clash_with_no_module() -> None:
    mapping = SETUPTOOLS["package-dir"]
    assert {mapping[p] for p in (resources.SPECS_PACKAGE, resources.SUITES_PACKAGE, resources.KITS_PACKAGE,
                                 resources.TARGETS_PACKAGE)} == {"specs", "suites", "kits", "targets"}
    for package in mapping:
        if package and "." in package:  # a data package inside a code package must not shadow its module
            parent, name = package.rsplit(".", 1)
            assert not (ROOT / "src" / parent / f"{name}.py").exists(), package


def test_resources_are_the_checkout_folders_here(monkeypatch) -> None:
    monkeypatch.delenv("PCR_SPECS_DIR", raising=False)
    assert resources.checkout() == ROOT
    assert resources.specs_dir() == ROOT / "specs"
    assert (resources.suites_dir(), resources.kits_dir(), resources.targets_dir()) == \
        (ROOT / "suites", ROOT / "kits", ROOT / "targets")
    monkeypatch.setenv("PCR_SPECS_DIR", "/elsewhere")
    assert resources.specs_dir() == Path("/elsewhere")


def test_suites_run_with_the_kits_own_pytest_configuration() -> None:
    args = resources.suites_pytest_args()
    assert args[args.index("-c") + 1] == str(resources.SUITES_PYTEST_CONFIG)
    assert resources.SUITES_PYTEST_CONFIG.is_file()
    assert args[args.index("--rootdir") + 1] == str(ROOT)  # node ids stay suites/...
