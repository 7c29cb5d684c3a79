"""The service levels' load run made in the background (load_session.py, issue 12).

The maker's side against the embedded register runs in tests/test_load.py (`pcr-conformance load`, a seeded
fault included) and in every `run` of the register kit; here: when a session makes it so, and a worker that
is not the maker taking the maker's results, never an earlier session's, and naming why when there are none.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from pcr_conformance import embedded, load, load_results, load_session
from pcr_conformance.errors import HarnessError
from pcr_conformance.target import Target


def _target(embedded: bool) -> Target:
    return Target(name="t", embedded=embedded, environment="Test", base_urls={})


def _waiter(folder: Path, uid: str = "run-1", deadline_s: float = 5.0) -> load_session.BackgroundLoad:
    return load_session.BackgroundLoad(folders=[folder], run_uid=uid, deadline_s=deadline_s, maker=False)


def _results(folder: Path) -> None:
    load_results.write(folder / load.RESULTS_FILE, {"options": {"users": 6}, "requests": {
        "GetCreditRegisterExtract": {"count": 12}}, "tally": {"batches_accepted": 2}})


def _handoff(folder: Path, uid: str, error: str = "") -> None:
    (folder / load_session.HANDOFF).write_text(json.dumps({"run": uid, "error": error}), encoding="utf-8")


def test_only_a_timed_headless_run_against_the_embedded_register_goes_to_the_background() -> None:
    assert load_session.in_background(load.SMOKE, _target(embedded=True))
    assert not load_session.in_background(load.SMOKE, _target(embedded=False))  # a shared register's own pace
    for other in ({"master": True}, {"web_ui": True, "run_time_s": 0.0}, {"run_time_s": 0.0}):
        assert not load_session.in_background(dataclasses.replace(load.SMOKE, **other), _target(embedded=True))


def test_a_waiting_worker_takes_the_results_once_the_maker_hands_them_over(tmp_path: Path) -> None:
    def maker() -> None:  # ends while the other worker waits, or before it looks: either way it takes them
        _results(tmp_path)
        _handoff(tmp_path, "run-1")

    thread = threading.Thread(target=maker)
    thread.start()
    run = _waiter(tmp_path).result()
    thread.join()
    assert run.count("GetCreditRegisterExtract") == 12 and run.source == str(tmp_path / load.RESULTS_FILE)


def test_an_earlier_sessions_handoff_is_not_taken_for_this_one(tmp_path: Path) -> None:
    _results(tmp_path)
    _handoff(tmp_path, "an-earlier-run")
    with pytest.raises(HarnessError, match=r"made by worker gw0, did not end within 0.3 s"):
        _waiter(tmp_path, deadline_s=0.3).result()


def test_a_run_the_maker_could_not_make_breaks_the_waiting_worker_with_its_reason(tmp_path: Path) -> None:
    _handoff(tmp_path, "run-1", error="the session's load run could not be made: Locust exited with 2")
    with pytest.raises(HarnessError, match="Locust exited with 2"):
        _waiter(tmp_path).result()


def test_the_maker_hands_over_its_failure_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A register that cannot start: the maker's own tests and the waiting worker get the same reason."""
    def cannot_start(target: Target) -> None:
        raise HarnessError("pcr-register is not installed")

    monkeypatch.setattr(embedded, "start", cannot_start)
    maker = load_session.BackgroundLoad(folders=[tmp_path], run_uid="run-1", deadline_s=5.0, maker=True)
    maker.thread = threading.Thread(target=load_session._make, args=(maker, load.SMOKE, _target(True), "r"))
    maker.thread.start()
    with pytest.raises(HarnessError, match="could not be made: pcr-register is not installed"):
        maker.result()
    with pytest.raises(HarnessError, match="could not be made: pcr-register is not installed"):
        _waiter(tmp_path).result()
