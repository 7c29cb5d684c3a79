"""Offline validation of a stakeholder's own message files (`pcr-conformance validate`): the public face.

A message file is one JSON request body as the stakeholder's loan system would send it. It is checked
against the request schema of its operation (specs/, see `validate_schema`) and against every processing
rule that needs no register (`validate_rules`: identity-code and Business ID check characters, D02, D40,
date order, the Kela-only loan type, the delayed-amount rules and duplicate report references).

Each rule is a plain function `(body, ctx) -> list[Problem]` citing its requirement ID, so the fuzz checks
and the corpus can reuse them (or call `validate_body(body, operation)` for all of them at once). This
module reads the files, runs rules and schema together and renders the results; it re-exports what the CLI
and the tests use.

Modules: `validate_model` (Problem, Context, FileResult, body helpers) <- `validate_rules` (RULES) and
`validate_schema` (ENV-011 member names, operation inference, schema problems) <- `validate` (files, output).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pcr_conformance.validate_model import (
    ERROR,
    WARNING,
    Context,
    FileResult,
    Problem,
    Rule,
    ValidationInputError,
    contract_dates,
    pointer,
)
from pcr_conformance.validate_rules import (
    DELAY_MIN_DAYS,
    RULES,
    TYPE_OBJECTS,
    business_id_problem,
    check_amount_paid,
    check_borrowers_count,
    check_business_ids,
    check_contract_date_not_future,
    check_deferment_periods,
    check_delay_60_days,
    check_delay_amounts,
    check_delay_due_date,
    check_duplicate_report_references,
    check_end_date,
    check_foreclosure_date,
    check_foreign_owner_country,
    check_guarantee_receivable_purpose,
    check_guarantee_receivable_sender,
    check_payment_date,
    check_personal_identity_codes,
    check_rules,
    check_type_specific_object,
    hetu_problem,
)
from pcr_conformance.validate_schema import (
    canonicalize,
    infer_operation,
    known_operations,
    member_names,
    original_pointer,
    request_validator,
    require_operation,
    schema_problem,
    schema_problems,
)

__all__ = [
    "DELAY_MIN_DAYS", "ERROR", "RULES", "TYPE_OBJECTS", "WARNING", "Context", "FileResult", "Problem", "Rule",
    "SchemaCheck", "ValidationInputError", "business_id_problem", "canonicalize", "check_amount_paid",
    "check_borrowers_count", "check_business_ids", "check_contract_date_not_future", "check_deferment_periods",
    "check_delay_60_days", "check_delay_amounts", "check_delay_due_date", "check_duplicate_report_references",
    "check_end_date", "check_foreclosure_date", "check_foreign_owner_country",
    "check_guarantee_receivable_purpose", "check_guarantee_receivable_sender", "check_payment_date",
    "check_personal_identity_codes", "check_rules", "check_type_specific_object", "contract_dates", "dt", "emitted_codes",
    "hetu_problem", "infer_operation", "known_operations", "member_names", "original_pointer", "pointer",
    "read_json", "render_text", "request_validator", "require_operation", "schema_problem", "schema_problems",
    "to_json", "validate_body", "validate_files",
]


# ---- files --------------------------------------------------------------------------------------------


def read_json(path: str | Path) -> Any:
    """The JSON of a file; ValidationInputError naming the file and the fix when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValidationInputError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationInputError(f"{p}: cannot read the file ({e}); save it as UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationInputError(f"{p}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


SchemaCheck = Callable[[Any, str], list[Problem]]


def validate_files(
    paths: Sequence[str | Path],
    *,
    operation: str | None = None,
    today: dt.date | None = None,
    owner_is_kela: bool = False,
    names: Mapping[str, str] | None = None,
    schema_check: SchemaCheck | None = None,
) -> list[FileResult]:
    """Validate message files together (loans of one file give contract dates for the others).

    `names` (lower-case -> canonical member names) and `schema_check` default to the specs' (see
    `member_names` and `schema_problems`). Raises ValidationInputError for a file that cannot be validated.
    """
    if operation is not None:
        operation = require_operation(operation)
    names = member_names() if names is None else names
    schema_check = schema_problems if schema_check is None else schema_check
    today = today or dt.date.today()
    loaded: list[tuple[str, Any, dict[str, str], str]] = []
    for path in paths:
        raw = read_json(path)
        body, pointers = canonicalize(raw, names)
        try:
            op = operation or infer_operation(body)
        except ValidationInputError as e:
            raise ValidationInputError(f"{path}: {e}") from None
        loaded.append((str(path), body, pointers, op))
    dates: dict[tuple[str, str], dt.date] = {}
    for _, body, _, op in loaded:
        if isinstance(body, Mapping):
            dates.update(contract_dates(body, op))
    results = []
    for path, body, pointers, op in loaded:
        ctx = Context(operation=op, today=today, owner_is_kela=owner_is_kela, contract_dates=dates)
        problems = _problems(body, ctx, schema_check)
        problems = [dataclasses.replace(p, pointer=original_pointer(p.pointer, pointers)) for p in problems]
        results.append(FileResult(path, op, tuple(problems)))
    return results


def validate_body(body: Any, operation: str, *, today: dt.date | None = None, owner_is_kela: bool = False,
                  with_schema: bool = True,
                  known_contract_dates: Mapping[tuple[str, str], dt.date] | None = None) -> list[Problem]:
    """Every problem of one request body (any member-name casing), for reuse by fuzz checks and the corpus.

    Pointers use the canonical camelCase names. Contract dates come from the body itself and, when given,
    `known_contract_dates` ((loanNumber.type, loanNumber.number) -> contractDate of loans reported before).
    """
    canonical, _ = canonicalize(body, member_names())
    dates = dict(known_contract_dates or {})
    if isinstance(canonical, Mapping):
        dates.update(contract_dates(canonical, operation))
    ctx = Context(operation=operation, today=today or dt.date.today(), owner_is_kela=owner_is_kela,
                  contract_dates=dates)
    return _problems(canonical, ctx, schema_problems if with_schema else None)


def _problems(body: Any, ctx: Context, schema_check: SchemaCheck | None) -> list[Problem]:
    problems = check_rules(body, ctx) if isinstance(body, Mapping) else []
    if schema_check is not None:
        ruled = {p.pointer for p in problems if p.severity == ERROR}
        # A rule's error is more specific than the schema's pattern error at the same place.
        problems += [p for p in schema_check(body, ctx.operation) if p.pointer not in ruled]
    problems.sort(key=lambda p: (p.severity != ERROR, _pointer_sort_key(p.pointer), p.requirement))
    return problems


def _pointer_sort_key(ptr: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in ptr.split("/")[1:])


# ---- output -------------------------------------------------------------------------------------------


def render_text(results: Sequence[FileResult]) -> str:
    lines = []
    for r in results:
        if not r.problems:
            lines.append(f"{r.path}: valid {r.operation} message")
            continue
        n_err, n_warn = len(r.errors), len(r.problems) - len(r.errors)
        lines.append(f"{r.path}: {r.operation}: {n_err} error(s), {n_warn} warning(s)")
        for p in r.problems:
            label = "" if p.severity == ERROR else "warning "
            lines.append(f"  {r.path}: {p.pointer or '/'}  {label}{p.requirement} {p.code}  {p.message}")
            lines.append(f"      fix: {p.fix}")
    return "\n".join(lines)


def to_json(results: Sequence[FileResult]) -> list[dict[str, Any]]:
    """The results as JSON; each problem also carries its error code's provenance from specs/errors.yaml
    (official | third-party | modelled; null for a code the file does not list)."""
    from pcr_conformance import specs

    errors = specs.load_errors() if results else {}
    return [
        {"file": r.path, "operation": r.operation, "valid": r.valid,
         "problems": [{**dataclasses.asdict(p), "provenance": errors.get(p.code, {}).get("provenance")}
                      for p in r.problems]}
        for r in results
    ]


def emitted_codes() -> set[str]:
    """Every error code the validator's rules and schema mapping can name (read from their source), for the
    test that each is in specs/errors.yaml."""
    import ast
    import inspect
    import re

    from pcr_conformance import validate_rules, validate_schema

    found: set[str] = set()
    for module in (validate_rules, validate_schema):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem":
                found.update(arg.value for arg in node.args if isinstance(arg, ast.Constant)
                             and isinstance(arg.value, str) and re.fullmatch(r"[A-Z]\d{2}", arg.value))
    return found
