"""Run-time configuration of one register process."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from pcr_register.faults import Faults

MAX_BODY_BYTES = 5 * 1024 * 1024  # H13 (ENV-008)
MAX_REPORTS = 10_000  # D62 (BAT-012)
MAX_DEPTH = 32  # H00 (ENV-009)
MAX_HEADER_BYTES = 16 * 1024  # request line + headers; larger: 431 (ENV-019)
READ_DEADLINE_ENV = "PCR_REGISTER_READ_DEADLINE_S"
READ_DEADLINE_S = 10.0  # headers, and the body, must arrive within this (ENV-020)
NO_DEADLINE_BOUND_S = 120.0  # fault no_read_deadline: "forever", bounded so that a test cannot hang


def read_deadline_s(faults: Faults) -> float:
    """The header and body read deadline: $PCR_REGISTER_READ_DEADLINE_S (default 10 s); 120 s under the fault."""
    if faults.on("no_read_deadline"):  # breaks ENV-020
        return NO_DEADLINE_BOUND_S
    try:
        value = float(os.environ.get(READ_DEADLINE_ENV, READ_DEADLINE_S))
    except ValueError:
        return READ_DEADLINE_S
    return value if value > 0 else READ_DEADLINE_S


SPECS_ENV_VAR = "PCR_SPECS_DIR"
SPECS_PACKAGE = "pcr_specs"  # the installed data package that holds specs/ in a wheel
SPECS_MARKER = "components.yaml"


class SpecsNotFound(FileNotFoundError):
    """No folder of spec files was found."""


def default_specs_dir() -> Path:
    """The folder of the spec files:

    1. $PCR_SPECS_DIR if set (not checked here: a wrong value is reported by whoever reads it);
    2. the repository's specs/ when it holds components.yaml (an editable checkout: src/pcr_register/../../specs);
    3. the installed data package pcr_specs (the same files, mapped into the wheel);
    4. else SpecsNotFound, naming PCR_SPECS_DIR.
    """
    env = os.environ.get(SPECS_ENV_VAR)
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "specs"
    if (checkout / SPECS_MARKER).is_file():
        return checkout
    installed = _installed_specs_dir()
    if installed is not None:
        return installed
    raise SpecsNotFound(f"no spec files found: neither {checkout} nor an installed {SPECS_PACKAGE} package holds "
                        f"{SPECS_MARKER}; set {SPECS_ENV_VAR} to the folder of the spec files")


def _installed_specs_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec(SPECS_PACKAGE)
    except (ImportError, ValueError):
        return None
    # A regular or a namespace package (an editable install may add a location of its own); only a folder on
    # the file system will do (the register globs it), not one inside a zip.
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(location)
        if (folder / SPECS_MARKER).is_file():
            return folder
    return None


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db: str  # the path of an SQLite file, or a postgresql:// URL (storage.open_storage)
    specs_dir: Path
    faults: Faults
    environment: str = "Test"  # the reference register is a Test environment (D07, ENV-003)
    validate_responses: bool = False  # PCR_REGISTER_VALIDATE_RESPONSES=1
    variant: str = "reference"  # PCR_REGISTER_VARIANT / serve --variant: reference | public-minimal (variant.py)
