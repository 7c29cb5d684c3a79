"""The register's shared state: configuration, storage, organisations, population, specs."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pcr_register.config import Config
from pcr_register.faults import Faults
from pcr_register.identity import Caller, Organisation, load_organisations
from pcr_register.storage import Storage
from pcr_register.validation import SpecError, Specs


def now_utc() -> str:
    """ISO-8601 UTC with milliseconds and Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def today() -> dt.date:
    """The real current date: the 60-day rule and future contract dates use it (RPT-028, RPT-035)."""
    return dt.date.today()


@dataclass(frozen=True)
class Register:
    config: Config
    storage: Storage
    organisations: dict[str, Organisation]
    persons: dict[str, str]  # idCode -> status ("active" | "deceased" | "not-in-use"), in memory for speed
    specs: Specs
    wake: threading.Event = field(default_factory=threading.Event)

    @property
    def faults(self) -> Faults:
        return self.config.faults

    def org_for_owner(self, owner_key: str) -> Organisation | None:
        return self.organisations.get(owner_key)


def open_register(config: Config) -> Register:
    """Load organisations, population and specs; open (or create) the database."""
    organisations = load_organisations(config.data_dir)
    population: dict[str, Any] = json.loads((config.data_dir / "population.json").read_text(encoding="utf-8"))
    storage = Storage(config.db_path)
    storage.load_population(population)
    specs = Specs.load(config.specs_dir)
    from pcr_register.app import OPERATIONS  # the spec is the contract: every operation must be in it

    missing = sorted(op for op in OPERATIONS if not specs.has_request(op))
    if missing:
        raise SpecError(f"{config.specs_dir} has no request schema for {', '.join(missing)}")
    return Register(
        config=config,
        storage=storage,
        organisations=organisations,
        persons=storage.person_statuses(),
        specs=specs,
    )


__all__ = ["Caller", "Register", "now_utc", "open_register", "today"]
