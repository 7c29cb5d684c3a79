"""`pcr-conformance requirements`: the register with the tests verifying each requirement."""

from __future__ import annotations

import json

import pytest

from pcr_conformance import kits
from pcr_conformance.cli import main


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["requirements", "--json"]) == 0
    return json.loads(out.getvalue())


def test_every_requirement_is_listed_with_its_tests(rows: list[dict]) -> None:
    assert [r["id"] for r in rows] == list(kits.load_requirements())
    tested = [r for r in rows if r["tests"]]
    assert tested, "no test verifies any requirement"
    assert all("::" in node for r in tested for node in r["tests"])


def test_uncovered_lists_must_requirements_without_test_or_reason(rows: list[dict],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    expected = sorted(r["id"] for r in rows if r["level"] == "must" and not r["tests"] and not r["not_tested"])
    code = main(["requirements", "--uncovered", "--json"])
    shown = sorted(r["id"] for r in json.loads(capsys.readouterr().out))
    assert shown == expected
    assert code == (1 if expected else 0)


def test_kit_selects_its_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--kit", "lender-extract", "--json"]) == 0
    ids = {r["id"] for r in json.loads(capsys.readouterr().out)}
    selected = set(kits.load_kit("lender-extract").selected(kits.load_requirements()))
    assert ids == selected


def test_unknown_kit_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["requirements", "--kit", "no-such-kit"]) == 2
    assert "no-such-kit" in capsys.readouterr().err
