"""Scripted register behaviour for client tests (docs/client-testing.md#scenarios): a small TOML file telling
`pcr-conformance proxy` to answer the way a real register sometimes does, so a stakeholder exercises its error
handling on purpose.

The proxy plays the scenario in front of the register, so it works against the embedded reference register and
any other target alike, and the register itself stays unchanged:

- `partial_every = N`: the borrower of every N-th report of a submission is replaced, on its way upstream, by a
  pool person the register does not know, so the register itself rejects it with E20 and the batch ends
  FinishedPartialSuccess (what the client sent is what the recording holds);
- `e20_for = [codes]`: the same for every report whose borrower is one of these codes;
- `processing_s = N`: GetBatchStatus answers Processing for N seconds after a batch was accepted;
- `[rate_limit] every, retry_after_s`: every `every`-th request is answered 429 with Retry-After;
- `[outage] start_s, length_s, retry_after_s`: from start_s after the first request, for length_s, every request
  is answered 503 with Retry-After;
- `slow_extract_s = N`: an extract answer is held N seconds.

Each element names the client requirements it exercises (EXERCISES); the proxy prints them when it starts.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from pcr_conformance.errors import HarnessError

EXERCISES: dict[str, tuple[str, ...]] = {
    "partial_every": ("CLI-006", "CLI-008", "CLI-004"),
    "e20_for": ("CLI-006", "CLI-008"),
    "processing_s": ("CLI-004", "CLI-005"),
    "rate_limit": ("CLI-010",),
    "outage": ("CLI-010",),
    "slow_extract_s": ("CLI-011",),  # the extract still comes; a client with a too-short timeout retries
}


@dataclasses.dataclass(frozen=True)
class Throttle:
    every: int = 0  # 0 = off
    retry_after_s: int = 1


@dataclasses.dataclass(frozen=True)
class Outage:
    start_s: float = 0.0
    length_s: float = 0.0  # 0 = off
    retry_after_s: int = 1

    def covers(self, elapsed_s: float) -> bool:
        return self.length_s > 0 and self.start_s <= elapsed_s < self.start_s + self.length_s


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str = "none"
    description: str = ""
    partial_every: int = 0
    e20_for: tuple[str, ...] = ()
    processing_s: float = 0.0
    rate_limit: Throttle = Throttle()
    outage: Outage = Outage()
    slow_extract_s: float = 0.0
    source: str = ""

    def active(self) -> list[str]:
        """The elements this scenario switches on, in EXERCISES order."""
        on = {"partial_every": self.partial_every > 0, "e20_for": bool(self.e20_for),
              "processing_s": self.processing_s > 0, "rate_limit": self.rate_limit.every > 0,
              "outage": self.outage.length_s > 0, "slow_extract_s": self.slow_extract_s > 0}
        return [k for k in EXERCISES if on[k]]

    def describe(self) -> str:
        parts = [f"{k} (exercises {', '.join(EXERCISES[k])})" for k in self.active()]
        return f"scenario {self.name}: " + ("; ".join(parts) if parts else "none: every request is forwarded as is")


NO_SCENARIO = Scenario()


def load_scenario(path: str | Path) -> Scenario:
    """The scenario file; HarnessError naming the field, the rule and the fix."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"scenario {p}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HarnessError(f"scenario {p}: not readable TOML ({e})") from None
    known = {f.name for f in dataclasses.fields(Scenario)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise HarnessError(f"scenario {p}: field {unknown[0]}: unknown; known fields are {sorted(known)}")

    def number(table: dict[str, Any], field: str, default: float, where: str, *, integer: bool = False) -> Any:
        v = table.get(field, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or (integer and not isinstance(v, int)):
            kind = "a whole number" if integer else "a number"
            raise HarnessError(f"scenario {p}: field {where}{field}: must be {kind} >= 0, got {v!r}")
        return v

    def table(field: str) -> dict[str, Any]:
        v = data.get(field, {})
        if not isinstance(v, dict):
            raise HarnessError(f"scenario {p}: field {field}: must be a table ([{field}])")
        return v

    codes = data.get("e20_for", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise HarnessError(f"scenario {p}: field e20_for: must be a list of personal identity codes")
    rl, out = table("rate_limit"), table("outage")
    return Scenario(
        name=str(data.get("name") or p.stem), description=str(data.get("description", "")),
        partial_every=number(data, "partial_every", 0, "", integer=True), e20_for=tuple(codes),
        processing_s=float(number(data, "processing_s", 0, "")),
        rate_limit=Throttle(number(rl, "every", 0, "rate_limit.", integer=True),
                            number(rl, "retry_after_s", 1, "rate_limit.", integer=True)),
        outage=Outage(float(number(out, "start_s", 0, "outage.")), float(number(out, "length_s", 0, "outage.")),
                      number(out, "retry_after_s", 1, "outage.", integer=True)),
        slow_extract_s=float(number(data, "slow_extract_s", 0, "")), source=str(p))
