"""Run-time configuration of one register process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pcr_register.faults import Faults

MAX_BODY_BYTES = 5 * 1024 * 1024  # H13 (ENV-008)
MAX_REPORTS = 10_000  # D62 (BAT-012)
MAX_DEPTH = 32  # H00 (ENV-009)


def default_specs_dir() -> Path:
    """Repository-root specs/ relative to this package, overridable with PCR_SPECS_DIR."""
    env = os.environ.get("PCR_SPECS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "specs"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db_path: Path
    specs_dir: Path
    faults: Faults
    environment: str = "Test"  # the reference register is a Test environment (D07, ENV-003)
    validate_responses: bool = False  # PCR_REGISTER_VALIDATE_RESPONSES=1
