"""Run-unique test data and the target's data pool (docs/interfaces.md §7, §10).

The real test environment cannot be reset and is shared (docs/concepts.md#shared-environment): every loan number, batch reference
and report reference carries the run id, and persons come only from the target's pool.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance.errors import HarnessError
from pcr_conformance.identifiers import is_valid_hetu

# Persons with these tags answer specially (E20, E21, deceased): never hand them out as ordinary borrowers.
_SPECIAL_TAGS = frozenset({"deceased", "unknown", "not-in-use"})


@dataclasses.dataclass(frozen=True)
class PoolPerson:
    id_code: str
    tags: tuple[str, ...] = ()
    date_of_death: str | None = None


@dataclasses.dataclass(frozen=True)
class PoolOrganisation:
    key: str
    name: str
    id_code_type: str
    id_code: str
    country_code: str | None
    certificates: Mapping[str, Mapping[str, str]]  # role -> {"cert", "key"}

    def owner(self) -> dict[str, str]:
        o = {"idCodeType": self.id_code_type, "idCode": self.id_code}
        if self.country_code:
            o["countryCode"] = self.country_code
        return o


@dataclasses.dataclass(frozen=True)
class Pool:
    environment: str
    persons: tuple[PoolPerson, ...]
    organisations: Mapping[str, PoolOrganisation]


def load_pool(path: str | Path) -> Pool:
    """Read and check a pool file; HarnessError names the entry and the rule."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HarnessError(f"pool file {p}: cannot read JSON: {e}") from e
    return parse_pool(data, str(p))


def parse_pool(data: Mapping[str, Any], source: str = "pool") -> Pool:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise HarnessError(f"{source}: field version must be 1 (docs/interfaces.md §7)")
    persons = []
    for i, raw in enumerate(data.get("persons", [])):
        code = raw.get("idCode") if isinstance(raw, dict) else None
        if not isinstance(code, str):
            raise HarnessError(f"{source}: persons[{i}].idCode is missing")
        # Only artificial codes (individual number 900-999) may be used by the suites.
        if not (len(code) == 11 and code[7:10].isdigit() and 900 <= int(code[7:10]) <= 999):
            raise HarnessError(f"{source}: persons[{i}].idCode {code!r} is not an artificial code "
                               f"(individual number 900-999); the suites use only artificial codes")
        if not is_valid_hetu(code):
            raise HarnessError(f"{source}: persons[{i}].idCode {code!r} has a wrong check character")
        persons.append(PoolPerson(code, tuple(raw.get("tags", [])), raw.get("dateOfDeath")))
    orgs = {}
    for key, raw in (data.get("organisations") or {}).items():
        try:
            orgs[key] = PoolOrganisation(key=key, name=raw["name"], id_code_type=raw["idCodeType"],
                                         id_code=raw["idCode"], country_code=raw.get("countryCode"),
                                         certificates=raw.get("certificates", {}))
        except (KeyError, TypeError) as e:
            raise HarnessError(f"{source}: organisations.{key} lacks {e}") from e
    return Pool(environment=data.get("environment", "Test"), persons=tuple(persons), organisations=orgs)


def new_run_id(now: dt.datetime | None = None) -> str:
    """yyyymmddHHMMSS-4hex: sortable, and unique enough for parallel runs started in the same second."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


class TestData:
    """The pcr_data fixture: run-unique references and persons drawn from the pool."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, pool: Pool | None, run_id: str | None = None, share: tuple[int, int] = (0, 1),
                 first: int = 1) -> None:
        self.run_id = run_id or new_run_id()
        self.share = share  # (index, count): this worker's part of the pool, when several share one register
        self.pool = pool or Pool(environment="Test", persons=(), organisations={})
        # Several processes of one run (a load run's Locust workers) share its run id, each numbering from
        # its own `first`, so their loan numbers and references never meet.
        self._counter = itertools.count(first)
        self._lock = threading.Lock()
        self._next_by_tag: dict[str | None, int] = {}

    def _n(self) -> int:
        with self._lock:
            return next(self._counter)

    def loan_number(self) -> dict[str, str]:
        return {"type": "Other", "number": f"PCR-{self.run_id}-{self._n()}"}

    def batch_reference(self, kind: str = "batch") -> str:
        return f"Batch_{kind}_{self.run_id}_{self._n()}"

    def report_reference(self) -> str:
        return f"R-{self.run_id}-{self._n()}"

    def candidates(self, tag: str | None) -> list[str]:
        """Pool persons with `tag`; None = ordinary persons (no deceased/unknown/not-in-use tag)."""
        if tag is None:
            codes = [p.id_code for p in self.pool.persons if not _SPECIAL_TAGS & set(p.tags)]
        else:
            codes = [p.id_code for p in self.pool.persons if tag in p.tags]
        index, count = self.share
        # Disjoint parts per worker, so that no two workers report for the same person at once; a tag with
        # fewer persons than workers is shared whole (those tests may then see each other's loans).
        return codes[index::count] if len(codes) >= count else codes

    def person(self, tag: str | None = "income") -> str:
        """A pool person with that tag: a different one at each call while any are left, then cycling.
        Skips the test (not claimed) when the pool has no such person."""
        codes = self.candidates(tag)
        if not codes:
            import pytest

            pytest.skip(f"not claimed: the data pool has no person tagged {tag!r}")
        with self._lock:
            i = self._next_by_tag.get(tag, 0)
            self._next_by_tag[tag] = i + 1
        return codes[i % len(codes)]

    def people(self, tag: str | None, n: int) -> list[str]:
        """n distinct persons with that tag (skipped when the pool holds fewer)."""
        codes = self.candidates(tag)
        if len(codes) < n:
            import pytest

            pytest.skip(f"not claimed: the data pool has {len(codes)} persons tagged {tag!r}, the test needs {n}")
        return [self.person(tag) for _ in range(n)]

    def date_of_death(self, id_code: str) -> str | None:
        for p in self.pool.persons:
            if p.id_code == id_code:
                return p.date_of_death
        return None
