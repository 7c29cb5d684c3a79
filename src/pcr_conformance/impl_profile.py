"""Implementation profiles (profiles/<name>.toml): the values a register chose where the public material is
silent (docs/concepts.md#implementation-profiles).

Not to be confused with the Hypothesis profiles of `--profile certification|regression` (profiles.py): an
*implementation* profile describes a register, a Hypothesis profile describes how the fuzz tests run.

A profile holds the register's error code for each rule whose code is modelled (keyed by the model's code in
specs/errors.yaml, which names the rule) and a few values. A test asserts a value exactly only when the
profile states it; otherwise it asserts the public part and records what it saw (judging.observe), which
`pcr-conformance profile --learn` turns into a draft profile. `profiles/reference.toml` is our register's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import resources, specs
from pcr_conformance.errors import HarnessError

#: The values a profile may state, with their type and meaning (a learned draft writes the same keys).
VALUES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "processing_literal": (str, "GetBatchStatus batchStatus while a batch is being processed"),
    "extract_date_format": (str, "the extract's dates: date (yyyy-MM-dd) or date-time (offset date-time)"),
    "extract_success_status_message": (str, "statusMessage of a successful extract ('' = absent)"),
    "batch_accepted_status_message": (str, "statusMessage of the 202 answer to a submitted batch ('' = absent)"),
    "max_body_bytes": (int, "the largest request body accepted (ENV-008)"),
    "max_reports_per_batch": (int, "the most reports one batch may hold (BAT-012)"),
    "max_nesting_depth": (int, "the deepest JSON nesting accepted (ENV-009)"),
    "batch_deadline_s": ((int, float), "the time within which a batch reaches a final state (BAT-010)"),
    # Service levels under load (PRF-..., docs/load.md); service_levels.DEFAULTS when the profile is silent.
    "extract_p95_ms": ((int, float), "95th percentile of the extract's response time under load, in ms (PRF-001)"),
    "batch_final_s": ((int, float), "a batch of up to 1 000 reports is final within this under load (PRF-002)"),
}
EXTRACT_DATE_FORMATS = ("date", "date-time")
_CODE = re.compile(r"^[A-Z][0-9]{2}$")
_FIELDS = {"name", "description", "error_codes", "values"}


@dataclasses.dataclass(frozen=True)
class ImplementationProfile:
    """One register's implementation-defined values; empty = nothing stated (assert only the public part)."""

    name: str = ""
    description: str = ""
    error_codes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # model code -> register's code
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    def code_for(self, model_code: str) -> str | None:
        return self.error_codes.get(model_code)

    def value(self, key: str) -> Any:
        """The stated value, or None when the profile is silent on `key`."""
        if key not in VALUES:
            raise KeyError(f"unknown implementation-profile value {key!r}; known: {sorted(VALUES)}")
        return self.values.get(key)


NO_PROFILE = ImplementationProfile()


def profile_dirs() -> list[Path]:
    """profiles/ of the current folder (a register team's own), then the profiles shipped with the kit."""
    here = Path.cwd() / "profiles"
    shipped = resources.profiles_dir()
    return [here, shipped] if here.is_dir() and here.resolve() != shipped.resolve() else [shipped]


def find_profile(name_or_path: str | os.PathLike[str]) -> Path:
    raw = str(name_or_path)
    if raw.endswith(".toml"):
        if Path(raw).is_file():
            return Path(raw).resolve()
        raise HarnessError(f"implementation profile file {raw} does not exist")
    for d in profile_dirs():
        if (d / f"{raw}.toml").is_file():
            return (d / f"{raw}.toml").resolve()
    known = sorted({p.stem for d in profile_dirs() for p in d.glob("*.toml")})
    raise HarnessError(f"implementation profile {raw!r} not found (profiles/<name>.toml); known: "
                       f"{', '.join(known) or 'none'}")


def load_profile(name_or_path: str | os.PathLike[str] | None) -> ImplementationProfile:
    """The profile named (profiles/<name>.toml) or at a path; None or "" = no profile. HarnessError naming the
    field and the fix for a bad file."""
    if not name_or_path:
        return NO_PROFILE
    path = find_profile(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise HarnessError(f"{path}: not valid TOML: {e}") from e
    return parse_profile(data, path)


def parse_profile(data: Mapping[str, Any], path: Path) -> ImplementationProfile:
    def err(field: str, msg: str) -> HarnessError:
        return HarnessError(f"{path}: field {field}: {msg}")

    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise err(unknown[0], f"unknown field; known fields are {sorted(_FIELDS)}")
    model_codes = specs.load_errors()
    codes = data.get("error_codes", {})
    if not isinstance(codes, dict):
        raise err("error_codes", "must be a table [error_codes] of MODEL_CODE = \"REGISTER_CODE\"")
    for model, code in codes.items():
        if model not in model_codes:
            raise err(f"error_codes.{model}", "not a code of specs/errors.yaml (the key names the rule by the "
                                              "model's code)")
        if not isinstance(code, str) or not _CODE.match(code):
            raise err(f"error_codes.{model}", f"must be a code like \"D13\", got {code!r}")
    values = data.get("values", {})
    if not isinstance(values, dict):
        raise err("values", "must be a table [values]")
    for key, value in values.items():
        if key not in VALUES:
            raise err(f"values.{key}", f"unknown value; known: {sorted(VALUES)}")
        kind = VALUES[key][0]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise err(f"values.{key}", f"wrong type {type(value).__name__} ({VALUES[key][1]})")
    if values.get("extract_date_format", "date") not in EXTRACT_DATE_FORMATS:
        raise err("values.extract_date_format", f"must be one of {EXTRACT_DATE_FORMATS}")
    return ImplementationProfile(name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
                                 error_codes=dict(codes), values=dict(values), source=str(path))


def draft_toml(name: str, codes: Mapping[str, tuple[str, str]], values: Mapping[str, tuple[Any, str]],
               header: str) -> str:
    """A draft profile: {model code: (code seen, test)} and {key: (value seen, test)}, each with the test that
    saw it as a comment, for a register team to review."""
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    lines += [f"name = {_toml(name)}", f"description = {_toml('draft learned by pcr-conformance profile --learn')}",
              "", "[error_codes]  # the model's code (specs/errors.yaml) = the code the register answered"]
    for model in sorted(codes):
        code, test = codes[model]
        lines.append(f"{model} = {_toml(code)}  # seen by {test}")
    lines += ["", "[values]"]
    for key in sorted(values):
        value, test = values[key]
        lines.append(f"{key} = {_toml(value)}  # {VALUES[key][1]}; seen by {test}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
