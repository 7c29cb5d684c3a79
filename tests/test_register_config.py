"""Where the register finds its spec files, and what it takes from them at start-up (certificate roles, the
operations it serves)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from register_fixtures import REPO

from pcr_register import config, routes
from pcr_register.routes import OPERATIONS, check_specs
from pcr_register.validation import SpecError, Specs

SPECS = REPO / "specs"


@pytest.fixture()
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if pcr_register were installed: no specs/ two levels above the module."""
    monkeypatch.delenv("PCR_SPECS_DIR", raising=False)
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "pcr_register" / "config.py"))
    # The checkout's own pcr_specs is importable in an editable install: look for a name of the test's own.
    monkeypatch.setattr(config, "SPECS_PACKAGE", "pcr_specs_under_test")
    for name in [m for m in sys.modules if m.startswith("pcr_specs_under_test")]:
        monkeypatch.delitem(sys.modules, name)


def _data_package(root: Path, *, namespace: bool) -> Path:
    folder = root / "pcr_specs_under_test"
    folder.mkdir(parents=True)
    if not namespace:
        (folder / "__init__.py").write_text("", encoding="utf-8")
    for spec in SPECS.glob("*.yaml"):
        shutil.copy(spec, folder / spec.name)
    return folder


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCR_SPECS_DIR", str(tmp_path))
    assert config.default_specs_dir() == tmp_path


def test_an_editable_checkout_uses_the_repositorys_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCR_SPECS_DIR", raising=False)
    assert config.default_specs_dir() == SPECS


@pytest.mark.parametrize("namespace", [False, True], ids=["package", "namespace package"])
def test_an_installed_package_uses_pcr_specs(no_checkout: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             namespace: bool) -> None:
    folder = _data_package(tmp_path / "data", namespace=namespace)
    monkeypatch.syspath_prepend(str(tmp_path / "data"))
    assert config.default_specs_dir() == folder
    # Every operation the register must serve; an optional one (a later contract version's) only with its version.
    assert set(Specs.load(folder).requests) >= {op for op, o in OPERATIONS.items() if not o.optional}


def test_no_specs_anywhere_names_the_environment_variable(no_checkout: None) -> None:
    with pytest.raises(config.SpecsNotFound, match="PCR_SPECS_DIR"):
        config.default_specs_dir()


def test_a_data_package_without_the_spec_files_is_not_taken(no_checkout: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data" / "pcr_specs_under_test").mkdir(parents=True)
    (tmp_path / "data" / "pcr_specs_under_test" / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "data"))
    with pytest.raises(config.SpecsNotFound, match="PCR_SPECS_DIR"):
        config.default_specs_dir()


# -- certificate roles and operations from the specs ------------------------------------------------------

def test_certificate_roles_come_from_info_of_each_family() -> None:
    specs = Specs.load(SPECS)
    assert specs.certificate_roles == {"reporting": "reporting", "extract": "using-data", "authorities": "authority",
                                       "voluntary-ban": "credit-information-company"}
    check_specs(specs)


def test_the_family_of_an_operation_is_its_spec_files_stem() -> None:
    specs = Specs.load(SPECS)
    served = routes.served(specs)
    assert {op: specs.families[op] for op in served} == {op: o.family for op, o in served.items()}


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    shutil.copytree(SPECS, folder)
    return folder


def test_a_family_without_a_certificate_role_does_not_start(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "voluntary-ban.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  x-certificate-role: credit-information-company\n", ""),
                    encoding="utf-8")
    with pytest.raises(SpecError, match=r"no info.x-certificate-role in voluntary-ban.yaml"):
        check_specs(Specs.load(folder))


def test_an_operation_missing_from_the_specs_does_not_start(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "authorities.yaml"
    text = path.read_text(encoding="utf-8")
    assert "operationId: GetDistribution" in text
    path.write_text(text.replace("operationId: GetDistribution", "operationId: GetDistributionRenamed"),
                    encoding="utf-8")
    with pytest.raises(SpecError, match="no request schema for GetDistribution"):
        check_specs(Specs.load(folder))
