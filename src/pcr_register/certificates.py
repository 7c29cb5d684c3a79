"""Certificates for a register data dir: CA, server certificate, client certificates (interfaces.md §6).

EC P-256 keys (fast to generate); client certificates are valid for two years like the Tax Administration's
(docs/register-facts.md#certificates-and-tls). Keys are written unencrypted (PKCS#8 PEM, mode 0600): this is test material only.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_VALIDITY = timedelta(days=730)  # two years, like the real certificates (docs/register-facts.md#certificates-and-tls)
CA_VALIDITY = timedelta(days=3650)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ClientSubject:
    """The subject profile of a client certificate (interfaces.md §6)."""

    org_key: str
    org_name: str
    organization_identifier: str  # NTRFI-<BusinessId> or NTR<CC>-<id>
    role: str
    title: str | None = None  # "consumer-credit-only" for a consumer-only authority

    def name(self) -> x509.Name:
        attrs = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.org_name),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, self.organization_identifier),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.role),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{self.org_key} {self.role}"),
        ]
        if self.title:
            attrs.append(x509.NameAttribute(NameOID.TITLE, self.title))
        return x509.Name(attrs)


def organization_identifier(id_code_type: str, id_code: str, country_code: str | None) -> str:
    """ETSI EN 319 412-1 style: NTRFI-<BusinessId>; NTR<CC>-<id> for a foreign business ID."""
    if id_code_type == "BusinessId":
        return f"NTRFI-{id_code}"
    if not country_code:
        raise ValueError("a foreign business ID needs a country code")
    return f"NTR{country_code}-{id_code}"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def make_ca(common_name: str, organisation: str) -> Issued:
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Starts well in the past so that the expired client certificate lies inside the CA's validity.
        .not_valid_before(now - timedelta(days=800))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    not_before: datetime,
    not_after: datetime,
    san: x509.SubjectAlternativeName | None = None,
) -> Issued:
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def make_server(ca: Issued) -> Issued:
    """Server certificate for 127.0.0.1, ::1 and localhost (interfaces.md §6)."""
    now = _now()
    san = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pcr-register reference register (Test)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
    ])
    return _leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, now - timedelta(hours=1),
                 now + CLIENT_VALIDITY, san)


def make_client(ca: Issued, subject: ClientSubject, *, expired: bool = False) -> Issued:
    """Client certificate with the interfaces.md §6 subject; ``expired`` gives one whose notAfter is past."""
    now = _now()
    if expired:
        not_before, not_after = now - CLIENT_VALIDITY - timedelta(days=30), now - timedelta(days=30)
    else:
        not_before, not_after = now - timedelta(hours=1), now + CLIENT_VALIDITY
    return _leaf(ca, subject.name(), ExtendedKeyUsageOID.CLIENT_AUTH, not_before, not_after)


def write_cert(issued: Issued, cert_path: Path, key_path: Path | None = None) -> None:
    """Write the certificate (PEM) and, when a path is given, its private key (PKCS#8 PEM, mode 0600)."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    if key_path is not None:
        pem = issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(key_path, 0o600)  # also when the file already existed
