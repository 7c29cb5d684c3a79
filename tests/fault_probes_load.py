"""Probes of the service-level faults (src/pcr_register/load_faults.py, PRF-...), for test_register_faults.py:
each sends the few requests that show the fault over HTTPS, without a load run (the load kit's own proof is
tests/test_load.py and the self-test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from register_fixtures import Api, Running, lump_sum_loan, people, unique, with_api

WHO = people()


def _loan() -> dict[str, Any]:
    return lump_sum_loan(unique("L"), WHO.active[3], unique("R"))


def _extract_is_slow(reg: Running) -> bool:
    def go(api: Api) -> bool:
        started = time.monotonic()
        assert api.extract(WHO.active[3]).status_code == 200
        return time.monotonic() - started >= 1.2
    return with_api(reg, "lender-a", go)


def _final_within_3_s(reg: Running) -> bool:
    def go(api: Api) -> bool:
        reference = api.submit("AddLoans", "loans", [_loan()])
        end = time.monotonic() + 3
        while time.monotonic() < end:
            status = api.post("GetBatchStatus", api.envelope(batchReference=reference)).json()["batchStatus"]
            if status.startswith("Finished"):
                return True
            time.sleep(0.1)
        return False
    return with_api(reg, "lender-a", go)


def _statuses_of_a_burst(reg: Running) -> list[int]:
    def go(api: Api) -> list[int]:
        number = {"type": "Other", "number": unique("N")}
        return sorted({api.get_loan(number).status_code for _ in range(20)})
    return with_api(reg, "lender-a", go)


def _three_batches_known(reg: Running) -> list[int]:
    def go(api: Api) -> list[int]:
        references = [api.submit("AddLoans", "loans", [_loan()]) for _ in range(3)]
        return [api.post("GetBatchStatus", api.envelope(batchReference=r)).status_code for r in references]
    return with_api(reg, "lender-a", go)


PROBES_LOAD: dict[str, Callable[[Running], Any]] = {
    "slow_extract": _extract_is_slow,
    "slow_batch_final": _final_within_3_s,
    "server_error_under_load": _statuses_of_a_burst,
    "batch_lost_under_load": _three_batches_known,
}
