"""Verifying an evidence bundle (docs/concepts.md#evidence-bundles), without unpacking it.

In order: the DSSE signature of attestation/statement.dsse.json against the bundled signer certificate (or bare
public key); with a CA, that the certificate chains to it and every certificate was valid when the statement
says it was signed; then every file of the archive against the signed statement, in name order: a file whose
SHA-256 differs, a listed file that is missing and a file the statement does not list each make the bundle
invalid, the first one named. The verdict and the attester reported come from the signed predicate only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

from cryptography import x509

from pcr_conformance import attestation
from pcr_conformance.bundle import ATTESTATION_FILES, ENVELOPE, SIGNER_CERT, SIGNER_KEY, BundleError

MAX_MEMBER_BYTES = 512 * 1024 * 1024  # a member claiming more is not one of ours (and would not fit in memory)


class Invalid(Exception):
    """The bundle was tampered with or is not signed as it claims: `file` names the member at fault."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclasses.dataclass
class Verified:
    files: int
    predicate: dict[str, Any]
    signer: str
    ca: str | None  # the CA the signer chains to, None when not checked


class _Archive:
    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise BundleError(f"{path} does not exist") from None
        except (zipfile.BadZipFile, OSError) as e:
            raise BundleError(f"{path} is not an evidence bundle (not a readable zip archive: {e})") from None
        self.names: list[str] = []
        seen: set[str] = set()
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            if info.filename in seen:
                raise Invalid(info.filename, "is in the archive twice")
            if info.filename.startswith("/") or ".." in info.filename.split("/"):
                raise Invalid(info.filename, "is not a relative path inside the bundle")
            seen.add(info.filename)
            self.names.append(info.filename)
        if ENVELOPE not in seen:
            raise BundleError(f"{path} is not an evidence bundle (no {ENVELOPE})")

    def read(self, name: str) -> bytes:
        info = self.zip.getinfo(name)
        if info.file_size > MAX_MEMBER_BYTES:
            raise Invalid(name, f"claims {info.file_size} bytes, more than a bundle member may have")
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:  # a changed byte breaks CRC or deflate
            raise Invalid(name, f"its bytes are damaged in the archive ({e})") from None


def _signed_at(pred: dict[str, Any]) -> dt.datetime:
    raw = pred.get("signed_at")
    try:
        return dt.datetime.strptime(str(raw), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise Invalid(ENVELOPE, f"the signed predicate has no valid signed_at ({raw!r})") from None


def _signer(archive: _Archive) -> tuple[attestation.PublicKey, list[x509.Certificate]]:
    if SIGNER_CERT in archive.names:
        try:
            chain = attestation.load_certificates(archive.read(SIGNER_CERT))
        except attestation.AttestationError as e:
            raise Invalid(SIGNER_CERT, str(e)) from None
        try:
            return attestation.supported(chain[0].public_key()), chain
        except attestation.AttestationError as e:
            raise Invalid(SIGNER_CERT, str(e)) from None
    if SIGNER_KEY in archive.names:
        try:
            return attestation.load_public_key(archive.read(SIGNER_KEY)), []
        except attestation.AttestationError as e:
            raise Invalid(SIGNER_KEY, str(e)) from None
    raise Invalid(SIGNER_CERT, "missing: the bundle names no signer")


def load_ca(path: Path) -> list[x509.Certificate]:
    try:
        return attestation.load_certificates(path.read_bytes())
    except (OSError, attestation.AttestationError) as e:
        raise BundleError(f"--ca {path}: {e}") from None


def verify(path: Path, ca: list[x509.Certificate] | None = None) -> Verified:
    """Check the bundle at `path`; returns what it certifies or raises Invalid (tampered, wrongly signed) or
    BundleError (not a bundle, unreadable)."""
    archive = _Archive(path)
    key, chain = _signer(archive)
    try:
        stmt = attestation.open_envelope(archive.read(ENVELOPE), key)
        subjects = attestation.subject_digests(stmt)
    except attestation.AttestationError as e:
        raise Invalid(ENVELOPE, str(e)) from None
    pred = stmt["predicate"]
    when = _signed_at(pred)
    signer = attestation.describe(chain[0]) if chain else f"a bare public key (keyid {attestation.key_id(key)[:16]}...)"
    anchor = None
    if ca is not None:
        if not chain:
            raise Invalid(SIGNER_KEY, "the bundle is signed with a bare key, no certificate to check against the CA")
        try:
            anchor = attestation.verify_chain(chain, ca, when)
        except attestation.AttestationError as e:
            raise Invalid(SIGNER_CERT, str(e)) from None
    members = set(archive.names) - set(ATTESTATION_FILES)
    for name in sorted(members | set(subjects)):
        if name not in members:
            raise Invalid(name, "listed in the signed statement but missing from the bundle")
        if name not in subjects:
            raise Invalid(name, "in the bundle but not in the signed statement")
        digest = attestation.sha256_hex(archive.read(name))
        if digest != subjects[name]:
            raise Invalid(name, f"sha256 differs from the signed statement (signed {subjects[name][:16]}..., "
                                f"file {digest[:16]}...)")
    if "summary.json" in members:
        try:
            verdict = json.loads(archive.read("summary.json")).get("verdict")
        except (ValueError, AttributeError):
            verdict = None
        if verdict != pred.get("verdict"):
            raise Invalid("summary.json", f"its verdict {verdict!r} is not the signed one {pred.get('verdict')!r}")
    return Verified(files=len(subjects), predicate=pred, signer=signer,
                    ca=None if anchor is None else anchor.subject.rfc4514_string())


def render(path: Path, result: Verified) -> list[str]:
    """The lines `pcr-conformance verify` prints for a valid bundle."""
    p = result.predicate
    kit, tgt, run = p.get("kit") or {}, p.get("target") or {}, p.get("run") or {}
    att = p.get("attester") or {}
    who = att.get("organisation") or "?"
    if att.get("person"):
        who += f", {att['person']}"
        if att.get("role"):
            who += f" ({att['role']})"
    elif att.get("role"):
        who += f" ({att['role']})"
    chain = f"chains to {result.ca}" if result.ca else "not checked against a CA (pass --ca)"
    return [
        f"{path}: valid: {result.files} files match the signed statement",
        f"verdict: {p.get('verdict')} (kit {kit.get('name')}, target {tgt.get('name')}, run {run.get('run_id')})",
        f"attested by: {who}, signed {p.get('signed_at')}",
        f"signer: {result.signer}, {chain}",
    ]
