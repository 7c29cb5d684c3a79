"""Which identity slots can open a connection at all: one line per slot that cannot, naming the cause.

At session start the plugin checks every configured slot once (docs/concepts.md#identities):

1. locally, from the PEM with `cryptography`: the certificate and key load, the validity period, the issuer
   and the SHA-256 fingerprint, so a refusal can be explained precisely ("certificate expired on 2025-01-01");
2. over the network: one TLS handshake with the slot's certificate against the base URL of an API family the
   slot's role may call, then one small HTTP request. With TLS 1.2 a server refuses a client certificate in
   the handshake (an SSL alert); with TLS 1.3 the handshake completes on the client's side first and the
   server then sends an alert or closes the connection before answering. Any HTTP answer means accepted.

A slot with a problem gets one line, e.g. ``identity slot lender: the register refused the client certificate
(TLS handshake: sslv3 alert certificate expired): certificate expired on 2025-01-01 (CN=..., sha256
ab:cd:...)``; the tests that ask for that slot are broken with that line (client.IdentityRefused), and the run
says it once. The security tests' own expired and foreign certificates (extra_certificates) are not slots and
are not checked here: those tests expect the refusal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pcr_conformance import catalogue, deadline
from pcr_conformance.client import ssl_context
from pcr_conformance.errors import HarnessError
from pcr_conformance.target import Identity, Target


@dataclasses.dataclass(frozen=True)
class CertificateInfo:
    """What the harness says of a certificate: in the one-line causes (CN names) and in summary.json (full
    distinguished names, serial)."""

    subject: str  # CN=... (or the full name when it has no CN)
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # colon-separated hex
    subject_dn: str = ""  # RFC 4514
    issuer_dn: str = ""
    serial: str = ""  # hex

    def short(self) -> str:
        """``CN=..., sha256 ab:cd:ef:...`` (the first eight bytes of the fingerprint)."""
        return f"{self.subject}, sha256 {self.sha256[:23]}..."


def _name(name: object) -> str:
    from cryptography.x509.oid import NameOID

    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)  # type: ignore[attr-defined]
    if cns:
        return f"CN={cns[0].value}"
    return name.rfc4514_string() or "(empty name)"  # type: ignore[attr-defined]


def certificate_info(path: str) -> CertificateInfo:
    """The first certificate of a PEM file; HarnessError when it cannot be read."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot read the certificate {path}: {e}") from e
    digest = cert.fingerprint(hashes.SHA256()).hex()
    return CertificateInfo(subject=_name(cert.subject), issuer=_name(cert.issuer),
                           not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                           sha256=":".join(digest[i:i + 2] for i in range(0, len(digest), 2)),
                           subject_dn=cert.subject.rfc4514_string(), issuer_dn=cert.issuer.rfc4514_string(),
                           serial=format(cert.serial_number, "x"))


def bundle_subjects(ca_bundle: str) -> list[str]:
    """The subjects (CN=...) of the certificates in a CA bundle ([] when none is given or it is unreadable)."""
    if not ca_bundle:
        return []
    from cryptography import x509

    try:
        return [_name(c.subject) for c in x509.load_pem_x509_certificates(Path(ca_bundle).read_bytes())]
    except (OSError, ValueError):
        return []


def validity_problem(info: CertificateInfo, now: dt.datetime | None = None) -> str:
    """"certificate expired on <date>" / "certificate not valid before <date>", or "" when it is valid now."""
    now = now or dt.datetime.now(dt.UTC)
    if info.not_after < now:
        return f"certificate expired on {info.not_after:%Y-%m-%d}"
    if info.not_before > now:
        return f"certificate not valid before {info.not_before:%Y-%m-%d}"
    return ""


def likely_cause(info: CertificateInfo, ca_bundle: str, now: dt.datetime | None = None) -> str:
    """The local explanation of a refused certificate: expiry first, then an issuer the bundle does not hold."""
    problem = validity_problem(info, now)
    if problem:
        return problem
    subjects = bundle_subjects(ca_bundle)
    if subjects and info.issuer not in subjects:
        return f"certificate issued by {info.issuer}, not by a CA of the ca_bundle ({', '.join(subjects)})"
    return "the certificate looks valid locally (not expired, issuer known); the register does not accept it"


