"""The corpus runner: one parametrized test per case of suites/corpus/<api>/<operationId>.yaml.

The case format is suites/corpus/corpus.schema.json. A case is one request with one expected answer; for the
five submitting operations the runner polls GetBatchStatus and checks the final state and the per-report
error codes. Every answer is also checked against the spec (ENV-014) and, when it is an error, for the error
object (ENV-005) and for leaked internals (SEC-011). Test id: `<operationId>::<case id>`.
"""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pcr_conformance import catalogue, contract, expect, identifiers, messages, readings
from pcr_conformance import suite as s

CORPUS_DIR = Path(__file__).resolve().parent

_ABSENT = object()
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader where PyYAML has it: faster start-up
_DATE = re.compile(r"^\$(today|utc)(?:([+-])(\d+)d)?$")


def _load() -> list[Any]:
    params = []
    for path in sorted(CORPUS_DIR.glob("*/*.yaml")):
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
        operation, api = doc["operation"], doc["api"]
        for case in doc["cases"]:
            verifies = list(case["verifies"])
            codes = [case["expect"].get("error_code"), *case["expect"].get("report_errors", [])]
            if any(c and not readings.is_public_code(c) for c in codes) and "ENV-024" not in verifies:
                verifies.append("ENV-024")  # a modelled code: the value of the implementation profile
            marks = [pytest.mark.verifies(*verifies), pytest.mark.capability(api)]
            if case.get("capability"):
                marks.append(pytest.mark.capability(case["capability"]))
            if not case.get("setup"):
                marks.extend(s.read_only_marks(operation))
            params.append(pytest.param(operation, api, case, id=f"{operation}::{case['id']}", marks=marks))
    return params


class Filler:
    """Replaces the placeholders of one case; the same placeholder text gives the same value in the case."""

    def __init__(self, data: Any, clients: Any, client: Any) -> None:
        self.data = data
        self.clients = clients
        self.client = client
        self.memo: dict[str, Any] = {}

    def fill(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self.placeholder(value)
        if isinstance(value, list):
            return [v for v in (self.fill(x) for x in value) if v is not _ABSENT]
        if isinstance(value, Mapping):
            if "$template" in value:
                return self.template(value)
            out = {}
            for k, v in value.items():
                filled = self.fill(v)
                if filled is not _ABSENT:
                    out[k] = filled
            return out
        return value

    def template(self, value: Mapping[str, Any]) -> dict[str, Any]:
        name = value["$template"]
        builder = getattr(messages, name)
        args = dict(self.fill(value.get("$args", {})))
        params = inspect.signature(builder).parameters
        defaults = {"loan_number": "$loan_number", "borrower": "$person:income"}
        for pname, token in defaults.items():
            if pname in params and pname not in args:
                args[pname] = self.placeholder(token)
        if "report_reference" in params and "report_reference" not in args:
            args["report_reference"] = self.data.report_reference()  # fresh for every templated report
        built = builder(**args)
        rest = {k: v for k, v in value.items() if k not in ("$template", "$args")}
        return _deep_merge(built, rest, self)

    def placeholder(self, token: str) -> Any:
        if token == "$absent":
            return _ABSENT
        m = _DATE.match(token)
        if m:
            kind, sign, days = m.group(1), m.group(2), int(m.group(3) or 0)
            day = dt.date.today() + dt.timedelta(days=days if sign != "-" else -days)
            return day.isoformat() if kind == "today" else f"{day.isoformat()}T00:00:00Z"
        if token.startswith("$owner"):
            owner = self.client.owner
            if token == "$owner":
                return owner
            return owner.get(token.split(".", 1)[1], "")
        if token == "$other_owner":
            return self.clients.get("second_lender").owner
        if token in self.memo:
            return copy.deepcopy(self.memo[token])
        name, _, rest = token[1:].partition(":")
        if name == "loan_number":
            v: Any = self.data.loan_number()
        elif name == "report_reference":
            v = self.data.report_reference()
        elif name == "batch_reference":
            v = self.data.batch_reference("corpus")
        elif name == "person":
            tag = rest.split(":")[0]
            v = self.data.person(tag or "income")
        elif name == "invalid_hetu":
            v = identifiers.with_wrong_check_character(self.data.person("income"))
        elif name == "malformed_hetu":
            v = self.data.person("income")[:6] + "Q" + self.data.person("income")[7:]
        elif name == "impossible_date_hetu":  # IDN-001: 31 February with a check character that fits it
            v = identifiers.invalid_hetu_variants(self.data.person("income"))["impossible_date"]
        elif name == "uuid":
            v = str(uuid.uuid4())
        elif name == "business_id":
            v = _business_id(self.data)
        elif name == "invalid_business_id":
            v = identifiers.business_id_with_wrong_check_digit(_business_id(self.data))
        else:
            raise ValueError(f"unknown corpus placeholder {token!r} (see corpus.schema.json)")
        self.memo[token] = v
        return copy.deepcopy(v)


def _business_id(data: Any) -> str:
    n = int(data.report_reference().rsplit("-", 1)[1])
    body = 2_000_000 + (n * 7919) % 7_000_000
    while identifiers.business_id_check_digit(f"{body:07d}") is None:
        body += 1
    return identifiers.business_id(f"{body:07d}")


def _deep_merge(base: Any, over: Mapping[str, Any], filler: Filler) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and "$template" not in v and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v, filler)
            continue
        filled = filler.fill(v)
        if filled is _ABSENT:
            out.pop(k, None)
        else:
            out[k] = filled
    return out


