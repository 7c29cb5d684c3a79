"""How this session judges: the contract reading (readings.py) and the target's implementation profile
(impl_profile.py), plus what the running test observed.

The plugin configures it once per session from the target (`contract`, `implementation_profile`); expect.py and
contract.py ask it which value to assert. Without configuration (unit tests, the validator) the reading is
`reference` with no profile: the model's values, as before the readings existed.

Two things a test leaves here, drained by the plugin after each test and carried on its report:
- observations: an implementation-defined value the register showed (an error code for a rule, the processing
  literal, the extract date format), the raw material of `profile --learn` and of summary.json's
  `observed_values`;
- informative findings: a modelled requirement the answer did not meet under the public reading (e.g. a
  member only our model requires). They never stop the test and never decide the verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pcr_conformance import readings, specs
from pcr_conformance.impl_profile import NO_PROFILE, ImplementationProfile


@dataclasses.dataclass(frozen=True)
class Judging:
    reading: str = "reference"
    profile: ImplementationProfile = NO_PROFILE


_current = Judging()
_observed: list[dict[str, Any]] = []
_findings: list[dict[str, str]] = []


def configure(reading: str, profile: ImplementationProfile = NO_PROFILE) -> None:
    global _current
    _current = Judging(readings.check_reading(reading), profile)


def current() -> Judging:
    return _current


def public() -> bool:
    return _current.reading == "public"


def expected_code(model_code: str) -> tuple[str | None, str]:
    """(the code to assert, its basis) for a rule the model gives `model_code`:
    ("D02", "public") for a public code; (the profile's code, "profile") when the profile states one;
    ("D13", "model") under the reference reading; (None, "unstated") under the public reading, where only the
    public part is asserted and the code seen is recorded. A code a later contract version renamed is asserted
    as that version names it (specs.code_in_force)."""
    model_code = specs.code_in_force(model_code)
    if readings.is_public_code(model_code):
        return model_code, "public"
    stated = _current.profile.code_for(model_code)
    if stated:
        return stated, "profile"
    if _current.reading == "reference":
        return model_code, "model"
    return None, "unstated"


def value(key: str, model: Any) -> tuple[Any, str]:
    """(the value to use, its basis): the profile's when stated, else the model's (`model`)."""
    stated = _current.profile.value(key)
    return (stated, "profile") if stated is not None else (model, "model")


def code_requirement(requirement: str, basis: str) -> str:
    """Which requirement a wrong code fails: the test's own when it is modelled or the code was public or stated
    by the profile; ENV-024 (implementation-defined values) when only the model gave the code."""
    if basis == "model" and readings.is_public_requirement(requirement):
        return "ENV-024"
    return requirement


def observe(key: str, value: Any, detail: str = "") -> None:
    """Record an implementation-defined value the register showed (`error_codes.D13`, `processing_literal`)."""
    entry = {"key": key, "value": value, "detail": detail}
    if entry not in _observed:
        _observed.append(entry)


def informative(requirement: str, operation: str, expected: Any, actual: Any) -> None:
    """A modelled requirement not met under the public reading: recorded, the test goes on."""
    finding = {"requirement": requirement, "message": f"{requirement} {operation}: expected {expected}, actual {actual}"}
    if finding not in _findings:
        _findings.append(finding)


def drain() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The observations and findings since the last drain (one test's), emptied."""
    observed, findings = list(_observed), list(_findings)
    _observed.clear()
    _findings.clear()
    return observed, findings
