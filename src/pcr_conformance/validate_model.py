"""What the offline validator works with: problems, the rules' context, file results, and the small helpers
that read a canonical request body (JSON pointers, dates, the reports of a batch).

The collection member of each batch operation (``loans``, ``repayments``, ...) comes from the operation
catalogue (``pcr_conformance.catalogue``, derived from specs/), not from a table of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pcr_conformance import catalogue

ERROR = "error"
WARNING = "warning"


class ValidationInputError(Exception):
    """The file cannot be validated at all (unreadable, not JSON, operation unknown): exit code 2."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One rule broken by a message: where, which requirement and error code, what is wrong, how to fix it."""

    pointer: str  # JSON pointer into the body (RFC 6901), "" for the whole body
    requirement: str
    code: str
    message: str
    fix: str
    severity: str = ERROR


@dataclasses.dataclass(frozen=True)
class Context:
    """What the rules may know beyond the body itself."""

    operation: str
    today: dt.date
    owner_is_kela: bool = False
    # (loanNumber.type, loanNumber.number) -> contractDate of loans in the files validated together, so a
    # delayed-repayment or termination file can be checked against the AddLoans file beside it (D30 D34 D35).
    contract_dates: Mapping[tuple[str, str], dt.date] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FileResult:
    path: str
    operation: str
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == ERROR)

    @property
    def valid(self) -> bool:
        return not self.errors


Rule = Callable[[Mapping[str, Any], Context], list[Problem]]


# ---- helpers ------------------------------------------------------------------------------------------


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def as_date(value: Any) -> dt.date | None:
    """A yyyy-MM-dd date, or None (the schema reports malformed dates, ENV-013)."""
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def reports(body: Mapping[str, Any], operation: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, report) of the operation's collection; nothing for other operations."""
    member = catalogue.collection_of(operation)
    items = body.get(member) if member else None
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                yield i, item


def loans(body: Mapping[str, Any], operation: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(index, loan) of an AddLoans or UpdateLoans body; nothing for other operations."""
    if catalogue.collection_of(operation) == "loans":
        yield from reports(body, operation)


def loan_key(loan_number: Any) -> tuple[str, str] | None:
    ln = as_dict(loan_number)
    if isinstance(ln.get("type"), str) and isinstance(ln.get("number"), str):
        return ln["type"], ln["number"]
    return None


def contract_dates(body: Mapping[str, Any], operation: str) -> dict[tuple[str, str], dt.date]:
    """Contract dates of the loans an AddLoans/UpdateLoans body reports, by loan number."""
    out: dict[tuple[str, str], dt.date] = {}
    for _, loan in loans(body, operation):
        key, date = loan_key(loan.get("loanNumber")), as_date(loan.get("contractDate"))
        if key and date:
            out[key] = date
    return out


def walk(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def identified_objects(body: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every object carrying idCodeType (owner, borrowers, guarantors, extract subject, order subjects)."""
    for path, value in walk(body):
        if isinstance(value, Mapping) and "idCodeType" in value:
            yield path, value