def _submit_step(step: Mapping[str, Any], filler: Filler, clients: Any, default_slot: str,
                 requirement: str) -> None:
    operation = step["submit"]
    client = clients.get(step.get("identity", default_slot))
    step_filler = filler if client is filler.client else _shared(filler, client)
    body = _deep_merge(client.envelope(), step["body"], step_filler)
    ref = step_filler.fill(step.get("batch_reference", "$batch_reference:setup-" + str(id(step))))
    resp = client.call(operation, body, headers={"BatchReference": ref})
    expect.status(resp, 202, "RPT-002", f"{operation} (setup of the case)")
    status = client.wait_batch(ref)
    # A setup batch is a plain valid batch: anything but FinishedSuccess breaks the batch rule, not the case's.
    expect.batch_state(status, "FinishedSuccess", "BAT-002")


def _shared(filler: Filler, client: Any) -> Filler:
    other = Filler(filler.data, filler.clients, client)
    other.memo = filler.memo  # one case, one set of values, whoever sends them
    return other


def _field_named(items: list[Any], field: str) -> bool:
    want = field.lower().strip("/")
    for item in items:
        name = str(item.get("fieldName", "")).lower() if isinstance(item, dict) else ""
        parts = [p for p in re.split(r"[/.\[\]]", name) if p]
        if name.strip("/") == want or want in parts:
            return True
    return False


@pytest.mark.parametrize(("operation", "api", "case"), _load())
def test_corpus(operation: str, api: str, case: dict[str, Any], pcr_clients: Any, pcr_data: Any) -> None:
    """One corpus case: the request gets the documented answer, and a batch the documented per-report result."""
    try:
        import allure

        allure.dynamic.description(case["description"])
        allure.dynamic.parameter("case", case["id"])  # the id, not the whole case mapping
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        pass
    requirement = case["verifies"][0]
    slot = case["identity"]
    client = pcr_clients.get(slot)
    filler = Filler(pcr_data, pcr_clients, client)
    where = f"{operation} case {case['id']}"

    for step in case.get("setup", []):
        _submit_step(step, filler, pcr_clients, slot, requirement)

    body = _deep_merge(client.envelope(), case["request"], filler)
    headers: dict[str, str] = {}
    if operation in catalogue.submit_operations():
        headers["BatchReference"] = filler.placeholder("$batch_reference")
    for k, v in (case.get("headers") or {}).items():
        filled = filler.fill(v)
        if filled is _ABSENT:
            headers.pop(k, None)
        else:
            headers[k] = filled
    resp = client.call(operation, body, headers=headers)

    exp = case["expect"]
    expect.status(resp, exp["status"], requirement, where)
    if resp.status_code >= 400:
        contract.error_shape(resp, where)
        contract.no_internals(resp, where)
    if "error_code" in exp:
        expect.error_code(resp, exp["error_code"], requirement, where)
    if "field" in exp:
        items = (expect.body_of(resp) or {}).get("errorResponses") or []
        expect.that(_field_named(items, exp["field"]), requirement, where,
                    f"an error naming {exp['field']!r}", [i.get("fieldName") for i in items if isinstance(i, dict)])
    contract.conforms(resp, operation)
    if "body" in exp:
        # Members only our model states are checked as modelled (ENV-023), the rest as the case's requirement.
        public, modelled = readings.split_expected(filler.fill(exp["body"]),
                                                   readings.modelled_paths(operation, resp.status_code))
        actual = s.as_public_dates(expect.body_of(resp), operation)
        mismatch = s.subset_mismatch(actual, public or {})
        expect.that(mismatch is None, requirement, where, f"a body containing {public}", mismatch)
        if modelled is not None:
            found = s.subset_mismatch(actual, modelled)
            s.modelled_value(found is None, where, f"a body containing {modelled}", found)

    if "batch_state" in exp or "report_errors" in exp:
        status = client.wait_batch(headers["BatchReference"])
        if "batch_state" in exp:
            expect.batch_state(status, exp["batch_state"], requirement)
        wanted = exp.get("report_errors") or []
        rejected = [r for r in status.get("reportResults") or [] if expect.is_rejected(r)]
        found = sorted({c for r in rejected for c in s.codes_of(r)})
        # Each wanted code by the session's judging (expect.carries_code): exact, or the rule's public part.
        missing = [c for c in wanted if not expect.carries_code(found, c, requirement, f"GetBatchStatus of {where}")]
        expect.that(not missing, requirement, f"GetBatchStatus of {where}",
                    f"rejected reports carrying {wanted}",
                    f"codes {found or 'none'} in {[(r.get('reportReference'), s.codes_of(r)) for r in rejected]}")
