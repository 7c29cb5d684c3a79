"""The offline validator and the reference register agree on every offline rule (tests/agreement/*.yaml).

Every case of the agreement data runs through (a) `pcr_conformance.validate.validate_body` and (b) the real
register started as a process (one for the module). Both must give the same verdict and the same set of
(JSON pointer, error code) pairs, and the case's expected problem must be among them with the requirement
the validator cites. The register names the member of an error by a full JSON pointer (`fieldName`, e.g.
`/loans/1/lumpSumLoan/amountPaid`, built from the report's index), both in a 400 answer and in a report's
result of GetBatchStatus, so pointers are compared as they are.

The two packages stay independent: this test imports the validator and talks to the register over HTTPS only
(tests/register_fixtures.py starts it). The validator is told who the owner is (`owner_is_kela`), so its
D20 warning is the register's D20 rejection.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from register_fixtures import ORGS, Api, Running, make_data_dir, owner_of, start_register, unique, wait_batch

from pcr_conformance import catalogue, specs, validate

DATA = Path(__file__).resolve().parent / "agreement"
TODAY_TOKEN = re.compile(r"^@today(?:([+-])(\d+))?$")


# ---- the data ----------------------------------------------------------------------------------------


@dataclass
class Case:
    file: str
    operation: str
    role: str
    identity: str
    description: str
    base: dict[str, Any]
    patch: list[dict[str, Any]]
    setup: list[dict[str, Any]]
    expect: Any
    drift: str | None = None
    number_suffix: str = field(default_factory=lambda: unique("c"))

    @property
    def body(self) -> dict[str, Any]:
        """base with the owner and environment of the client identity (the register requires the certificate's
        organisation), then the case's patch on top (loan numbers and dates not yet resolved)."""
        base = {**copy.deepcopy(self.base), "owner": owner_of(self.identity), "targetEnvironment": "Test"}
        return apply_patch(base, self.patch)

    @property
    def id(self) -> str:
        return f"{self.file}: {self.description}"


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    """A copy of doc with the JSON-Patch-like operations (replace, add, remove; RFC 6902 paths) applied."""
    doc = copy.deepcopy(doc)
    for operation in operations:
        op, path = operation["op"], operation["path"]
        *parents, last = [_unescape(t) for t in path.split("/")[1:]]
        node = doc
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if op == "add":
                node.insert(index, copy.deepcopy(operation["value"]))
            elif op == "replace":
                node[index] = copy.deepcopy(operation["value"])
            elif op == "remove":
                del node[index]
            else:
                raise ValueError(f"unknown patch op {op!r}")
        else:
            if op in ("replace", "remove") and last not in node:
                raise KeyError(f"{path}: no such member to {op}")
            if op in ("add", "replace"):
                node[last] = copy.deepcopy(operation["value"])
            elif op == "remove":
                del node[last]
            else:
                raise ValueError(f"unknown patch op {op!r}")
    return doc


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(DATA.glob("*.yaml")):
        # through JSON: YAML anchors and merge keys would share objects between the base's reports
        data = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8"))))
        for raw in data["cases"]:
            cases.append(Case(
                file=path.stem, operation=data["operation"], role=data["role"],
                identity=raw.get("identity", data.get("identity", "lender-a")), description=raw["description"],
                base=data["base"], patch=raw.get("patch", []), setup=data.get("setup", []),
                expect=raw["expect"], drift=raw.get("drift")))
    return cases


CASES = load_cases()


def resolve_dates(value: Any, today: dt.date) -> Any:
    """`@today`, `@today-N`, `@today+N` -> yyyy-MM-dd relative to today."""
    if isinstance(value, dict):
        return {k: resolve_dates(v, today) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_dates(v, today) for v in value]
    if isinstance(value, str) and (m := TODAY_TOKEN.match(value)):
        days = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
        return (today + dt.timedelta(days=days)).isoformat()
    return value


def unique_numbers(value: Any, suffix: str) -> Any:
    """Every loanNumber.number with the case's suffix, so the cases share one register independently."""
    if isinstance(value, dict):
        out = {k: unique_numbers(v, suffix) for k, v in value.items()}
        number = out.get("loanNumber")
        if isinstance(number, dict) and isinstance(number.get("number"), str):
            out["loanNumber"] = {**number, "number": f"{number['number']}-{suffix}"}
        return out
    if isinstance(value, list):
        return [unique_numbers(v, suffix) for v in value]
    return value


