"""The register's variants: `reference` (the default) and `public-minimal` (docs/concepts.md#variants).

`public-minimal` answers as a *different but correct* register would wherever the public material leaves a
value open, so that the kit can be shown to judge a register that is not our twin without false alarms
(issue 11). The rules, identities, roles, batches, storage and fault switches are the same in both variants;
only the answers differ, and every difference is derived from specs/ where the specs can say it:

- every **modelled** error code (errors.yaml `provenance: modelled`) is answered with the variant's own code:
  the code's letter rotated by 13 (D11 -> Q11, H04 -> U04, P01 -> C01, N01 -> A01). Same HTTP status, same
  place (answer or report result), same fieldName. Official and third-party codes (D02, D21, D30, D31, D40,
  E20, E21) are unchanged. The rotation keeps the errorCode pattern `^[A-Z][0-9]{2}$` of the third-party
  error object, and no variant code is a code of errors.yaml (checked when the variant is built);
- members marked `x-provenance: modelled` (on the member, or on the object schema it refers to) inside an
  answer object that public evidence shows (`official` / `third-party`) are left out: e.g. GetBatchStatus answers
  batchStatus, reportCount and reportResults without batchReference, the counts and the times, a report's
  result has no status, the extract has no extractOutcome, lastRepayment or purposeOfUse. A modelled member
  is kept when its value carries an official or third-party error code: the E20/E21 notices are how the
  official outcomes "person not found" and "code not in use" (EXT-011, EXT-013) reach the lender;
- every answer object whose schema is not closed (no `additionalProperties: false`) gets a member we do not
  specify, `registerBuild` (a register may add members: specs/README.md);
- the extract's dates (schemas with `format: date`) are offset date-times at midnight, Finnish time
  (`2026-03-01T00:00:00+02:00`), as the public extract client parses them;
- the batch processing state, modelled as `Processing` (reporting.yaml BatchStatus), is `BeingProcessed`
  (the Incomes Register's "Being processed" state, whose pattern the register reuses);
- a successful answer carries no `statusMessage` (the public client reads none on success).

The flat extract request is accepted in both variants (extract.py); the reference variant adds notice N01.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pcr_register.validation import Specs

ENV_VAR = "PCR_REGISTER_VARIANT"
REFERENCE = "reference"
PUBLIC_MINIMAL = "public-minimal"
VARIANTS = (REFERENCE, PUBLIC_MINIMAL)

PUBLIC = ("official", "third-party")
EXTRA_MEMBER = "registerBuild"
EXTRA_VALUE = "pcr-register public-minimal"
# reporting.yaml BatchStatus: the three Finished literals are seen in client code, "being processed" is not
# public. The variant spells it as the Incomes Register's record status "Being processed".
PROCESSING_LITERALS = {"Processing": "BeingProcessed"}
DATE_OPERATIONS = ("GetCreditRegisterExtract",)  # "the extract's dates" (the reporting side keeps yyyy-MM-dd)
FINNISH_TIME = "Europe/Helsinki"
_ROT13 = str.maketrans(string.ascii_uppercase, string.ascii_uppercase[13:] + string.ascii_uppercase[:13])
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Rewriter = Callable[[str, int, dict[str, Any]], dict[str, Any]]


class UnknownVariant(ValueError):
    """A variant name not in VARIANTS."""


def parse(value: str | None) -> str:
    """The variant name; None or "" is the reference variant; UnknownVariant names the allowed ones."""
    name = (value or REFERENCE).strip()
    if name not in VARIANTS:
        raise UnknownVariant(f"unknown register variant {name!r}: use one of {', '.join(VARIANTS)} "
                             f"({ENV_VAR} or serve --variant)")
    return name


def from_env() -> str:
    return parse(os.environ.get(ENV_VAR))


def variant_code(code: str) -> str:
    """The public-minimal code of a modelled code: its letters rotated by 13 (D11 -> Q11)."""
    return code.translate(_ROT13)


def code_map(specs: Specs) -> dict[str, str]:
    """modelled code -> variant code, from errors.yaml; ValueError if a variant code is a code of errors.yaml."""
    mapping = {code: variant_code(code) for code, entry in specs.error_codes.items() if entry.provenance not in PUBLIC}
    clashes = sorted(set(mapping.values()) & set(specs.error_codes))
    if clashes:
        raise ValueError(f"variant codes {clashes} are codes of errors.yaml: change variant_code")
    return mapping


def offset_date_time(value: str) -> str:
    """yyyy-MM-dd -> midnight of that day in Finnish time with its offset (+02:00 or +03:00)."""
    day = dt.date.fromisoformat(value)
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(FINNISH_TIME))
    return midnight.isoformat()


@dataclass(frozen=True)
class _Walk:
    """One answer's walk: the spec document the schema lives in, and what to do on the way."""

    document: dict[str, Any]
    public_codes: frozenset[str]
    dates: bool

    def resolve(self, node: Any) -> tuple[dict[str, Any], str | None]:
        """(the schema after $refs, the provenance: the nearest mark, the referring node's first)."""
        mark = None
        for _ in range(20):
            if not isinstance(node, dict):
                return {}, mark
            mark = mark or node.get("x-provenance")
            ref = node.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return node, mark
            node = self.document
            for token in ref[1:].strip("/").split("/"):
                node = node.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        return {}, mark

    def member_mark(self, node: Any) -> str | None:
        """Whether the member exists by public evidence: its own mark, else the mark of the object schema it
        refers to. The mark of a scalar schema (an enum's spellings, a pattern) says nothing about the member."""
        own = node.get("x-provenance") if isinstance(node, dict) else None
        if own:
            return own
        schema, mark = self.resolve(node)
        return mark if schema.get("type") == "object" or "properties" in schema else None

    def carries_public_code(self, value: Any) -> bool:
        if isinstance(value, dict):
            return value.get("errorCode") in self.public_codes or any(map(self.carries_public_code, value.values()))
        if isinstance(value, list):
            return any(map(self.carries_public_code, value))
        return False

    def value(self, node: Any, value: Any, inherited: str | None) -> Any:
        schema, mark = self.resolve(node)
        mark = mark or inherited
        if isinstance(value, dict):
            return self.obj(schema, value, mark)
        if isinstance(value, list):
            return [self.value(schema.get("items"), v, mark) for v in value]
        if self.dates and schema.get("format") == "date" and isinstance(value, str) and _DATE.match(value):
            return offset_date_time(value)
        return value

    def obj(self, schema: dict[str, Any], value: dict[str, Any], mark: str | None) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        out: dict[str, Any] = {}
        for name, member in value.items():
            node = properties.get(name)
            if node is None:  # a member the schema does not describe (e.g. a fault's renamed member): as sent
                out[name] = member
                continue
            if mark in PUBLIC and self.member_mark(node) == "modelled" and not self.carries_public_code(member):
                continue
            out[name] = self.value(node, member, mark)
        if schema and schema.get("additionalProperties") is not False:
            out[EXTRA_MEMBER] = EXTRA_VALUE
        return out


