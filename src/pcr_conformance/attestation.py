"""A signed statement about files: an in-toto Statement v1 in a DSSE envelope (docs/concepts.md#evidence-bundles).

The statement lists each file (`subject`: name and SHA-256) and says what they show (`predicate`); the envelope
signs it with the attesting organisation's key: the signature covers the DSSE pre-authentication encoding

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

(LEN: the byte count as ASCII decimal, SP: one space), so neither the payload type nor the body can be swapped.
Keys: ECDSA P-256 (SHA-256, DER signature), RSA (PSS, SHA-256, MGF1-SHA-256, salt of the digest's length) and
Ed25519. The signer is named by its X.509 certificate, which may be checked against a CA here too.

Only `cryptography`; nothing of pcr_conformance (layer 1, docs/concepts.md#evidence-bundles).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://pcr-conformance.example/attestation/conformance-run/v1"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class AttestationError(Exception):
    """A key, certificate, envelope or statement that cannot be used; the message says which and why."""


def pae(payload_type: str, body: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- keys and certificates ----------------------------------------------------------------------------


def load_private_key(pem: bytes, password: bytes | None = None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError as e:  # encrypted without a password, or a password for an unencrypted key
        raise AttestationError(f"the key is encrypted; set PCR_SIGN_KEY_PASSWORD ({e})") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise AttestationError(f"not a PEM private key or a wrong password ({e})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise AttestationError(f"ECDSA keys must be P-256, this one is {key.curve.name}")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise AttestationError(f"unsupported key type {type(key).__name__}; use ECDSA P-256, RSA or Ed25519")
    return key


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file, in order (leaf first for a chain). Raises if there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise AttestationError(f"not a PEM certificate file ({e})") from None
    return certs


def certificates_pem(certs: Sequence[x509.Certificate]) -> bytes:
    """The public part only: certificates re-encoded from their DER (nothing else of the source file)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def public_key_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise AttestationError(f"not a PEM public key ({e})") from None
    return supported(key)


def supported(key: object) -> PublicKey:
    """The key itself if it is of a type this module verifies with; raises AttestationError otherwise."""
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise AttestationError(f"unsupported key type {type(key).__name__}; use ECDSA P-256, RSA or Ed25519")
    return key


def key_id(key: PublicKey) -> str:
    """The DSSE keyid hint: SHA-256 of the DER SubjectPublicKeyInfo, hex."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_hex(der)


def subject_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def describe(cert: x509.Certificate) -> str:
    fp = fingerprint(cert)
    return f"{cert.subject.rfc4514_string()} (sha256:{fp[:16]}...)"


# ---- signing and verifying ----------------------------------------------------------------------------


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    return key.sign(data)


def _verify(key: PublicKey, sig: bytes, data: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    else:
        key.verify(sig, data)


def statement(subjects: Mapping[str, str], predicate: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1: {file name: sha256 hex} as subjects, in name order."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": subjects[n]}} for n in sorted(subjects)],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def sign_envelope(stmt: Mapping[str, Any], key: PrivateKey) -> dict[str, Any]:
    """The DSSE envelope of a statement: payload (base64 of the statement's JSON bytes), type, one signature."""
    body = json.dumps(stmt, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    sig = _sign(key, pae(PAYLOAD_TYPE, body))
    return {"payload": base64.b64encode(body).decode("ascii"), "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": key_id(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}]}


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AttestationError(f"{what} is not a base64 string")
    try:  # DSSE accepts standard and URL-safe base64
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError(f"{what} is not valid base64") from None


def open_envelope(raw: bytes, key: PublicKey) -> dict[str, Any]:
    """The statement of a DSSE envelope whose signature `key` made; raises AttestationError otherwise.

    Nothing of the payload is parsed before its signature has verified."""
    try:
        env = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AttestationError(f"not a DSSE envelope (not JSON: {e})") from None
    if not isinstance(env, dict) or not isinstance(env.get("signatures"), list):
        raise AttestationError("not a DSSE envelope (payload, payloadType, signatures)")
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise AttestationError(f"payloadType is {env.get('payloadType')!r}, not {PAYLOAD_TYPE}")
    body = _b64(env.get("payload"), "payload")
    data = pae(PAYLOAD_TYPE, body)
    for i, s in enumerate(env["signatures"]):
        if not isinstance(s, dict):
            continue
        try:
            _verify(key, _b64(s.get("sig"), f"signatures[{i}].sig"), data)
        except (InvalidSignature, AttestationError):
            continue
        break
    else:
        raise AttestationError("the signature does not verify with the signer's key")
    try:
        stmt = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AttestationError(f"the signed payload is not JSON ({e})") from None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"the signed payload is not an in-toto Statement v1 (_type {STATEMENT_TYPE})")
    if stmt.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"predicateType is {stmt.get('predicateType')!r}, not {PREDICATE_TYPE}")
    if not isinstance(stmt.get("subject"), list) or not isinstance(stmt.get("predicate"), dict):
        raise AttestationError("the statement has no subject list or no predicate")
    return stmt


def subject_digests(stmt: Mapping[str, Any]) -> dict[str, str]:
    """{name: sha256} of a statement's subjects; raises on a malformed or repeated entry."""
    out: dict[str, str] = {}
    for i, s in enumerate(stmt["subject"]):
        name = s.get("name") if isinstance(s, dict) else None
        digest = (s.get("digest") or {}).get("sha256") if isinstance(s, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str):
            raise AttestationError(f"subject[{i}] has no name or no sha256 digest")
        if name in out:
            raise AttestationError(f"subject {name} is listed twice")
        out[name] = digest.lower()
    return out


# ---- certificate chain --------------------------------------------------------------------------------


def _valid_at(cert: x509.Certificate, when: dt.datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise AttestationError(f"{what} {describe(cert)} was not valid at {when:%Y-%m-%dT%H:%M:%SZ} "
                               f"(valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.issuer == cert.subject  # an old-style self-signed root without extensions


def check_signer_usage(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise AttestationError(f"signer certificate {describe(cert)} does not allow digital signatures (key usage)")


def verify_chain(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], when: dt.datetime) -> x509.Certificate:
    """Check that chain[0] (the signer) chains through chain[1:] to one of `anchors`, every certificate valid
    at `when`. Returns the anchor. Raises AttestationError naming the first link that fails."""
    if not anchors:
        raise AttestationError("the CA file holds no certificate")
    _valid_at(chain[0], when, "signer certificate")
    check_signer_usage(chain[0])
    current = chain[0]
    rest = list(chain[1:])
    for _ in range(len(chain) + 1):
        for anchor in anchors:
            if _issued_by(current, anchor):
                _valid_at(anchor, when, "CA certificate")
                return anchor
        nxt = next((c for c in rest if _issued_by(current, c) and _is_ca(c)), None)
        if nxt is None:
            break
        _valid_at(nxt, when, "intermediate certificate")
        rest.remove(nxt)
        current = nxt
    names = ", ".join(a.subject.rfc4514_string() for a in anchors)
    raise AttestationError(f"signer certificate {describe(chain[0])} is not issued by the given CA ({names})")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return _is_ca(issuer)