def prepared(case: Case, today: dt.date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The body as sent (identity's owner and environment, unique loan numbers, dates) and the setup loans."""
    body = unique_numbers(resolve_dates(case.body, today), case.number_suffix)
    setup = [dict(loan, reportReference=f"S-{i}")
             for i, loan in enumerate(unique_numbers(resolve_dates(case.setup, today), case.number_suffix))]
    return body, setup


# ---- the two sides -----------------------------------------------------------------------------------


Verdict = frozenset[tuple[str, str]]  # (pointer, code); empty = valid


def validator_verdict(case: Case, body: dict[str, Any], setup: list[dict[str, Any]],
                      today: dt.date) -> tuple[Verdict, list[validate.Problem]]:
    known = validate.contract_dates({"loans": setup}, "AddLoans")
    problems = validate.validate_body(body, case.operation, today=today,
                                      owner_is_kela=ORGS[case.identity]["isKela"], known_contract_dates=known)
    return frozenset((p.pointer, p.code) for p in problems), problems


@dataclass
class Pending:
    case: Case
    api: Api
    reference: str | None = None
    verdict: Verdict | None = None
    answer: str = ""


def register_verdicts(reg: Running, cases: list[Case], today: dt.date) -> dict[str, tuple[Verdict, str]]:
    """Every case through the register: setup loans first (one AddLoans batch per identity), then one request
    per case, all submitted before any batch is awaited (the worker runs them one after another)."""
    apis: dict[str, Api] = {}

    def api(identity: str) -> Api:
        if identity not in apis:
            apis[identity] = Api(reg, identity)
        return apis[identity]

    bodies = {c.id: prepared(c, today) for c in cases}
    setups: dict[str, list[dict[str, Any]]] = {}
    for c in cases:
        setups.setdefault(c.identity, []).extend(bodies[c.id][1])
    for identity, loans in setups.items():
        if loans:
            loans = [dict(loan, reportReference=f"S-{i}") for i, loan in enumerate(loans)]
            status = api(identity).add(*loans)
            assert status["batchStatus"] == "FinishedSuccess", status
    pending = []
    for c in cases:
        p = Pending(c, api(c.identity))
        body = bodies[c.id][0]
        headers = {"BatchReference": unique("AGR")} if c.operation in catalogue.submit_operations() else {}
        resp = p.api.post(c.operation, body, role=c.role, headers=headers)
        p.answer = f"{resp.status_code} {resp.text[:2000]}"
        if resp.status_code == 202:
            p.reference = headers["BatchReference"]
        elif resp.status_code == 200:
            p.verdict = frozenset()
        else:
            p.verdict = frozenset((e["fieldName"], e["errorCode"]) for e in resp.json()["errorResponses"])
        pending.append(p)
    out = {}
    for p in pending:
        if p.reference is not None:
            status = wait_batch(p.api.client(p.case.role), p.api.owner, p.reference)
            p.answer = f"GetBatchStatus {status}"
            p.verdict = frozenset((e["fieldName"], e["errorCode"])
                                  for r in status["reportResults"] for e in r["errorResponses"])
        assert p.verdict is not None
        out[p.case.id] = (p.verdict, p.answer)
    for a in apis.values():
        a.close()
    return out


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("agreement-register")
    make_data_dir(data)
    # PCR_REGISTER_FAULTS passes through, so a seeded fault of the register shows here as a disagreement
    running = start_register(data, faults=os.environ.get("PCR_REGISTER_FAULTS", ""))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def outcomes(register: Running) -> tuple[dt.date, dict[str, tuple[Verdict, str]]]:
    today = dt.date.today()
    return today, register_verdicts(register, CASES, today)


def _show(verdict: Verdict) -> str:
    return ", ".join(f"{code} {ptr or '/'}" for ptr, code in sorted(verdict)) or "valid"


# ---- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validator_and_register_agree(case: Case, outcomes: tuple[dt.date, dict[str, tuple[Verdict, str]]]) -> None:
    today, register = outcomes
    body, setup = prepared(case, today)
    ours, problems = validator_verdict(case, body, setup, today)
    theirs, answer = register[case.id]
    if case.expect == "valid":
        expected: tuple[str, str] | None = None
    else:
        expected = (case.expect["pointer"], case.expect["code"])
    # both sides say the same, then what they say is what the data expects
    if case.drift:
        assert ours != theirs, f"known drift no longer seen ({case.drift}): remove the drift note"
    else:
        assert ours == theirs, (f"validator and register disagree on {case.id}:\n  validator: {_show(ours)}\n"
                                f"  register:  {_show(theirs)}\n  register answer: {answer}")
    assert (expected is None) == (not ours) and (expected is None or expected in ours), (
        f"validator: {_show(ours)}; the case expects {case.expect}")
    if expected is not None:
        assert expected in theirs, f"register: {_show(theirs)}; the case expects {case.expect}"
        requirements = {p.requirement for p in problems if (p.pointer, p.code) == expected}
        assert case.expect["requirement"] in requirements, (case.expect, requirements)


def test_every_rule_has_valid_and_invalid_cases() -> None:
    """Each rule of RULES is exercised by an invalid case, and each operation file has a valid one."""
    rule_requirements = {rule.__doc__.split()[0] for rule in validate.RULES if rule.__doc__}
    covered = {c.expect["requirement"] for c in CASES if c.expect != "valid"}
    assert rule_requirements <= covered, f"rules without an agreement case: {sorted(rule_requirements - covered)}"
    valid_files = {c.file for c in CASES if c.expect == "valid"}
    assert valid_files == {c.file for c in CASES}


def test_expected_codes_are_in_errors_yaml() -> None:
    errors = specs.load_errors()
    for c in CASES:
        if c.expect != "valid":
            assert c.expect["code"] in errors, c.id


def test_agreement_data_uses_only_artificial_identity_codes() -> None:
    """Personal identity codes: individual number 900-999 and a correct check character, except in the cases
    that break the check character on purpose (they expect D04)."""
    from pcr_conformance.identifiers import hetu_check_character

    for c in CASES:
        for value in _strings(c.body):
            if re.fullmatch(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]", value):
                assert 900 <= int(value[7:10]) <= 999, (c.id, value)
                if hetu_check_character(value[:6], value[7:10]) != value[10]:
                    assert c.expect != "valid" and c.expect["code"] == "D04", (c.id, value)


def test_patch_applier() -> None:
    doc = {"a": [{"b": 1}], "c": 2}
    assert apply_patch(doc, [{"op": "replace", "path": "/a/0/b", "value": 3}]) == {"a": [{"b": 3}], "c": 2}
    assert apply_patch(doc, [{"op": "add", "path": "/a/-", "value": 4}]) == {"a": [{"b": 1}, 4], "c": 2}
    assert apply_patch(doc, [{"op": "remove", "path": "/c"}]) == {"a": [{"b": 1}]}
    with pytest.raises(KeyError):
        apply_patch(doc, [{"op": "remove", "path": "/nope"}])
    assert doc == {"a": [{"b": 1}], "c": 2}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
