"""Kit selection: by actor, API and level, with include/exclude."""

import pytest

from pcr_conformance.errors import HarnessError
from pcr_conformance.kits import available_kits, load_kit, load_requirements


@pytest.fixture(scope="module")
def reqs():
    return load_requirements()


def test_all_five_kits_exist():
    assert set(available_kits()) >= {"lender-reporting", "lender-extract", "authority",
                                     "credit-information-company", "register"}


def test_register_selects_everything(reqs):
    """The register kit selects every register-side requirement; the client ones (CLI-..., side: client) judge
    a stakeholder's system and belong to the client kits only."""
    register_side = {rid for rid, r in reqs.items() if r.side == "register"}
    assert set(load_kit("register").selected(reqs)) == register_side
    assert set(reqs) - register_side == {rid for rid in reqs if rid.startswith("CLI-")}


def test_lender_reporting(reqs):
    s = load_kit("lender-reporting").selected(reqs)
    assert {"RPT-005", "BAT-010", "ENV-001", "IDN-001", "SEC-001"} <= set(s)
    assert not any(r.startswith(("EXT-", "AUT-", "BAN-")) for r in s)


def test_lender_extract(reqs):
    s = load_kit("lender-extract").selected(reqs)
    assert {"EXT-004", "ENV-001", "SEC-001"} <= set(s)
    assert not any(r.startswith(("RPT-", "BAT-", "AUT-", "BAN-")) for r in s)


def test_authority_and_cic(reqs):
    assert {r for r in load_kit("authority").selected(reqs) if r.startswith(("AUT", "BAN", "RPT", "EXT"))} == \
        {r for r in reqs if r.startswith("AUT")}
    assert {r for r in load_kit("credit-information-company").selected(reqs)
            if r.startswith(("AUT", "BAN", "RPT", "EXT"))} == {r for r in reqs if r.startswith("BAN")}


def test_include_exclude_and_levels(tmp_path, reqs):
    p = tmp_path / "k.toml"
    p.write_text('name = "k"\ntitle = "K"\nactors = ["lender"]\napis = ["extract"]\nlevels = ["must"]\n'
                 'include = ["RPT-005"]\nexclude = ["EXT-004"]\ndeciding_levels = ["must", "should"]\n')
    kit = load_kit(p)
    s = kit.selected(reqs)
    assert "RPT-005" in s and "EXT-004" not in s and "EXT-001" in s
    assert all(r.level == "must" for rid, r in s.items() if rid != "RPT-005")
    assert kit.decides(reqs["EXT-001"])


def test_bad_kit_fields_are_named(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('name = "bad"\ntitle = "Bad"\napis = ["reportin"]\n')
    with pytest.raises(HarnessError, match="field apis"):
        load_kit(p)
    with pytest.raises(HarnessError, match="known kits"):
        load_kit("no-such-kit")
