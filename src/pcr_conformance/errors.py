"""Exceptions of the harness.

None of them is an AssertionError: a test that raises one is reported *broken* (could not run), never
*failed* (docs/concepts.md#outcomes: a network or configuration error is never a conformance failure).
"""

from __future__ import annotations


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
