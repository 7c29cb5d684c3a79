"""Transport security: who may open a connection at all (SEC-001, SEC-002, SEC-003, SEC-010).

A refused connection is the expected outcome here, so a TLS failure passes; any HTTP answer other than
401/403 fails. Each test first proves the register is reachable with a good certificate, so a register that
is simply down is reported broken, never passed.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from typing import Any
from urllib.parse import urlsplit

import pytest

from pcr_conformance import expect
from pcr_conformance import messages as m
from pcr_conformance import suite as s
from pcr_conformance.errors import TargetUnreachable

pytestmark = [pytest.mark.capability("reporting"), pytest.mark.read_only_safe]


@pytest.fixture
def known_loan(pcr_clients, pcr_data) -> dict[str, str]:
    """A loan of the lender, so a connection wrongly accepted as the lender would read it with 200."""
    lender = pcr_clients.get("lender")
    if lender.target.read_only:
        return pcr_data.loan_number()
    number = pcr_data.loan_number()
    s.report_all_accepted(lender, "AddLoans", [m.lump_sum_loan(number, pcr_data.person("income"),
                                                               pcr_data.report_reference())], "BAT-002")
    expect.status(lender.get_loan(number), 200, "RPT-003", "GetLoan with a good certificate")
    return number


def _refused(client: Any, loan_number: dict[str, str], requirement: str, what: str) -> None:
    try:
        resp = client.get_loan(loan_number)
    except TargetUnreachable as exc:
        if getattr(exc, "kind", "") in ("connect", "timeout"):
            raise  # the register is not answering at all: broken, not passed
        return  # handshake refused or connection closed: the expected outcome
    expect.that(resp.status_code in (401, 403), requirement, "GetLoan",
                f"the connection {what} refused (TLS failure, or 401/403)",
                f"HTTP {resp.status_code}: {resp.text[:300]}")


@pytest.mark.verifies("SEC-001")
def test_no_client_certificate(pcr_clients, known_loan):
    """A connection without a client certificate is refused."""
    lender = pcr_clients.get("lender")
    client = pcr_clients.without_certificate(owner=lender.owner)
    _refused(client, known_loan, "SEC-001", "without a client certificate")


@pytest.mark.verifies("SEC-002")
def test_certificate_of_another_ca(pcr_clients, known_loan):
    """A client certificate not issued by the register's CA is refused."""
    lender = pcr_clients.get("lender")
    client = pcr_clients.extra("foreign", owner=lender.owner)
    _refused(client, known_loan, "SEC-002", "with a certificate of another CA")


@pytest.mark.verifies("SEC-003")
def test_expired_certificate(pcr_clients, known_loan):
    """An expired client certificate is refused."""
    lender = pcr_clients.get("lender")
    client = pcr_clients.extra("expired", owner=lender.owner)
    _refused(client, known_loan, "SEC-003", "with an expired certificate")


@pytest.mark.verifies("SEC-010")
def test_tls_older_than_1_2(pcr_clients, pcr_target):
    """A TLS 1.1 handshake is refused while TLS 1.2 with the same certificate succeeds."""
    lender = pcr_clients.get("lender")
    url = urlsplit(pcr_target.base_url("reporting"))
    host, port = url.hostname, url.port or 443

    def handshake(version: ssl.TLSVersion) -> str:
        ctx = ssl.create_default_context(cafile=pcr_target.tls.ca_bundle or None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1 if version < ssl.TLSVersion.TLSv1_2 else version
            ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer the old protocol at all
        ctx.load_cert_chain(lender.cert, lender.key)
        with socket.create_connection((host, port), timeout=pcr_target.timeout_s) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                return str(tls.version())

    try:
        modern = handshake(ssl.TLSVersion.TLSv1_2)
    except OSError as exc:
        raise TargetUnreachable(f"TLS 1.2 handshake with {host}:{port} failed: {exc}", kind="tls") from exc
    expect.that(modern == "TLSv1.2", "SEC-010", "TLS handshake", "TLS 1.2 accepted", modern)
    try:
        old = handshake(ssl.TLSVersion.TLSv1_1)
    except ssl.SSLError as exc:
        if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "NO_CIPHERS" in str(exc):
            pytest.skip(f"not applicable: this machine's OpenSSL cannot offer TLS 1.1 ({exc.reason})")
        return  # the register refused the old protocol
    except (ConnectionError, TimeoutError, OSError):
        return  # closed during the handshake: refused
    expect.fail("SEC-010", "TLS handshake", "TLS 1.1 refused", f"handshake completed with {old}")


def _family_params() -> list[Any]:
    """One read operation of each API family other than reporting (GetLoan above covers reporting): each
    family may have its own base URL, so its own TLS front end to check."""
    from pcr_conformance import catalogue

    params = []
    for family in catalogue.families():
        if family == "reporting":
            continue
        operation = next(op for op in catalogue.operation_ids(family) if not catalogue.get(op).submits)
        params.append(pytest.param(operation, id=operation,
                                   marks=[pytest.mark.capability(catalogue.get(operation).capability)]))
    return params


@pytest.mark.verifies("SEC-001")
@pytest.mark.parametrize("operation", _family_params())
def test_no_client_certificate_on_every_api_family(operation, pcr_clients, pcr_data):
    """On every API family a connection without a client certificate is refused.

    (The expired and foreign certificates a target provides are the lender's reporting ones: on another family
    their role alone earns a 403, so they prove SEC-002 and SEC-003 on GetLoan above only.)"""
    from pcr_conformance import catalogue

    good = pcr_clients.get(s.slot_for(catalogue.get(operation).family))
    body, headers = s.valid_request(operation, good, pcr_data)
    good.call(operation, body, headers=headers)  # reachable with a good certificate: else broken, never passed
    client = pcr_clients.without_certificate(owner=good.owner)
    try:
        resp = client.call(operation, body, headers=headers)
    except TargetUnreachable as exc:
        if getattr(exc, "kind", "") in ("connect", "timeout"):
            raise  # the register is not answering at all: broken, not passed
        return  # handshake refused or connection closed: the expected outcome
    expect.that(resp.status_code in (401, 403), "SEC-001", operation,
                "the connection without a client certificate refused (TLS failure, or 401/403)",
                f"HTTP {resp.status_code}: {resp.text[:300]}")
