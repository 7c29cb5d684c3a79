"""`pcr-conformance bundle` and `verify`: a signed evidence bundle of a real run, and what breaks it.

One real run of a small kit (KIT_TOML, in ./kits of the folder the module runs in, as a user's own kit) against
the embedded register per module; keys and certificates are made here with `cryptography`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from pcr_conformance import attestation, bundle
from pcr_conformance.cli import main

KIT = "evidence"
# What a credit information company's run shows, in a few tests: extracts (corpus cases and a scenario) and a
# loan added and read back, with the lender's and the company's certificates in the attachments' curl commands.
KIT_TOML = f"""name = "{KIT}"
title = "Evidence (a few tests)"
actors = ["nobody"]
include = ["EXT-001", "EXT-005", "RPT-003"]
"""
NOW = dt.datetime.now(dt.UTC)


# ---- keys and certificates ----------------------------------------------------------------------------


class Pki:
    """A CA and certificates it issues, written as PEM files into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{name} Certifier"),
                               x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Evidence CA")])
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_path = self.write(f"{name}-ca.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def issue(self, name: str, org: str, key: attestation.PrivateKey | None = None,
              days: tuple[int, int] = (-1, 30)) -> tuple[Path, Path]:
        """(certificate file, key file) of a signer certificate for `org`."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{org} evidence signer")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return (self.write(f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
                self.write(f"{name}.key", key_pem))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("pki")
    ours, other = Pki(folder, "ours"), Pki(folder, "other")
    cert, key = ours.issue("signer", "Demo Credit Information Oy")
    other_cert, other_key = other.issue("impostor", "Demo Credit Information Oy")
    # The target's certificates: a CA bundle and a lender certificate whose PEM file also holds its key.
    lender_cert, lender_key = ours.issue("lender", "Demo Bank Oyj")
    combined = ours.write("lender-combined.pem", lender_cert.read_bytes() + lender_key.read_bytes())
    return {"ca": ours.ca_path, "cert": cert, "key": key, "other_ca": other.ca_path, "other_cert": other_cert,
            "other_key": other_key, "combined": combined, "lender_key": lender_key, "ours": ours}


@pytest.fixture(scope="module")
def kit_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with kits/<KIT>.toml, the working directory of the module's tests from here on: `bundle` finds a
    run's kit by its name in ./kits (kits.kit_dirs), as for a user's own kit."""
    folder = tmp_path_factory.mktemp("kit-folder")
    (folder / "kits").mkdir()
    (folder / "kits" / f"{KIT}.toml").write_text(KIT_TOML, encoding="utf-8")
    before = Path.cwd()
    os.chdir(folder)
    yield folder
    os.chdir(before)


