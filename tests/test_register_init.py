"""Unit tests of ``pcr-register init`` / ``export-pool``: data dir, certificates, population, pool file."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pcr_register.identifiers import (
    CENTURY_OF_SIGN,
    CENTURY_SIGNS,
    business_id,
    business_id_check_digit,
    hetu,
    hetu_check_character,
    is_valid_business_id,
    is_valid_hetu,
)
from pcr_register.init import ORGANISATIONS, build_pool, export_pool, init_data_dir
from pcr_register.population import generate_population

TODAY = date(2026, 11, 21)
ORG_KEYS = {"lender-a", "lender-b", "kela", "lender-noperm", "lender-foreign", "authority-full",
            "authority-consumer", "cic"}
PUBLISHED_HETUS = ["010594Y9032", "020594X903P", "030594W903B", "040594V9030", "050594U903M",
                   "010516B903X", "020516C903K", "030516D9037", "010501E9032", "020504A902E"]
PUBLISHED_BUSINESS_IDS = ["0112038-9", "0111027-9", "0194099-3"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("register")
    init_data_dir(path, persons=500, seed=1, today=TODAY)
    return path


@pytest.fixture(scope="module")
def population(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / "population.json").read_text())


@pytest.fixture(scope="module")
def organisations(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / "organisations.json").read_text())


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def client_files() -> list[str]:
    return [f"clients/{org.key}-{role}" for org in ORGANISATIONS for role in org.roles]


# --- identifiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", PUBLISHED_HETUS)
def test_published_test_hetus_validate(code: str) -> None:
    assert is_valid_hetu(code)
    assert hetu_check_character(code[:6] + code[7:10]) == code[10]


@pytest.mark.parametrize("code", PUBLISHED_BUSINESS_IDS)
def test_published_business_ids_validate(code: str) -> None:
    assert is_valid_business_id(code)
    assert business_id(code[:7]) == code


def test_invalid_identifiers_are_refused() -> None:
    assert not is_valid_hetu("010594Y9033")  # wrong check character
    assert not is_valid_hetu("310294-9032")  # no such date
    assert not is_valid_hetu("010594G9032")  # no such century sign
    assert not is_valid_hetu("010594-0012")  # individual number 001 is never issued
    assert not is_valid_business_id("1234567-8")  # the public mock's invalid one (docs/register-facts.md#business-id)
    assert business_id_check_digit("9900107") is None  # remainder 1: no valid check digit
    with pytest.raises(ValueError):
        hetu(date(1994, 5, 1), 903, "A")  # 'A' is a 2000s sign


def test_century_twins_share_the_check_character() -> None:
    assert hetu(date(1994, 5, 1), 903, "-")[-1] == hetu(date(1994, 5, 1), 903, "Y")[-1] == "2"


# --- data dir -----------------------------------------------------------------------------------------


def test_init_creates_every_file(data_dir: Path) -> None:
    expected = ["ca.pem", "ca.key", "server.pem", "server.key", "organisations.json", "population.json",
                "foreign-ca/ca.pem"]
    for stem in [*client_files(), "clients/expired-lender-reporting", "foreign-ca/lender-a-reporting"]:
        expected += [f"{stem}.pem", f"{stem}.key"]
    missing = [name for name in expected if not (data_dir / name).is_file()]
    assert not missing
    assert (data_dir / "server.key").stat().st_mode & 0o077 == 0  # private keys are not world-readable


def test_init_of_500_persons_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    init_data_dir(tmp_path / "d", persons=500, seed=7)
    assert time.perf_counter() - start < 3.0


# --- certificates (interfaces.md §6) -----------------------------------------------------------------


def test_client_and_server_certificates_chain_to_the_ca(data_dir: Path) -> None:
    ca = load(data_dir / "ca.pem")
    now = datetime.now(UTC)
    for stem in [*client_files(), "server"]:
        cert = load(data_dir / f"{stem}.pem")
        cert.verify_directly_issued_by(ca)
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert 729 <= days <= 731  # two years, like the real certificates


def test_server_certificate_names_loopback(data_dir: Path) -> None:
    san = load(data_dir / "server.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_client_subjects_carry_the_profile(data_dir: Path, organisations: dict[str, Any]) -> None:
    for key, org in organisations.items():
        for role in org["roles"]:
            cert = load(data_dir / "clients" / f"{key}-{role}.pem")
            country = org["countryCode"] or "FI"
            assert attr(cert, NameOID.ORGANIZATION_NAME) == [org["name"]]
            assert attr(cert, NameOID.ORGANIZATION_IDENTIFIER) == [f"NTR{country}-{org['idCode']}"]
            assert attr(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == [role]
            assert attr(cert, NameOID.COMMON_NAME) == [f"{key} {role}"]
            expected_title = ["consumer-credit-only"] if key == "authority-consumer" else []
            assert attr(cert, NameOID.TITLE) == expected_title


def test_expired_certificate_is_expired_but_otherwise_valid(data_dir: Path) -> None:
    cert = load(data_dir / "clients/expired-lender-reporting.pem")
    cert.verify_directly_issued_by(load(data_dir / "ca.pem"))
    assert cert.not_valid_after_utc < datetime.now(UTC)
    assert attr(cert, NameOID.COMMON_NAME) == ["lender-a reporting"]


def test_foreign_ca_certificate_is_not_signed_by_the_ca(data_dir: Path) -> None:
    cert = load(data_dir / "foreign-ca/lender-a-reporting.pem")
    assert cert.subject == load(data_dir / "clients/lender-a-reporting.pem").subject
    cert.verify_directly_issued_by(load(data_dir / "foreign-ca/ca.pem"))
    ca = load(data_dir / "ca.pem")
    with pytest.raises(ValueError):  # other issuer name
        cert.verify_directly_issued_by(ca)
    with pytest.raises(InvalidSignature):  # and not the CA's signature either
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def _handshake(data_dir: Path, cert: str, key: str) -> bool:
    """One mutual-TLS handshake against a server using the data dir's server certificate and CA."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(data_dir / "server.pem", data_dir / "server.key")
    server_ctx.load_verify_locations(data_dir / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
    client_ctx.load_cert_chain(data_dir / cert, data_dir / key)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    result: dict[str, bool] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
                result["server"] = True
        except (ssl.SSLError, OSError):
            result["server"] = False

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.recv(2)  # TLS 1.3: the client certificate is checked after the client's handshake ends
    except (ssl.SSLError, OSError):
        pass
    finally:
        thread.join(5)
        listener.close()
    return result.get("server", False)


def test_tls_accepts_valid_and_refuses_negative_certificates(data_dir: Path) -> None:
    assert _handshake(data_dir, "clients/lender-a-reporting.pem", "clients/lender-a-reporting.key")
    assert not _handshake(data_dir, "clients/expired-lender-reporting.pem", "clients/expired-lender-reporting.key")
    assert not _handshake(data_dir, "foreign-ca/lender-a-reporting.pem", "foreign-ca/lender-a-reporting.key")


# --- organisations -----------------------------------------------------------------------------------


def test_organisations_file(organisations: dict[str, Any]) -> None:
    assert set(organisations) == ORG_KEYS
    for key, org in organisations.items():
        assert set(org) == {"name", "idCodeType", "idCode", "countryCode", "roles", "extractPermission",
                            "isKela", "scope"}
        if org["idCodeType"] == "BusinessId":
            assert is_valid_business_id(org["idCode"]), key
            assert org["countryCode"] is None
        else:
            assert org["idCodeType"] == "ForeignBusinessId" and org["countryCode"] == "SE"
    assert organisations["lender-a"]["roles"] == ["reporting", "using-data"]
    assert organisations["lender-a"]["extractPermission"] and organisations["lender-b"]["extractPermission"]
    assert not organisations["lender-noperm"]["extractPermission"]
    assert organisations["lender-noperm"]["roles"] == ["reporting", "using-data"]
    assert organisations["kela"]["isKela"] and organisations["kela"]["roles"] == ["reporting"]
    assert [k for k, o in organisations.items() if o["isKela"]] == ["kela"]
    assert organisations["authority-consumer"]["scope"] == "consumer-credit-only"
    assert {o["scope"] for k, o in organisations.items() if k != "authority-consumer"} == {"full"}
    assert organisations["cic"]["roles"] == ["credit-information-company"]
    assert len({o["idCode"] for o in organisations.values()}) == len(organisations)


# --- population ----------------------------------------------------------------------------------------


def test_population_is_deterministic_for_a_seed(population: dict[str, Any]) -> None:
    assert generate_population(500, seed=1, today=TODAY) == population
    assert generate_population(500, seed=2, today=TODAY) != population
    # Codes and statuses do not depend on today; only the relative dates do.
    later = generate_population(500, seed=1, today=date(2027, 3, 2))
    assert [(p["idCode"], p["status"]) for p in later["persons"]] == [
        (p["idCode"], p["status"]) for p in population["persons"]]


def test_population_codes_are_valid_artificial_and_cover_every_sign(population: dict[str, Any]) -> None:
    persons = population["persons"]
    assert len(persons) == 500
    codes = [p["idCode"] for p in persons] + population["unknown"]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert is_valid_hetu(code), code
        assert 900 <= int(code[7:10]) <= 999, code
    assert {p["idCode"][6] for p in persons} == set(CENTURY_SIGNS)
    active_signs = {p["idCode"][6] for p in persons if p["status"] == "active"}
    assert active_signs == set(CENTURY_SIGNS)


def test_population_shares(population: dict[str, Any]) -> None:
    persons = population["persons"]
    status = Counter(p["status"] for p in persons)
    assert status["deceased"] == 25 and status["not-in-use"] == 20
    assert sum(1 for p in persons if p["income"]) == 350
    in_effect = [p for p in persons if p["voluntaryBan"] and p["voluntaryBan"]["isInEffect"]]
    assert len(in_effect) == 40
    assert sum(p["banConsent"] for p in in_effect) == 20
    assert sum(1 for p in persons if p["banConsent"] and p not in in_effect) == 15
    assert len(population["unknown"]) == 20
    for p in persons:
        assert (p["status"] == "deceased") == (p["dateOfDeath"] is not None)
        if p["status"] != "active":
            assert not p["income"] and p["voluntaryBan"] is None and not p["banConsent"]
        if p["voluntaryBan"]:
            assert p["voluntaryBan"]["reason"] in {"RiskOfIdentityTheft", "ControlOfPersonalFinances", "Other"}
            assert p["banChangedTimeUtc"].endswith("Z")


def test_income_is_the_twelve_months_before_the_current_month(population: dict[str, Any]) -> None:
    months = [(2025, 11), (2025, 12)] + [(2026, m) for m in range(1, 11)]
    for p in population["persons"]:
        if p["income"]:
            assert [(r["year"], r["month"]) for r in p["income"]] == months
            assert all(r["wagesNetAmount"] <= r["wagesGrossAmount"] for r in p["income"])
            assert set(p["income"][0]) == {"year", "month", "wagesGrossAmount", "wagesNetAmount",
                                           "benefitsGrossAmount", "benefitsNetAmount"}


def test_unknown_codes_share_no_digits_with_persons(population: dict[str, Any]) -> None:
    digits = {p["idCode"][:6] + p["idCode"][7:10] for p in population["persons"]}
    assert not digits & {c[:6] + c[7:10] for c in population["unknown"]}


def test_century_twins(population: dict[str, Any]) -> None:
    by_digits: dict[str, list[dict[str, Any]]] = {}
    for p in population["persons"]:
        by_digits.setdefault(p["idCode"][:6] + p["idCode"][7:10], []).append(p)
    pairs = [group for group in by_digits.values() if len(group) > 1]
    assert len(pairs) >= 3
    for a, b in pairs:
        assert a["idCode"][6] != b["idCode"][6]
        assert CENTURY_OF_SIGN[a["idCode"][6]] == CENTURY_OF_SIGN[b["idCode"][6]]
        assert a["idCode"][-1] == b["idCode"][-1]
        for p in (a, b):
            assert p["status"] == "active" and p["income"]


# --- pool file (interfaces.md §7) --------------------------------------------------------------------


def test_export_pool_format(data_dir: Path, population: dict[str, Any], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pool.json"
    pool = export_pool(data_dir, out)
    assert json.loads(out.read_text()) == pool
    assert set(pool) == {"version", "environment", "persons", "organisations", "ca_bundle",
                         "negative_certificates"}
    assert pool["version"] == 1 and pool["environment"] == "Test"
    assert Path(pool["ca_bundle"]).is_absolute() and Path(pool["ca_bundle"]).is_file()

    allowed = {"income", "deceased", "voluntary-ban", "ban-consent", "unknown", "not-in-use", "century-twin",
               "no-income"}
    tags = Counter(t for p in pool["persons"] for t in p["tags"])
    assert set(tags) == allowed
    assert tags["unknown"] == 20 and tags["century-twin"] == 6 and tags["deceased"] == 25
    assert len(pool["persons"]) == 520
    for p in pool["persons"]:
        assert set(p) <= {"idCode", "tags", "dateOfDeath"}
        assert ("dateOfDeath" in p) == ("deceased" in p["tags"])
        assert 900 <= int(p["idCode"][7:10]) <= 999

    assert set(pool["organisations"]) == ORG_KEYS
    for key, org in pool["organisations"].items():
        assert set(org) - {"countryCode"} == {"name", "idCodeType", "idCode", "roles", "extractPermission",
                                              "scope", "certificates"}
        assert set(org["certificates"]) == set(org["roles"])
        for pair in org["certificates"].values():
            assert Path(pair["cert"]).is_absolute() and Path(pair["cert"]).is_file()
            assert Path(pair["key"]).is_absolute() and Path(pair["key"]).is_file()
        assert ("countryCode" in org) == (key == "lender-foreign")
    for pair in pool["negative_certificates"].values():
        assert Path(pair["cert"]).is_file() and Path(pair["key"]).is_file()

    assert export_pool(data_dir, None) == pool
    assert json.loads(capsys.readouterr().out) == pool
    assert build_pool(data_dir) == pool