def slot_url(target: Target, identity: Identity) -> str:
    """The base URL of the first API family the slot's certificate role may call (else any base URL)."""
    roles = catalogue.family_roles()
    for family, role in roles.items():
        if role == identity.role and target.base_urls.get(family):
            return target.base_urls[family]
    return next(iter(sorted(target.base_urls.values())), "")


def handshake(url: str, ctx: ssl.SSLContext, timeout_s: float) -> str:
    """'' when the server answers HTTP over a TLS connection with this context, else why it did not:
    "refused: <alert or how it closed>", "untrusted: <verification error>" or "unreachable: <error>".

    timeout_s bounds the whole probe (connect, handshake, the first byte of the answer), not each step: a
    watchdog shuts the socket down when it is over."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    end = time.monotonic() + timeout_s
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as e:
        return f"unreachable: {type(e).__name__}: {e}"
    with sock, deadline.socket_deadline(sock, end) as watch:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            tls = ctx.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            return f"untrusted: {e.verify_message or e}"
        except ssl.SSLError as e:
            if watch.fired:
                return f"unreachable: no TLS handshake within {timeout_s:g} s"
            return f"refused: {_alert(e)}"
        except TimeoutError:
            return f"unreachable: no TLS handshake within {timeout_s:g} s"
        except (ConnectionError, OSError) as e:
            if watch.fired:
                return f"unreachable: no TLS handshake within {timeout_s:g} s"
            return f"refused: the server closed the connection during the handshake ({type(e).__name__})"
        with tls:
            try:
                tls.settimeout(max(0.01, end - time.monotonic()))
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii"))
                data = tls.recv(1)
            except ssl.SSLError as e:
                if watch.fired:
                    return ""
                return f"refused: {_alert(e)}"
            except TimeoutError:
                return ""  # no verdict within the timeout: the tests will tell
            except (ConnectionError, OSError) as e:
                if watch.fired:
                    return ""
                return (f"refused: the server closed the {tls.version() or 'TLS'} connection after the handshake "
                        f"({type(e).__name__})")
            if not data:
                if watch.fired:
                    return ""
                return (f"refused: the server closed the {tls.version() or 'TLS'} connection after the handshake, "
                        f"without an HTTP answer")
    return ""


def _alert(e: ssl.SSLError) -> str:
    reason = str(e.reason or "").lower().replace("_", " ")
    return reason if reason else str(e)


def check_identity(target: Target, identity: Identity, timeout_s: float,
                   now: dt.datetime | None = None) -> str:
    """One line naming the slot and the cause when the slot cannot connect, else ''."""
    slot = identity.slot
    try:
        info: CertificateInfo | None = certificate_info(identity.cert)
    except HarnessError as e:
        return f"identity slot {slot}: {e}"
    try:
        ctx = ssl_context(target.tls.ca_bundle, identity.cert, identity.key)
    except HarnessError as e:
        return f"identity slot {slot}: cannot load its certificate and key: {str(e).split(';')[0]}"
    url = slot_url(target, identity)
    if not url:
        return ""
    result = handshake(url, ctx, timeout_s)
    if not result or result.startswith("unreachable:"):
        return ""  # reachability is the target probe's job; it stops the run with its own line
    assert info is not None
    if result.startswith("untrusted:"):
        return (f"identity slot {slot}: the server certificate of {url} is not trusted by the ca_bundle "
                f"{target.tls.ca_bundle or '(system store)'}: {result.split(':', 1)[1].strip()}")
    how = result.split(":", 1)[1].strip()
    return (f"identity slot {slot}: the register refused the client certificate (TLS handshake: {how}): "
            f"{likely_cause(info, target.tls.ca_bundle, now)} ({info.short()})")


def probe_identities(target: Target, timeout_s: float, slots: Mapping[str, Identity] | None = None) -> dict[str, str]:
    """{slot: one-line problem} for every configured identity slot that cannot connect."""
    problems: dict[str, str] = {}
    for slot, identity in sorted((slots if slots is not None else target.identities).items()):
        line = check_identity(target, identity, timeout_s)
        if line:
            problems[slot] = line
    return problems
