"""The operation table: operationId -> API family (the spec file's stem) and handler (interfaces.md §1).

app.py routes POST /<OperationId> through it; check_specs holds it against the spec files at start-up: the
spec is the contract, so every operation served must have a request schema in the spec file of its family,
and every family a certificate role (info.x-certificate-role).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pcr_register import authorities, extract, loans, submission, voluntary_ban
from pcr_register.identity import Caller
from pcr_register.state import Register
from pcr_register.validation import SpecError, Specs

Handler = Callable[[Register, Caller, dict[str, Any], dict[str, str]], tuple[int, dict]]


@dataclass(frozen=True)
class Operation:
    family: str
    handler: Handler
    # True: served only when the contract version the register reads describes the operation (an operation a
    # later version adds, e.g. ListBatches of 2027.1); False: the specs must describe it (check_specs).
    optional: bool = False


def _plain(fn: Callable[[Register, Caller, dict[str, Any]], tuple[int, dict]]) -> Handler:
    return lambda reg, caller, body, headers: fn(reg, caller, body)


def _submit(operation: str) -> Handler:
    return lambda reg, caller, body, headers: submission.submit(reg, caller, operation, body, headers)


OPERATIONS: dict[str, Operation] = {
    **{op: Operation("reporting", _submit(op)) for op in submission.COLLECTION},
    "GetBatchStatus": Operation("reporting", _plain(submission.get_batch_status)),
    "GetLoan": Operation("reporting", _plain(loans.get_loan)),
    "ListBatches": Operation("reporting", _plain(submission.list_batches), optional=True),
    "GetCreditRegisterExtract": Operation("extract", _plain(extract.get_extract)),
    "GetExtractLog": Operation("extract", _plain(extract.get_extract_log)),
    "OrderData": Operation("authorities", _plain(authorities.order_data)),
    "GetOrderStatus": Operation("authorities", _plain(authorities.get_order_status)),
    "GetDistribution": Operation("authorities", _plain(authorities.get_distribution)),
    "GetVoluntaryBan": Operation("voluntary-ban", _plain(voluntary_ban.get_voluntary_ban)),
    "GetVoluntaryBanChanges": Operation("voluntary-ban", _plain(voluntary_ban.get_voluntary_ban_changes)),
}


def served(specs: Specs) -> dict[str, Operation]:
    """The operations this register answers under its specs: every one the specs describe."""
    return {op: o for op, o in OPERATIONS.items() if specs.has_request(op)}


def check_specs(specs: Specs) -> None:
    """SpecError unless the specs describe every operation of the table, in the spec file of its family,
    and name the certificate role of every family."""
    problems = []
    missing = sorted(op for op, o in OPERATIONS.items() if not o.optional and not specs.has_request(op))
    if missing:
        problems.append(f"no request schema for {', '.join(missing)}")
    moved = sorted(f"{op} ({specs.families[op]}.yaml, not {o.family}.yaml)" for op, o in OPERATIONS.items()
                   if op in specs.families and specs.families[op] != o.family)
    if moved:
        problems.append(f"operations in another family's file: {', '.join(moved)}")
    roleless = sorted({o.family for o in OPERATIONS.values()} - set(specs.certificate_roles))
    if roleless:
        problems.append(f"no info.x-certificate-role in {', '.join(f + '.yaml' for f in roleless)}")
    if problems:
        raise SpecError(f"{specs.directory}: {'; '.join(problems)}")
