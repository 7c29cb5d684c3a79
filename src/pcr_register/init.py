"""``pcr-register init`` and ``pcr-register export-pool`` (interfaces.md §6, §7).

``init_data_dir`` writes a complete register data dir: CA, server certificate, one client certificate per
organisation and role, the negative certificates (expired; signed by an untrusted CA), organisations.json
and population.json. ``export_pool`` turns a data dir into the test-data pool file the harness reads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .certificates import (
    ClientSubject,
    make_ca,
    make_client,
    make_server,
    organization_identifier,
    write_cert,
)
from .identifiers import business_id
from .population import generate_population, pool_tags, twin_digit_set

CONSUMER_CREDIT_ONLY = "consumer-credit-only"


@dataclass(frozen=True)
class Organisation:
    """One fictitious organisation of the reference register (interfaces.md §7; keys are stable)."""

    key: str
    name: str
    id_code_type: str  # BusinessId | ForeignBusinessId
    id_code: str
    roles: tuple[str, ...]
    country_code: str | None = None
    extract_permission: bool = False
    is_kela: bool = False
    scope: str = "full"  # full | consumer-credit-only

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "idCodeType": self.id_code_type,
            "idCode": self.id_code,
            "countryCode": self.country_code,
            "roles": list(self.roles),
            "extractPermission": self.extract_permission,
            "isKela": self.is_kela,
            "scope": self.scope,
        }

    def subject(self, role: str) -> ClientSubject:
        return ClientSubject(
            org_key=self.key,
            org_name=self.name,
            organization_identifier=organization_identifier(self.id_code_type, self.id_code, self.country_code),
            role=role,
            title=CONSUMER_CREDIT_ONLY if self.scope == CONSUMER_CREDIT_ONLY else None,
        )


# Business IDs: Y-tunnus numbers are issued roughly in sequence and have not yet reached the 99xxxxx range,
# so these (valid check digits, docs/register-facts.md#business-id) should belong to no real company. The foreign ID is a
# Swedish-style organisation number whose Luhn digit is wrong, so it cannot be a real one either.
ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation("lender-a", "Demo Bank Oyj", "BusinessId", business_id("9900101"),
                 ("reporting", "using-data"), extract_permission=True),
    Organisation("lender-b", "Esimerkki Rahoitus Oy", "BusinessId", business_id("9900102"),
                 ("reporting", "using-data"), extract_permission=True),
    # Only Kela may report GuaranteeReceivable (docs/register-facts.md#reporting-rules, D20).
    Organisation("kela", "Demo Social Insurance Institution (Kela role)", "BusinessId", business_id("9900103"),
                 ("reporting",), is_kela=True),
    Organisation("lender-noperm", "Testi Kulutusluotto Oy", "BusinessId", business_id("9900104"),
                 ("reporting", "using-data"), extract_permission=False),
    # A foreign business ID needs a country code (D40).
    Organisation("lender-foreign", "Exempel Kredit AB", "ForeignBusinessId", "SE5560000000",
                 ("reporting",), country_code="SE"),
    Organisation("authority-full", "Demo Financial Supervisory Authority", "BusinessId",
                 business_id("9900105"), ("authority",)),
    # Some authorities may see consumer credits only (docs/register-facts.md#authorities-and-cics).
    Organisation("authority-consumer", "Demo Consumer Credit Authority", "BusinessId",
                 business_id("9900106"), ("authority",), scope=CONSUMER_CREDIT_ONLY),
    Organisation("cic", "Demo Credit Information Oy", "BusinessId", business_id("9900108"),
                 ("credit-information-company",)),
)

# Negative certificates (interfaces.md §6/§7): the TLS handshake must be refused for both.
EXPIRED_CERT = "clients/expired-lender-reporting"
FOREIGN_CA_CERT = "foreign-ca/lender-a-reporting"
NEGATIVE_TEMPLATE = ("lender-a", "reporting")


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def init_data_dir(path: Path, persons: int = 500, seed: int = 1, today: date | None = None) -> None:
    """Create (or overwrite) a register data dir at ``path``.

    Certificates are new on every call; population.json depends only on ``persons``, ``seed`` and today.
    """
    path = Path(path)
    (path / "clients").mkdir(parents=True, exist_ok=True)
    (path / "foreign-ca").mkdir(parents=True, exist_ok=True)

    ca = make_ca("pcr-register Test CA", "pcr-register reference register (Test)")
    write_cert(ca, path / "ca.pem", path / "ca.key")
    write_cert(make_server(ca), path / "server.pem", path / "server.key")

    by_key = {org.key: org for org in ORGANISATIONS}
    for org in ORGANISATIONS:
        for role in org.roles:
            stem = path / "clients" / f"{org.key}-{role}"
            write_cert(make_client(ca, org.subject(role)), stem.with_suffix(".pem"), stem.with_suffix(".key"))

    template = by_key[NEGATIVE_TEMPLATE[0]].subject(NEGATIVE_TEMPLATE[1])
    stem = path / EXPIRED_CERT
    write_cert(make_client(ca, template, expired=True), stem.with_suffix(".pem"), stem.with_suffix(".key"))

    foreign_ca = make_ca("Untrusted Foreign CA", "Not the pcr-register CA")
    write_cert(foreign_ca, path / "foreign-ca" / "ca.pem")
    stem = path / FOREIGN_CA_CERT
    write_cert(make_client(foreign_ca, template), stem.with_suffix(".pem"), stem.with_suffix(".key"))

    _write_json(path / "organisations.json", {org.key: org.to_json() for org in ORGANISATIONS})
    _write_json(path / "population.json", generate_population(persons=persons, seed=seed, today=today))


def _pair(stem: Path) -> dict[str, str]:
    return {"cert": str(stem.with_suffix(".pem")), "key": str(stem.with_suffix(".key"))}


def build_pool(data_dir: Path) -> dict[str, Any]:
    """The pool document (interfaces.md §7) for a data dir written by ``init_data_dir``; paths absolute."""
    data_dir = Path(data_dir).resolve()
    organisations = json.loads((data_dir / "organisations.json").read_text(encoding="utf-8"))
    population = json.loads((data_dir / "population.json").read_text(encoding="utf-8"))

    twins = twin_digit_set(population["persons"])
    persons: list[dict[str, Any]] = []
    for p in population["persons"]:
        entry: dict[str, Any] = {"idCode": p["idCode"], "tags": pool_tags(p, twins)}
        if p["dateOfDeath"]:
            entry["dateOfDeath"] = p["dateOfDeath"]
        persons.append(entry)
    persons.extend({"idCode": code, "tags": ["unknown"]} for code in population["unknown"])

    orgs: dict[str, Any] = {}
    for key, org in organisations.items():
        entry = {"name": org["name"], "idCodeType": org["idCodeType"], "idCode": org["idCode"]}
        if org.get("countryCode"):
            entry["countryCode"] = org["countryCode"]
        entry.update({
            "roles": list(org["roles"]),
            "extractPermission": org["extractPermission"],
            "scope": org["scope"],
            "certificates": {role: _pair(data_dir / "clients" / f"{key}-{role}") for role in org["roles"]},
        })
        orgs[key] = entry

    return {
        "version": 1,
        "environment": "Test",
        "persons": persons,
        "organisations": orgs,
        "ca_bundle": str(data_dir / "ca.pem"),
        "negative_certificates": {
            "expired": _pair(data_dir / EXPIRED_CERT),
            "foreign_ca": _pair(data_dir / FOREIGN_CA_CERT),
        },
    }


def export_pool(data_dir: Path, output: Path | None = None) -> dict[str, Any]:
    """Write the pool file as JSON to ``output`` (stdout when None) and return it."""
    pool = build_pool(data_dir)
    text = json.dumps(pool, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
    return pool
