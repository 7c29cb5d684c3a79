"""The certification fuzz run's cache of generated cases (suites/fuzz/_replay.py): a run after a passing one sends
the very same requests without drawing them; a failure during a replay still fails the test with the broken
requirement; nothing is cached for a failing run or a random profile; the key follows everything the draws
depend on."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pcr_conformance import resources, specs
from pcr_conformance.calllog import RESPONSE_HEADING
from suites.fuzz import _replay

REPO = Path(__file__).resolve().parents[1]


class _Case:
    """The attributes of a schemathesis case that a record reads."""

    def __init__(self, body: object, headers: dict[str, str] | None = None) -> None:
        self.method, self.path_parameters, self.cookies, self.query = "POST", {}, {}, {"q": ["1", "2"]}
        self.headers, self.body, self.media_type = headers or {"BatchReference": "B1"}, body, "application/json"


def test_a_record_is_a_snapshot_and_round_trips_through_json() -> None:
    body = {"owner": {"idCode": "x"}, "reports": [1, 2.5, None, "é"]}
    rec = _replay.record(_Case(body), own=True)
    assert rec is not None and rec["own"] is True and rec["body"] == body and rec["query"] == {"q": ["1", "2"]}
    body["owner"]["idCode"] = "changed by the envelope"
    assert rec["body"]["owner"]["idCode"] == "x"  # the envelope put on afterwards does not reach the record
    raw = _replay.record(_Case(b"\xa2l\x90"), own=False)
    assert raw is not None and "body" not in raw and raw["body_base64"] == "omyQ"


@pytest.mark.parametrize("body", [float("nan"), (1, 2), {"k": math.inf}, object()], ids=["nan", "tuple", "inf", "object"])
def test_a_case_json_cannot_hold_exactly_is_not_recorded(body: object) -> None:
    assert _replay.record(_Case(body), own=False) is None


def test_the_rebuilt_case_is_the_recorded_one() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(copy.deepcopy(specs.load_spec("authorities")))
    operation = schema.find_operation_by_id("OrderData")
    for body in ({"a": [1]}, b"\x00\xff"):
        rec = _replay.record(_Case(body), own=False)
        assert rec is not None
        case = _replay.rebuild(operation, rec)
        assert (case.method, case.body, case.media_type, dict(case.headers), case.query) == \
            ("POST", body, "application/json", {"BatchReference": "B1"}, {"q": ["1", "2"]})


def test_the_key_follows_the_spec_the_settings_and_the_seed() -> None:
    import hypothesis
    import schemathesis

    document = specs.load_spec("authorities")
    schema = schemathesis.openapi.from_dict(copy.deepcopy(document))
    settings = hypothesis.settings(max_examples=20, derandomize=True, database=None)
    base = _replay.key("OrderData", document, settings, schema.config)
    assert base == _replay.key("OrderData", copy.deepcopy(document), settings, schema.config)
    changed = copy.deepcopy(document)
    changed["info"]["version"] = "another"
    assert _replay.key("OrderData", changed, settings, schema.config) != base
    assert _replay.key("GetOrderStatus", document, settings, schema.config) != base
    assert _replay.key("OrderData", document, hypothesis.settings(settings, max_examples=21), schema.config) != base
    schema.config.seed = 1
    assert _replay.key("OrderData", document, settings, schema.config) != base


def test_store_load_off_and_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCR_CACHE_DIR", str(tmp_path))
    records = [{"method": "POST", "own": False}]
    _replay.store("k1", records)
    assert _replay.load("k1") == records and _replay.load("k2") is None
    assert [p.name for p in (tmp_path / "fuzz-cases").iterdir()] == ["k1.json"]  # no temporary file left
    (tmp_path / "fuzz-cases" / "k2.json").write_text("[{\"method\": ", encoding="utf-8")
    assert _replay.load("k2") is None  # half a file is no cache
    monkeypatch.setenv("PCR_CACHE_DIR", "off")
    assert _replay.cache_dir() is None and _replay.load("k1") is None
    _replay.store("k3", records)
    assert not (tmp_path / "fuzz-cases" / "k3.json").exists()
    monkeypatch.delenv("PCR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _replay.cache_dir() == tmp_path / "xdg" / "pcr-conformance" / "fuzz-cases"


def _fuzz_order_data(tmp_path: Path, name: str, cache: Path, faults: str = "", profile: str = "",
                     operation: str = "OrderData") -> tuple[int, dict]:
    """One run of test_fuzz[<operation>] against the reference register; its exit code and its attachments."""
    out = tmp_path / name
    cmd = [sys.executable, "-P", "-m", "pytest", str(REPO / "suites" / "fuzz" / "test_authorities.py"),
           *resources.suites_pytest_args(), "-k", f"test_fuzz and {operation}", "--pcr-kit", "authority",
           "--alluredir", str(out / "ar"), "--pcr-output", str(out), "-q", "-p", "no:cacheprovider"]
    if profile:
        cmd += ["--pcr-profile", profile]
    env = {**os.environ, "PCR_CACHE_DIR": str(cache), "PCR_REGISTER_FAULTS": faults}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    [result] = [json.loads(p.read_text()) for p in (out / "ar").glob("*-result.json")]
    files = {a["name"]: (out / "ar" / a["source"]).read_text(encoding="utf-8") for a in result["attachments"]}
    return proc.returncode, {"result": result, "files": files, "output": proc.stdout[-3000:] + proc.stderr}


def _requests(files: dict[str, str]) -> dict[str, str]:
    """The request sections of the generated cases' attachments, by "N. Operation (slot, passing case M" (the
    name up to the answer), without what differs per run (port, case id)."""
    return {name.replace(" (replayed)", "").partition("): ")[0]:
            re.sub(r"127\.0\.0\.1:\d+|X-Schemathesis-TestCaseId: \S+", "", text.partition(RESPONSE_HEADING)[0])
            for name, text in files.items() if "passing case" in name}


def test_a_second_certification_run_sends_the_cached_cases_and_a_failure_still_fails(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, first = _fuzz_order_data(tmp_path, "first", cache)
    assert code == 0, first["output"]
    assert len(list((cache / "fuzz-cases").glob("*.json"))) == 1
    code, second = _fuzz_order_data(tmp_path, "second", cache)
    assert code == 0, second["output"]
    replayed = [n for n in second["files"] if "(replayed)" in n]
    assert replayed and not [n for n in first["files"] if "(replayed)" in n]
    generated = {k: v for k, v in _requests(first["files"]).items() if int(k.split("passing case ")[1]) > 5}
    assert generated and generated.items() <= _requests(second["files"]).items()  # the very same requests

    # A register that breaks ENV-005 fails the replayed run with ENV-005 (no shrinking, the case as sent).
    code, broken = _fuzz_order_data(tmp_path, "broken", cache, faults="missing_correlation_id")
    assert code == 1 and broken["result"]["status"] == "failed", broken["output"]
    assert broken["result"]["statusDetails"]["message"].startswith("AssertionError: ENV-005")
    assert [n for n in broken["files"] if "failing case: ENV-005" in n]


def test_a_failing_run_and_a_random_profile_cache_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, broken = _fuzz_order_data(tmp_path, "broken", cache, faults="missing_correlation_id")
    assert code == 1, broken["output"]
    code, regression = _fuzz_order_data(tmp_path, "regression", cache, profile="regression",
                                        operation="GetOrderStatus")
    assert code == 0, regression["output"]
    assert not list(cache.glob("fuzz-cases/*.json"))


def test_the_commands_keep_hypothesis_storage_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pcr-conformance` process points Hypothesis' storage (its Unicode tables) at the cache, so a fresh
    folder neither pays for them again nor gets a `.hypothesis/` of ours; a folder the user chose stays."""
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    monkeypatch.setenv("PCR_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    draw = ("from pcr_conformance import resources\nresources.share_hypothesis_storage()\n"
            "from hypothesis import given, settings, strategies as st\n"
            "@settings(max_examples=3, database=None)\n@given(st.text(st.characters(codec='utf-8')))\n"
            "def t(s): pass\nt()\n")
    subprocess.run([sys.executable, "-c", draw], cwd=work, check=True, timeout=120)
    assert not (work / ".hypothesis").exists()
    assert any((tmp_path / "cache" / "hypothesis").rglob("codec-*"))
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / "mine"))
    resources.share_hypothesis_storage()
    assert os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] == str(tmp_path / "mine")
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY")
    monkeypatch.setenv("PCR_CACHE_DIR", "off")
    resources.share_hypothesis_storage()
    assert "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ
