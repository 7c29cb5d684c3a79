"""The register's shared state: configuration, storage, organisations, population, specs."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pcr_register.config import Config
from pcr_register.faults import Faults
from pcr_register.identity import Organisation, load_organisations
from pcr_register.storage import Storage, open_storage
from pcr_register.validation import Specs, load_specs


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
    """Load organisations, population and specs; open (or create) the database and migrate its schema.

    Whether the specs cover every operation the register serves is checked by routes.check_specs (the
    operation table lives there, above the handlers, which need this module).
    """
    organisations = load_organisations(config.data_dir)
    population: dict[str, Any] = json.loads((config.data_dir / "population.json").read_text(encoding="utf-8"))
    storage = open_storage(config.db)
    storage.load_population(population)
    specs = load_specs(config.specs_dir)
    return Register(
        config=config,
        storage=storage,
        organisations=organisations,
        persons=storage.person_statuses(),
        specs=specs,
    )


__all__ = ["Register", "open_register"]
