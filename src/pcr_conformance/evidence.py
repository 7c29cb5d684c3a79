"""The evidence fields of summary.json (docs/concepts.md#summaryjson): which tool judged (version, git commit of
the checkout), against which contract (spec versions), what it reached (base URLs, claimed capabilities) and as
whom (per identity slot the client certificate's subject, SHA-256 fingerprint and validity; never the key).

Certificates are read while the run goes on (`describe_certificates`, called by the outcome recorder once the
target is resolved): an embedded register's certificates are deleted when it stops, before the session ends.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import resources, versions
from pcr_conformance.errors import HarnessError
from pcr_conformance.target import Target

GIT_TIMEOUT_S = 5.0


def tool_version() -> str | None:
    """The installed pcr-conformance version (importlib.metadata), None when it is not installed."""
    try:
        return importlib.metadata.version("pcr-conformance")
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(root: Path | None = None) -> dict[str, Any]:
    """{"git_commit": HEAD of the checkout the harness runs from, "git_dirty": uncommitted changes}; both None
    for an installed wheel or when git cannot tell."""
    root = root if root is not None else resources.checkout()
    none: dict[str, Any] = {"git_commit": None, "git_dirty": None}
    if root is None or not (root / ".git").exists():
        return none
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S)
        if head.returncode != 0:
            return none
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return none
    return {"git_commit": head.stdout.strip() or None,
            "git_dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def certificate_info(path: str) -> dict[str, Any]:
    """Subject, issuer, serial, SHA-256 fingerprint, notBefore and notAfter (UTC) of the first certificate of a
    PEM file (read by tlsprobe.certificate_info, the one certificate reader), for summary.json."""
    from pcr_conformance import tlsprobe

    try:
        info = tlsprobe.certificate_info(path)
    except HarnessError as e:
        return {"error": str(e)}
    return {
        "subject": info.subject_dn, "issuer": info.issuer_dn, "serial": info.serial, "sha256": info.sha256.upper(),
        "not_before": info.not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def describe_certificates(target: Target) -> dict[str, dict[str, Any]]:
    """{"identities": {slot: {role, owner, name, subject, sha256, not_after, ...}}, "extra_certificates": {...}}."""
    identities = {}
    for slot, ident in sorted(target.identities.items()):
        identities[slot] = {"role": ident.role, "name": ident.name, "owner": dict(ident.owner),
                            **certificate_info(ident.cert)}
    extra = {kind: certificate_info(pair.cert) for kind, pair in sorted(target.extra_certificates.items())}
    return {"identities": identities, "extra_certificates": extra}


def write_public_certificates(target: Target, folder: Path) -> list[str]:
    """The run's certificates, public parts only, into ``folder`` (the report's ``certs/``): ``ca.pem`` and
    ``<slot>.pem`` per identity slot and extra certificate, the names the attachments' curl commands use
    (calllog.bundle_cert). Written while the register runs: an embedded register's files are deleted when it
    stops. Returns the files that could not be read (a key is never read or written)."""
    from pcr_conformance import attestation, calllog

    sources = {calllog.BUNDLE_CA: target.tls.ca_bundle}
    sources.update({calllog.bundle_cert(slot): ident.cert for slot, ident in target.identities.items()})
    sources.update({calllog.bundle_cert(kind): pair.cert for kind, pair in target.extra_certificates.items()})
    problems = []
    for rel, source in sources.items():
        if not source:
            continue
        try:
            pem = attestation.certificates_pem(attestation.load_certificates(Path(source).read_bytes()))
        except (OSError, attestation.AttestationError) as e:
            problems.append(f"{rel}: {source}: {e}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / Path(rel).name).write_bytes(pem)
    return problems


def fields(*, target: Target | None, started_utc: str, ended_utc: str, specs: Mapping[str, Mapping[str, str]],
           certificates: Mapping[str, Any] | None) -> dict[str, Any]:
    """The evidence fields, in the order summary.json shows them."""
    if certificates is None and target is not None:
        certificates = describe_certificates(target)
    return {
        "started_utc": started_utc,
        "ended_utc": ended_utc,
        "tool_version": tool_version(),
        **git_commit(),
        # The contract version judged (specs/version.toml of the folder read; versions.py), then each file's own.
        "contract_version": versions.current_name() or None,
        "spec_versions": {name: v["version"] for name, v in specs.items() if v.get("version")},
        "base_urls": dict(sorted(target.base_urls.items())) if target is not None else {},
        "capabilities": list(target.capabilities) if target is not None else [],
        "environment": target.environment if target is not None else None,
        "register_variant": (target.variant or None) if target is not None else None,  # embedded: the one started
        "identities": dict((certificates or {}).get("identities", {})),
        "extra_certificates": dict((certificates or {}).get("extra_certificates", {})),
    }
