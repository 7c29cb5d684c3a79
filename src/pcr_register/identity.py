"""Who is calling: organisation and role from the client certificate (interfaces.md §6).

Subject profile: O = organisation name, organizationIdentifier (2.5.4.97) = NTRFI-<BusinessId> (NTR<CC>-<id>
for a foreign business ID), OU = role, CN = "<org key> <role>", title = consumer-credit-only for authorities
with that scope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from pcr_register import identifiers
from pcr_register.errors import ApiError, fail
from pcr_register.faults import Faults

ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")

# The certificate role each API family needs (SEC-004, AUT-001, BAN-001, EXT-004) is the info.x-certificate-role
# of the family's spec file: validation.Specs.certificate_roles (family = spec file stem -> role).


@dataclass(frozen=True)
class Organisation:
    key: str
    name: str
    id_code_type: str
    id_code: str
    country_code: str | None
    roles: tuple[str, ...]
    extract_permission: bool
    is_kela: bool
    scope: str

    @property
    def owner(self) -> dict[str, str]:
        owner = {"idCodeType": self.id_code_type, "idCode": self.id_code}
        if self.country_code:
            owner["countryCode"] = self.country_code
        return owner


@dataclass(frozen=True)
class Caller:
    """The organisation and role behind one TLS connection."""

    org: Organisation
    role: str
    scope: str  # "full" | "consumer-credit-only" (from the certificate title, else the organisation)


def load_organisations(data_dir: Path) -> dict[str, Organisation]:
    raw: dict[str, Any] = json.loads((data_dir / "organisations.json").read_text(encoding="utf-8"))
    return {
        key: Organisation(
            key=key,
            name=o["name"],
            id_code_type=o["idCodeType"],
            id_code=o["idCode"],
            country_code=o.get("countryCode"),
            roles=tuple(o.get("roles", [])),
            extract_permission=bool(o.get("extractPermission")),
            is_kela=bool(o.get("isKela")),
            scope=o.get("scope", "full"),
        )
        for key, o in raw.items()
    }


def _attr(name: x509.Name, oid: ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def caller_from_certificate(der: bytes, organisations: dict[str, Organisation]) -> Caller | None:
    """Map a verified client certificate to its organisation; None when it names no known organisation."""
    cert = x509.load_der_x509_certificate(der)
    subject = cert.subject
    org_id = _attr(subject, ORGANIZATION_IDENTIFIER) or ""
    role = _attr(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) or ""
    title = _attr(subject, NameOID.TITLE)
    org = None
    if org_id.startswith("NTR") and "-" in org_id:
        country, _, id_code = org_id[3:].partition("-")
        for candidate in organisations.values():
            if candidate.id_code != id_code:
                continue
            if country == "FI" and candidate.id_code_type == "BusinessId":
                org = candidate
            elif candidate.id_code_type == "ForeignBusinessId" and candidate.country_code == country:
                org = candidate
            if org:
                break
    if org is None:
        cn = _attr(subject, NameOID.COMMON_NAME) or ""
        org = organisations.get(cn.split(" ")[0])
    if org is None:
        return None
    scope = "consumer-credit-only" if title == "consumer-credit-only" else org.scope
    return Caller(org=org, role=role, scope=scope)


def check_role(caller: Caller, family: str, needed: str, faults: Faults) -> None:
    """SEC-004 / AUT-001 / BAN-001: the certificate's role must be `needed`, the role of the API family
    (403 D43)."""
    if faults.on("skip_role_check"):
        return
    if caller.role != needed or needed not in caller.org.roles:
        raise fail(403, "D43", "", f"A {caller.role or 'unknown'} certificate may not use the {family} API.")


def check_owner(owner: dict[str, Any], caller: Caller, faults: Faults) -> None:
    """Envelope owner against the certificate: D40 (IDN-004), D05 (IDN-003), D41 (SEC-005), D42 (SEC-006)."""
    id_type = owner.get("idCodeType")
    id_code = owner.get("idCode", "")
    country = owner.get("countryCode")
    if id_type == "ForeignBusinessId" and not country and not faults.on("skip_d40"):
        raise fail(400, "D40", "/owner/countryCode")
    if id_type == "BusinessId" and not identifiers.is_valid_business_id(id_code):
        if not faults.on("accept_invalid_business_id"):
            raise fail(400, "D05", "/owner/idCode")
    if id_type == "PersonalIdentityCode" and not identifiers.is_valid_hetu(id_code):
        raise fail(400, "D04", "/owner/idCode")
    if id_type != caller.org.id_code_type and not faults.on("skip_owner_type_check"):
        raise fail(403, "D41", "/owner/idCodeType")
    if faults.on("skip_owner_id_check"):
        return
    if id_code != caller.org.id_code or (country and caller.org.country_code and country != caller.org.country_code):
        raise fail(403, "D42", "/owner/idCode")


def check_extract_permission(caller: Caller, faults: Faults) -> None:
    """EXT-004: only an organisation with the extract data permission gets extracts (403 P01)."""
    if not caller.org.extract_permission and not faults.on("skip_extract_permission"):
        raise fail(403, "P01", "")


__all__ = [
    "ApiError",
    "Caller",
    "Organisation",
    "caller_from_certificate",
    "check_extract_permission",
    "check_owner",
    "check_role",
    "load_organisations",
]