def _codes(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _codes(v, mapping) for k, v in value.items()}
        if isinstance(out.get("errorCode"), str) and out["errorCode"] in mapping:
            out["errorCode"] = mapping[out["errorCode"]]
        return out
    if isinstance(value, list):
        return [_codes(v, mapping) for v in value]
    return value


def rewriter(specs: Specs, name: str) -> Rewriter:
    """The function app.py applies to every answer: the identity for the reference variant."""
    if parse(name) == REFERENCE:
        return lambda operation, status, payload: payload
    mapping = code_map(specs)
    public_codes = frozenset(set(specs.error_codes) - set(mapping))

    def rewrite(operation: str, status: int, payload: dict[str, Any]) -> dict[str, Any]:
        schema = specs.response_schema(operation, status)
        out = dict(payload)
        if 200 <= status < 300:
            out.pop("statusMessage", None)  # no statusMessage on success
        if operation == "GetBatchStatus" and out.get("batchStatus") in PROCESSING_LITERALS:
            out["batchStatus"] = PROCESSING_LITERALS[out["batchStatus"]]
        if schema is not None:
            walk = _Walk(schema.bundle, public_codes, dates=operation in DATE_OPERATIONS and status == 200)
            out = walk.value({"$ref": "#" + schema.pointer}, out, None)
        return _codes(out, mapping)

    return rewrite