@pytest.fixture(scope="module")
def report_dir(kit_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run of the small kit against the embedded register."""
    out = tmp_path_factory.mktemp("reports")
    proc = subprocess.run([sys.executable, "-m", "pcr_conformance.cli", "run", "--kit", KIT, "--no-html",
                           "--output", str(out)], cwd=kit_folder, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return out / KIT / "reference"


TARGET_WITH_SECRETS = """\
# A target with every kind of secret: a reference (kept), a literal key path and a password (removed).
name = "reference"
embedded = true
capabilities = ["reporting", "extract"]

[tls]
ca_bundle = "${PCR_TEST_CA}"

[identities.lender]
name = "Demo Bank Oyj"
cert = "${PCR_TEST_LENDER_CERT}"
key = "${PCR_KEY}"
owner = { idCodeType = "BusinessId", idCode = "9900101-0" }

[identities.cic]
cert = "lender-combined.pem"
key = "/home/alice/secret/cic.key"
owner = { idCodeType = "BusinessId", idCode = "9900108-8", key_password = "hunter2" }

[extra_certificates.expired]
cert = "${PCR_UNSET_VARIABLE}"
key = '/home/alice/secret/expired.key'
"""


@pytest.fixture(scope="module")
def target_file(pki: dict[str, object]) -> Path:
    ours = pki["ours"]
    assert isinstance(ours, Pki)
    return ours.write("secret-target.toml", TARGET_WITH_SECRETS.encode("utf-8"))


def make_bundle(report: Path, out: Path, key: object, cert: object | None, *extra: str) -> int:
    args = ["bundle", str(report), "--sign-key", str(key), "-o", str(out), *extra]
    if cert is not None:
        args += ["--cert", str(cert)]
    return main(args)


@pytest.fixture(scope="module")
def good_bundle(report_dir: Path, pki: dict[str, object], target_file: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "evidence.zip"
    # A report whose run left no certs/: the certificates then come from the target file given.
    bare = tmp_path_factory.mktemp("bare") / "reference"
    shutil.copytree(report_dir, bare)
    shutil.rmtree(bare / "certs", ignore_errors=True)
    env = {"PCR_TEST_CA": str(pki["ca"]), "PCR_TEST_LENDER_CERT": str(pki["cert"])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = make_bundle(bare, out, pki["key"], pki["cert"], "--target", str(target_file),
                           "--attested-by-person", "Maija Meikäläinen", "--attested-by-role", "Head of Compliance")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0
    return out


def verify(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["verify", str(path), *extra])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).strip().splitlines()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rewrite(src: Path, dst: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    files = members(src)
    change(files)
    bundle.write_zip(dst, files)
    return dst


def flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


# ---- a good bundle --------------------------------------------------------------------------------------


def test_bundle_of_a_real_run_verifies_and_prints_the_signed_verdict(
        good_bundle: Path, report_dir: Path, pki: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = verify(good_bundle, capsys, "--ca", str(pki["ca"]))
    assert code == 0, lines
    summary = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    assert lines[0].startswith(f"{good_bundle}: valid: ") and lines[0].endswith(" files match the signed statement")
    assert lines[1] == f"verdict: {summary['verdict']} (kit {KIT}, target reference, run {summary['run_id']})"
    assert lines[2].startswith("attested by: Demo Credit Information Oy, Maija Meikäläinen (Head of Compliance), "
                               "signed ")
    assert lines[3].startswith("signer: CN=Demo Credit Information Oy evidence signer,O=Demo Credit Information Oy")
    assert "chains to CN=ours Evidence CA,O=ours Certifier" in lines[3]
    code, lines = verify(good_bundle, capsys)
    assert code == 0 and lines[3].endswith("not checked against a CA (pass --ca)")


def test_the_bundle_holds_the_run_its_contract_and_a_statement_of_every_file(
        good_bundle: Path, report_dir: Path, pki: dict[str, object]) -> None:
    files = members(good_bundle)
    summary = json.loads(files["summary.json"])
    for name in ("summary.json", "junit.xml", "pytest.log", f"kit/{KIT}.toml", "target/secret-target.toml",
                 "certs/ca.pem", "certs/lender.pem", "certs/cic.pem", bundle.ENVELOPE, bundle.SIGNER_CERT):
        assert name in files, name
    assert any(n.startswith("allure-results/") for n in files)
    assert {f"specs/{n}" for n in summary["spec_hashes"]} <= set(files)
    assert "certs/expired.pem" not in files  # its path names an unset variable
    assert files["certs/ca.pem"] == Path(str(pki["ca"])).read_bytes()
    env = json.loads(files[bundle.ENVELOPE])
    assert env["payloadType"] == "application/vnd.in-toto+json" and len(env["signatures"]) == 1
    stmt = json.loads(base64.b64decode(env["payload"]))
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == attestation.PREDICATE_TYPE
    subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    assert set(subjects) == set(files) - set(bundle.ATTESTATION_FILES)
    assert all(attestation.sha256_hex(files[n]) == d for n, d in subjects.items())
    pred = stmt["predicate"]
    assert pred["verdict"] == summary["verdict"] and pred["requirements"] == summary["requirements"]
    assert pred["kit"]["name"] == KIT and pred["run"]["run_id"] == summary["run_id"]
    assert pred["attester"] == {"organisation": "Demo Credit Information Oy", "person": "Maija Meikäläinen",
                                "role": "Head of Compliance"}
    assert pred["tool"]["name"] == "pcr-conformance" and pred["specs"] == summary["spec_hashes"]


def test_target_secrets_are_removed_references_kept_and_no_private_key_travels(good_bundle: Path) -> None:
    files = members(good_bundle)
    target = files["target/secret-target.toml"].decode("utf-8")
    assert 'key = "${PCR_KEY}"' in target  # a reference stays as written
    assert 'ca_bundle = "${PCR_TEST_CA}"' in target
    assert "/home/alice/secret" not in target and "hunter2" not in target
    assert target.count('"<removed>"') == 3
    assert "# A target with every kind of secret" in target  # comments and layout stay
    pred = json.loads(base64.b64decode(json.loads(files[bundle.ENVELOPE])["payload"]))["predicate"]
    assert sorted(pred["target"]["secrets_removed"]) == [
        "extra_certificates.expired.key", "identities.cic.key", "identities.cic.owner.key_password"]
    leaks = [n for n, data in files.items() if b"PRIVATE KEY" in data]
    assert not leaks, leaks
    assert b"PRIVATE KEY" not in good_bundle.read_bytes()
    # the combined PEM of the cic slot contributed its certificate only
    assert files["certs/cic.pem"].count(b"BEGIN CERTIFICATE") == 1


def test_sanitize_target_refuses_a_secret_it_cannot_remove() -> None:
    text, removed = bundle.sanitize_target('key = "${A}${B}"\npassword = "pw"\n')
    assert text == 'key = "${A}${B}"\npassword = "<removed>"\n' and removed == ["password"]
    with pytest.raises(bundle.BundleError, match="could not remove the secret in key"):
        bundle.sanitize_target('key = """\n-----BEGIN PRIVATE KEY-----\nabc\n"""\n')


# ---- what makes a bundle invalid ------------------------------------------------------------------------


def _allure_file(files: dict[str, bytes]) -> str:
    return sorted(n for n in files if n.startswith("allure-results/") and n.endswith("-result.json"))[0]


@pytest.mark.parametrize("which", ["summary.json", "allure-results", "specs/reporting.yaml", f"kit/{KIT}.toml",
                                   "target/secret-target.toml", "certs/ca.pem", bundle.ENVELOPE])
def test_one_flipped_byte_in_any_file_fails_verification_naming_the_file(
        which: str, good_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = _allure_file(members(good_bundle)) if which == "allure-results" else which

    def change(files: dict[str, bytes]) -> None:
        files[name] = flip(files[name])

    code, lines = verify(rewrite(good_bundle, tmp_path / "tampered.zip", change), capsys)
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'tampered.zip'}: INVALID: {name}: "), lines


def test_a_byte_flipped_in_the_archive_itself_names_the_member(
        good_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = bytearray(good_bundle.read_bytes())
    with zipfile.ZipFile(good_bundle) as z:
        info = z.getinfo("junit.xml")
    # local header: 30 bytes + name + extra field, then the compressed data
    name_len = int.from_bytes(raw[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28: info.header_offset + 30], "little")
    raw[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x01
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    code, lines = verify(damaged, capsys)
    assert code == 1 and lines[0].startswith(f"{damaged}: INVALID: junit.xml: "), lines


def test_a_missing_or_an_extra_file_fails_verification(
        good_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = verify(rewrite(good_bundle, tmp_path / "a.zip", lambda f: f.pop("junit.xml")), capsys)
    assert code == 1 and "INVALID: junit.xml: listed in the signed statement but missing" in lines[0]
    code, lines = verify(rewrite(good_bundle, tmp_path / "b.zip", lambda f: f.update({"html/extra.js": b"x"})), capsys)
    assert code == 1 and "INVALID: html/extra.js: in the bundle but not in the signed statement" in lines[0]


def test_a_bundle_signed_with_a_key_the_ca_did_not_certify_fails(
        report_dir: Path, pki: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "impostor.zip"
    assert make_bundle(report_dir, out, pki["other_key"], pki["other_cert"]) == 0
    code, lines = verify(out, capsys, "--ca", str(pki["ca"]))
    assert code == 1
    assert lines[0].startswith(f"{out}: INVALID: {bundle.SIGNER_CERT}: signer certificate ")
    assert "is not issued by the given CA (CN=ours Evidence CA,O=ours Certifier)" in lines[0]
    assert verify(out, capsys, "--ca", str(pki["other_ca"]))[0] == 0


def test_a_swapped_signer_certificate_fails_the_signature(
        good_bundle: Path, pki: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = Path(str(pki["other_cert"])).read_bytes()
    code, lines = verify(rewrite(good_bundle, tmp_path / "swap.zip", lambda f: f.update({bundle.SIGNER_CERT: other})),
                         capsys)
    assert code == 1 and f"INVALID: {bundle.ENVELOPE}: the signature does not verify" in lines[0], lines


def test_a_key_without_certificate_verifies_but_not_against_a_ca(
        report_dir: Path, pki: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bare.zip"
    assert make_bundle(report_dir, out, pki["key"], None, "--attested-by-org", "Demo Credit Information Oy") == 0
    code, lines = verify(out, capsys)
    assert code == 0 and lines[3].startswith("signer: a bare public key (keyid "), lines
    code, lines = verify(out, capsys, "--ca", str(pki["ca"]))
    assert code == 1 and "no certificate to check against the CA" in lines[0]


def test_a_certificate_not_valid_when_signed_fails_the_chain(pki: dict[str, object]) -> None:
    ours = pki["ours"]
    assert isinstance(ours, Pki)
    cert_path, _ = ours.issue("old", "Demo Credit Information Oy", days=(-60, -30))
    chain = attestation.load_certificates(cert_path.read_bytes())
    ca = attestation.load_certificates(Path(str(pki["ca"])).read_bytes())
    with pytest.raises(attestation.AttestationError, match="^signer certificate .* was not valid at"):
        attestation.verify_chain(chain, ca, NOW)


# ---- unusable input and refused bundles -----------------------------------------------------------------


def test_not_a_bundle_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    code, lines = verify(tmp_path / "notes.txt", capsys)
    assert code == 2 and "not an evidence bundle" in lines[0]
    bundle.write_zip(tmp_path / "empty.zip", {"summary.json": b"{}"})
    code, lines = verify(tmp_path / "empty.zip", capsys)
    assert code == 2 and f"no {bundle.ENVELOPE}" in lines[0]
    assert verify(tmp_path / "missing.zip", capsys)[0] == 2


def test_bundle_refuses_a_mismatched_certificate_and_a_report_holding_a_key(
        report_dir: Path, pki: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert make_bundle(report_dir, tmp_path / "x.zip", pki["key"], pki["other_cert"]) == 2
    assert "is not the key's" in capsys.readouterr().err
    copy = tmp_path / "report"
    subprocess.run(["cp", "-r", str(report_dir), str(copy)], check=True)
    (copy / "leftover.key").write_bytes(Path(str(pki["lender_key"])).read_bytes())
    assert make_bundle(copy, tmp_path / "y.zip", pki["key"], pki["cert"]) == 2
    assert "leftover.key holds a PRIVATE KEY block" in capsys.readouterr().err
    assert not (tmp_path / "y.zip").exists()
    assert make_bundle(tmp_path / "nowhere", tmp_path / "z.zip", pki["key"], pki["cert"]) == 2


# ---- the signature scheme itself ------------------------------------------------------------------------


def test_pae_is_the_dsse_v1_encoding() -> None:
    assert attestation.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert attestation.pae("t", "ä".encode()) == b"DSSEv1 1 t 2 \xc3\xa4"  # lengths count bytes


@pytest.mark.parametrize("make_key", [lambda: ec.generate_private_key(ec.SECP256R1()),
                                      lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                      ed25519.Ed25519PrivateKey.generate], ids=["ecdsa-p256", "rsa-pss", "ed25519"])
def test_envelopes_of_each_key_type_verify_with_their_key_only(make_key: Callable[[], attestation.PrivateKey]) -> None:
    key, other = make_key(), make_key()
    stmt = attestation.statement({"a.txt": attestation.sha256_hex(b"a")}, {"verdict": "conformant"})
    raw = json.dumps(attestation.sign_envelope(stmt, key)).encode()
    assert attestation.open_envelope(raw, key.public_key())["predicate"] == {"verdict": "conformant"}
    with pytest.raises(attestation.AttestationError, match="does not verify"):
        attestation.open_envelope(raw, other.public_key())


def test_help_of_bundle_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("bundle", "verify"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: pcr-conformance {command}")



def test_a_runs_own_bundle_ships_the_certificates_its_curl_commands_name(
        report_dir: Path, pki: dict[str, object], tmp_path: Path) -> None:
    """The run wrote its public certificates to certs/ while the register ran; the bundle of that report ships
    them, so every --cacert/--cert of the attachments' curl commands names a file of the bundle."""
    import re

    out = tmp_path / "own.zip"
    assert make_bundle(report_dir, out, pki["key"], pki["cert"]) == 0
    with zipfile.ZipFile(out) as z:
        files = {n: z.read(n) for n in z.namelist()}
    assert files["certs/ca.pem"] == (report_dir / "certs" / "ca.pem").read_bytes()
    named = set()
    for name, data in files.items():
        if name.startswith("allure-results/") and name.endswith(".txt"):
            named |= set(re.findall(r"--(?:cacert|cert) (certs/[\w.-]+\.pem)", data.decode("utf-8", "replace")))
    assert named and all(n in files for n in named), sorted(named - set(files))
    assert not any(b"PRIVATE KEY" in data for data in files.values())
