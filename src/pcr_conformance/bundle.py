"""Evidence bundles (docs/concepts.md#evidence-bundles): one zip archive of a report folder with the kit, the
specs and the target file the run used, the public certificates, and a signed in-toto statement of it all.

Layout of the archive (every path relative to its root, so the curl commands of the attachments can name
`certs/<slot>.pem`):

    summary.json, junit.xml, pytest.log, allure-results/..., html/..., ...   the report folder as it is
    kit/<kit>.toml                          the kit file
    specs/<file>.yaml                       the spec files, each checked against summary.json's spec_hashes
    target/<target>.toml                    the target file, secrets removed (bundle.sanitize_target)
    certs/ca.pem, certs/<slot>.pem          CA and client certificates, public parts only
    attestation/statement.dsse.json         DSSE envelope of the in-toto statement (every file above, sha256)
    attestation/signer.pem                  the signer's certificate (chain), or signer.pub.pem for a bare key

Verification is in bundle_verify.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import re
import tomllib
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509

from pcr_conformance import attestation, kits, specs, target
from pcr_conformance.errors import HarnessError

ENVELOPE = "attestation/statement.dsse.json"
SIGNER_CERT = "attestation/signer.pem"
SIGNER_KEY = "attestation/signer.pub.pem"
ATTESTATION_FILES = (ENVELOPE, SIGNER_CERT, SIGNER_KEY)
GENERATED_FOLDERS = ("kit", "specs", "target", "certs", "attestation")
REMOVED = "<removed>"
PASSWORD_ENV = "PCR_SIGN_KEY_PASSWORD"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same files give the same archive members

# A field whose value is a secret or names one: literal values are dropped, `${VAR}` references stay.
_SECRET_FIELD = re.compile(r"^(key|password|passphrase|secret|token|pin)$|[_-](key|password|passphrase|secret|token)$",
                           re.IGNORECASE)
# name = "value" or 'value' on one line (a multi-line string is never matched: the check after catches it)
_PAIR = re.compile(r"""(?P<name>[A-Za-z0-9_-]+)(?P<eq>\s*=\s*)(?P<val>"(?:[^"\\\n]|\\.)*"(?!")|'[^'\n]*'(?!'))""")
_ONLY_REFS = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\})+$")
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


class BundleError(HarnessError):
    """The bundle cannot be built, or a file is not a usable bundle: exit 2, the message says why."""


@dataclasses.dataclass(frozen=True)
class Attester:
    organisation: str
    person: str | None = None
    role: str | None = None


@dataclasses.dataclass
class Built:
    path: Path
    files: dict[str, bytes]
    predicate: dict[str, Any]
    notes: list[str]


def is_secret_field(name: str) -> bool:
    return bool(_SECRET_FIELD.search(name))


def _keeps(value: Any) -> bool:
    return isinstance(value, str) and (value in ("", REMOVED) or bool(_ONLY_REFS.match(value)))


def _secret_fields(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every secret-named field of a parsed TOML document."""
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if is_secret_field(k) and not isinstance(v, dict | list):
                out.append((p, v))
            else:
                out += _secret_fields(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _secret_fields(v, f"{path}[{i}]")
    return out


def sanitize_target(text: str, source: str = "target file") -> tuple[str, list[str]]:
    """The target file's text with every literal value of a key/password field replaced by "<removed>";
    `${VAR}` references stay as written, comments and layout too. Returns (text, removed field paths).
    Raises BundleError when a secret cannot be removed safely (then nothing is bundled)."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BundleError(f"{source}: not valid TOML: {e}") from None
    removed = [p for p, v in _secret_fields(before) if not _keeps(v)]

    def sub(m: re.Match[str]) -> str:
        if not is_secret_field(m["name"]) or _ONLY_REFS.match(m["val"][1:-1]):
            return m[0]
        return f'{m["name"]}{m["eq"]}"{REMOVED}"'

    clean = "".join(_PAIR.sub(sub, line) for line in text.splitlines(keepends=True))
    try:
        after = tomllib.loads(clean)
    except tomllib.TOMLDecodeError as e:
        raise BundleError(f"{source}: could not remove its secrets safely ({e})") from None
    left = [p for p, v in _secret_fields(after) if not _keeps(v)]
    if left or _PRIVATE_KEY.search(clean.encode("utf-8")):
        raise BundleError(f"{source}: could not remove the secret in {left[0] if left else 'a PRIVATE KEY block'}; "
                          f"write it as a ${{VAR}} reference")
    return clean, removed


def _expand_path(value: Any, base: Path) -> Path | None:
    """A certificate path of the target file, `${VAR}` expanded from the environment; None if unresolvable."""
    if not isinstance(value, str) or not value:
        return None
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        if m[1] not in os.environ:
            missing = True
            return ""
        return os.environ[m[1]]

    expanded = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, value)
    if missing or not expanded:
        return None
    p = Path(expanded)
    return p if p.is_absolute() else base / p


def certificate_files(report_dir: Path, target_doc: Mapping[str, Any], target_path: Path) -> tuple[dict[str, bytes], list[str]]:
    """{certs/<slot>.pem: PEM of the certificates only} and notes on what could not be included.

    Sources: the report folder's own certs/ (if the run left one), then the target file's tls.ca_bundle
    (certs/ca.pem), identities.<slot>.cert and extra_certificates.<kind>.cert. Only CERTIFICATE blocks are
    kept, re-encoded: a key next to a certificate in the same PEM file never travels."""
    wanted: dict[str, Path | None] = {}
    own = report_dir / "certs"
    if own.is_dir():
        for p in sorted(own.glob("*.pem")):
            wanted[p.stem] = p
    tls = target_doc.get("tls") or {}
    if isinstance(tls, dict) and tls.get("ca_bundle"):
        wanted.setdefault("ca", _expand_path(tls["ca_bundle"], target_path.parent))
    for table in ("identities", "extra_certificates"):
        for slot, spec in (target_doc.get(table) or {}).items():
            if isinstance(spec, dict) and spec.get("cert"):
                wanted.setdefault(slot, _expand_path(spec["cert"], target_path.parent))
    out: dict[str, bytes] = {}
    notes: list[str] = []
    for slot, path in wanted.items():
        if path is None or not path.is_file():
            notes.append(f"certificate {slot}: not included ({'its path uses an unset variable' if path is None else f'{path} does not exist'})")
            continue
        try:
            certs = attestation.load_certificates(path.read_bytes())
        except (attestation.AttestationError, OSError) as e:
            notes.append(f"certificate {slot}: not included ({path}: {e})")
            continue
        out[f"certs/{slot}.pem"] = attestation.certificates_pem(certs)
    if not wanted:
        notes.append("certificates: the target names none (the embedded register's certificates are deleted "
                     "with its temporary folder)")
    return out, notes


def _report_files(report_dir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for p in sorted(report_dir.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        rel = p.relative_to(report_dir).as_posix()
        if rel.split("/", 1)[0] in GENERATED_FOLDERS:
            if rel.startswith("certs/"):
                continue  # the report's own certificates are re-encoded by certificate_files
            raise BundleError(f"{p}: the report folder has a {rel.split('/', 1)[0]}/ of its own, a name the "
                              f"bundle uses; move it away")
        files[rel] = p.read_bytes()
    return files


def read_summary(report_dir: Path) -> dict[str, Any]:
    path = report_dir / "summary.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path} does not exist; give a reports/<kit>/<target>/ folder of a finished run") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: not readable JSON ({e})") from None
    for field in ("kit", "target", "verdict"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            raise BundleError(f"{path}: field {field} missing; is this a pcr-conformance summary?")
    return doc


def collect(report_dir: Path, target_file: str | None = None) -> tuple[dict[str, bytes], dict[str, Any], list[str]]:
    """Every file of the bundle but the attestation, the facts for the predicate, and notes."""
    if not report_dir.is_dir():
        raise BundleError(f"{report_dir} is not a folder; give a reports/<kit>/<target>/ folder")
    summary = read_summary(report_dir)
    files = _report_files(report_dir)
    for name in ("junit.xml", "allure-results"):
        if name not in files and not any(f.startswith(name + "/") for f in files):
            raise BundleError(f"{report_dir} has no {name}; bundle the folder of a finished run")
    try:
        kit = kits.load_kit(summary["kit"])
    except HarnessError as e:
        raise BundleError(f"kit {summary['kit']} of the run: {e}") from None
    kit_path = Path(kit.source)
    files[f"kit/{kit_path.name}"] = kit_path.read_bytes()
    spec_names: dict[str, str] = {}
    for name, digest in sorted((summary.get("spec_hashes") or {}).items()):
        path = specs.specs_dir() / name
        if not path.is_file():
            raise BundleError(f"spec file {name} of the run is not in {specs.specs_dir()}; set PCR_SPECS_DIR to "
                              f"the specs the run used")
        data = path.read_bytes()
        if attestation.sha256_hex(data) != digest:
            raise BundleError(f"{path} changed since the run (its sha256 differs from summary.json's spec_hashes); "
                              f"set PCR_SPECS_DIR to the specs the run used")
        files[f"specs/{name}"] = data
        spec_names[name] = digest
    if not spec_names:
        raise BundleError(f"{report_dir / 'summary.json'} lists no spec_hashes; cannot tell which specs were used")
    try:
        tpath = target.resolve_target_path(target_file or summary["target"])
    except HarnessError as e:
        raise BundleError(f"target file of the run: {e}; pass --target FILE") from None
    clean, removed = sanitize_target(tpath.read_text(encoding="utf-8"), str(tpath))
    files[f"target/{tpath.name}"] = clean.encode("utf-8")
    certs, notes = certificate_files(report_dir, tomllib.loads(clean), tpath)
    files.update(certs)
    leaked = [n for n, data in files.items() if _PRIVATE_KEY.search(data)]
    if leaked:
        raise BundleError(f"{leaked[0]} holds a PRIVATE KEY block; an evidence bundle never carries a key")
    facts = {"summary": summary, "kit": kit, "kit_file": f"kit/{kit_path.name}", "target_file": f"target/{tpath.name}",
             "secrets_removed": removed, "specs": spec_names, "certificates": sorted(certs)}
    return files, facts, notes


def predicate(facts: Mapping[str, Any], attester: Attester, signer: x509.Certificate | None,
              tool_version: str, signed_at: dt.datetime) -> dict[str, Any]:
    s = facts["summary"]
    run = {k: s[k] for k in ("run_id", "profile", "seed", "suite_version", "counts", "duration_s", "started_at",
                             "ended_at", "started", "ended", "git_commit", "tool_version") if k in s}
    return {
        "verdict": s["verdict"],
        "kit": {"name": s["kit"], "title": s.get("kit_title", facts["kit"].title), "file": facts["kit_file"]},
        "target": {"name": s["target"], "file": facts["target_file"], "secrets_removed": facts["secrets_removed"]},
        "run": run,
        "requirements": s.get("requirements", {}),
        "specs": facts["specs"],
        "certificates": facts["certificates"],
        "tool": {"name": "pcr-conformance", "version": tool_version},
        "attester": {"organisation": attester.organisation, "person": attester.person, "role": attester.role},
        "signer": None if signer is None else {"subject": signer.subject.rfc4514_string(),
                                               "sha256": attestation.fingerprint(signer)},
        "signed_at": signed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def load_signer(key_pem: bytes, cert_pem: bytes | None) -> tuple[attestation.PrivateKey, list[x509.Certificate]]:
    password = os.environ.get(PASSWORD_ENV)
    try:
        key = attestation.load_private_key(key_pem, password.encode("utf-8") if password else None)
        chain = attestation.load_certificates(cert_pem) if cert_pem is not None else []
    except attestation.AttestationError as e:
        raise BundleError(str(e)) from None
    if chain and attestation.key_id(chain[0].public_key()) != attestation.key_id(key.public_key()):  # type: ignore[arg-type]
        raise BundleError(f"the certificate {attestation.describe(chain[0])} is not the key's: its public key differs")
    return key, chain


def build(report_dir: Path, key_pem: bytes, cert_pem: bytes | None, attester: Attester | None, output: Path,
          tool_version: str, target_file: str | None = None, now: dt.datetime | None = None) -> Built:
    """Write the bundle of `report_dir` to `output` and return what went in."""
    key, chain = load_signer(key_pem, cert_pem)
    signed_at = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    if chain:
        try:
            attestation.check_signer_usage(chain[0])
        except attestation.AttestationError as e:
            raise BundleError(str(e)) from None
        if not chain[0].not_valid_before_utc <= signed_at <= chain[0].not_valid_after_utc:
            raise BundleError(f"the certificate {attestation.describe(chain[0])} is not valid now "
                              f"(valid {chain[0].not_valid_before_utc:%Y-%m-%d} to {chain[0].not_valid_after_utc:%Y-%m-%d})")
    if attester is None or not attester.organisation:
        org = attestation.subject_attribute(chain[0], x509.NameOID.ORGANIZATION_NAME) if chain else ""
        if not org:
            raise BundleError("name the attesting organisation: --attested-by-org NAME (the certificate has no O=)")
        attester = Attester(org, attester.person if attester else None, attester.role if attester else None)
    files, facts, notes = collect(report_dir, target_file)
    pred = predicate(facts, attester, chain[0] if chain else None, tool_version, signed_at)
    stmt = attestation.statement({n: attestation.sha256_hex(d) for n, d in files.items()}, pred)
    envelope = attestation.sign_envelope(stmt, key)
    files[ENVELOPE] = json.dumps(envelope, indent=1).encode("utf-8") + b"\n"
    if chain:
        files[SIGNER_CERT] = attestation.certificates_pem(chain)
    else:
        files[SIGNER_KEY] = attestation.public_key_pem(key.public_key())
        notes.append("signer: no certificate given (--cert); the bundle names the key only and cannot be "
                     "checked against a CA")
    write_zip(output, files)
    return Built(output, files, pred, notes)


def write_zip(output: Path, files: Mapping[str, bytes]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(output)
