"""Exceptions of the harness.

`RequirementFailure` is the one AssertionError: the implementation broke the requirement it names, so the
test is *failed* and that requirement is failed (docs/concepts.md#outcomes). None of the others is an
AssertionError: a test that raises one is reported *broken* (could not run), never *failed* (a network or
configuration error is never a conformance failure).
"""

from __future__ import annotations

import re
from typing import Any

# A failure message starts with the requirement ID and a space: "RPT-004 AddLoans: expected ..., actual ...".
REQUIREMENT_PREFIX = re.compile(r"([A-Z]{3}-\d{3}) ")


class RequirementFailure(AssertionError):
    """The implementation broke `requirement`: "<ID> <operation>: expected <expected>, actual <actual>".

    The requirement travels as an attribute, so attribution never depends on parsing the message; the
    message keeps the ID first for people, JUnit and the Allure categories."""

    def __init__(self, requirement: str, operation: str, expected: Any, actual: Any) -> None:
        super().__init__(f"{requirement} {operation}: expected {expected}, actual {actual}")
        self.requirement = requirement
        self.operation = operation
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (xdist, multiprocessing) with its fields
        return (type(self), (self.requirement, self.operation, self.expected, self.actual))


def requirement_prefix(message: str) -> str | None:
    """The requirement ID a failure message starts with ("RPT-004 AddLoans: ..."), else None."""
    m = REQUIREMENT_PREFIX.match(message.lstrip())
    return m.group(1) if m else None


class HarnessError(Exception):
    """The harness could not do its job (bad configuration, missing file, unusable pool)."""


class TargetError(HarnessError):
    """A target file is invalid; the message names the field, the rule and the fix."""


class TargetUnreachable(HarnessError):
    """The target did not answer: connection refused, TLS handshake failure, timeout.

    `kind` is "connect", "tls", "timeout" or "network"; security tests (SEC-001..003) expect "tls"."""

    def __init__(self, message: str, *, kind: str = "network") -> None:
        super().__init__(message)
        self.kind = kind
