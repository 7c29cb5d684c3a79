"""Target files (docs/interfaces.md §9): how to reach one register implementation.

A target is configuration only: base URLs, CA bundle, one client certificate per identity slot, the
capabilities the implementation claims, the test-data pool. Secrets are referenced as `${ENV}` and
expanded here, never stored in the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pcr_conformance import catalogue, resources, versions
from pcr_conformance.errors import HarnessError, TargetError
from pcr_conformance.identifiers import is_valid_business_id

# [base_urls] keys are the API families (catalogue.families(): the spec files' stems, e.g. voluntary-ban).
# Old spellings still accepted in a target file, translated once when it is loaded.
OLD_FAMILY_KEYS = {"voluntary_ban": "voluntary-ban"}
KNOWN_CAPABILITIES = ("reporting", "extract", "authorities", "voluntary-ban", "transfer", "restart")
ENVIRONMENTS = ("Test", "Production")
OWNER_ID_TYPES = ("BusinessId", "ForeignBusinessId", "PersonalIdentityCode")

# Slot -> certificate role (interfaces.md §6 OU and §9 slot list).
SLOT_ROLES: dict[str, str] = {
    "lender": "reporting",
    "lender_extract": "using-data",
    "second_lender": "reporting",
    "second_lender_extract": "using-data",
    "kela": "reporting",
    "noperm_extract": "using-data",
    "foreign_lender": "reporting",
    "authority": "authority",
    "consumer_authority": "authority",
    "cic": "credit-information-company",
}

# Certificates that are not identities but are needed by the security suite (SEC-002, SEC-003).
EXTRA_CERTIFICATES = ("expired", "foreign")

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    ca_bundle: str = ""  # PEM file of the CA that signed the server certificate; "" = system store


@dataclasses.dataclass(frozen=True)
class Identity:
    slot: str
    cert: str
    key: str
    owner: Mapping[str, str]  # {"idCodeType", "idCode", "countryCode"?}: the envelope's owner
    name: str = ""  # organisation name, for the summary's stakeholder list
    role: str = ""


@dataclasses.dataclass(frozen=True)
class CertificatePair:
    cert: str
    key: str


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    embedded: bool = False
    environment: str = "Test"
    read_only: bool = False
    rate_limit_per_s: float = 0.0
    timeout_s: float = 10.0
    batch_deadline_s: float = 60.0
    max_answer_bytes: int = 16 * 1024 * 1024  # an answer's body after decompression; beyond: a broken test
    pool: str = ""
    capabilities: tuple[str, ...] = ()
    base_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tls: TlsConfig = TlsConfig()
    identities: Mapping[str, Identity] = dataclasses.field(default_factory=dict)
    extra_certificates: Mapping[str, CertificatePair] = dataclasses.field(default_factory=dict)
    source: str = ""  # the file it was loaded from
    data_dir: str = ""  # embedded: the register's data dir (set once started)
    slots: tuple[str, ...] = ()  # embedded: the identity slots / extra certificates taken from the register; () = all
    # The contract reading that judges it (readings.py): "reference" for the embedded register, "public" for any
    # other implementation; and its implementation profile (profiles/<name>.toml or a path; "" = none).
    contract: str = "public"
    implementation_profile: str = ""
    variant: str = ""  # embedded: the register's variant (pcr-register serve --variant); "" = $PCR_REGISTER_VARIANT
    # The contract version its base URLs serve (specs/version.toml, specs/versions/<name>/); "" = the current one.
    contract_version: str = ""

    def identity(self, slot: str) -> Identity | None:
        return self.identities.get(slot)

    def claims(self, capability: str) -> bool:
        return capability in self.capabilities

    def base_url(self, family: str) -> str:
        url = self.base_urls.get(family, "")
        if not url:
            raise TargetError(f"target {self.name!r}: base_urls.{family} is not set; add it to {self.source}")
        return url

    def expectations_path(self) -> Path | None:
        """targets/<name>.expectations.toml beside the target file, if present."""
        if not self.source:
            return None
        p = Path(self.source).with_name(f"{self.name}.expectations.toml")
        return p if p.is_file() else None


def resolve_target_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A path to a .toml file, or a name looked up as targets/<name>.toml in the cwd, then among the targets
    shipped with pcr-conformance."""
    raw = str(name_or_path)
    p = Path(raw)
    if raw.endswith(".toml") or os.sep in raw or "/" in raw:
        if p.is_file():
            return p.resolve()
        raise TargetError(f"target file {raw} does not exist; give an existing .toml file or a target name")
    candidates = [Path.cwd() / "targets" / f"{raw}.toml", resources.targets_dir() / f"{raw}.toml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise TargetError(f"target {raw!r} not found (looked for {looked}); create targets/{raw}.toml "
                      f"from targets/example-remote.toml or pass a path")


def contract_version_of(name_or_path: str | os.PathLike[str]) -> str:
    """The target file's contract_version as written ("" when absent or unreadable: load_target reports a bad
    file). Read before anything else of the contract, since it decides which version's files are read."""
    try:
        data = tomllib.loads(resolve_target_path(name_or_path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, HarnessError):
        return ""
    value = data.get("contract_version", "")
    return value if isinstance(value, str) else ""


def load_target(name_or_path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Target:
    """Load, expand `${ENV}` and validate a target file. Raises TargetError naming the field and the fix."""
    path = resolve_target_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise TargetError(f"{path}: not valid TOML: {e}") from e
    expanded = _expand(raw, os.environ if env is None else env, "", path)
    return parse_target(expanded, path)


def _expand(value: Any, env: Mapping[str, str], field: str, path: Path) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in env:
                raise TargetError(f"{path}: field {field} refers to environment variable ${{{var}}}, which is "
                                  f"not set; export {var}=... before the run")
            return env[var]
        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{field}.{k}" if field else k, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{field}[{i}]", path) for i, v in enumerate(value)]
    return value


_TOP_FIELDS = {"name", "embedded", "environment", "read_only", "rate_limit_per_s", "timeout_s",
               "batch_deadline_s", "max_answer_bytes", "pool", "capabilities", "base_urls", "tls", "identities",
               "extra_certificates", "slots", "variant", "contract", "implementation_profile",
               "contract_version"}
CONTRACTS = ("public", "reference")
# The embedded register's variants (docs/interfaces.md §9; the register's own list is pcr_register/variant.py).
REGISTER_VARIANTS = ("reference", "public-minimal")


def parse_target(data: Mapping[str, Any], path: Path) -> Target:
    """Validate an expanded target mapping (a dict as read from TOML)."""
    def err(field: str, msg: str) -> TargetError:
        return TargetError(f"{path}: field {field}: {msg}")

    unknown = sorted(set(data) - _TOP_FIELDS)
    if unknown:
        raise err(unknown[0], f"unknown field; known fields are {sorted(_TOP_FIELDS)}")
    base_dir = path.parent

    def file_field(field: str, value: Any, *, must_exist: bool) -> str:
        if not isinstance(value, str):
            raise err(field, f"must be a file path string, got {value!r}")
        if not value:
            return ""
        p = Path(value)
        if not p.is_absolute():
            p = (base_dir / p).resolve()
        if must_exist and not p.is_file():
            raise err(field, f"file {p} does not exist; fix the path or the environment variable behind it")
        return str(p)

    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise err("name", f"must be letters, digits, '_', '.', '-'; got {name!r}")
    embedded = _typed(data, "embedded", bool, False, err)
    environment = _typed(data, "environment", str, "Test", err)
    if environment not in ENVIRONMENTS:
        raise err("environment", f"must be one of {ENVIRONMENTS}, got {environment!r}")
    read_only = _typed(data, "read_only", bool, False, err)
    rate = float(_typed(data, "rate_limit_per_s", (int, float), 0, err))
    timeout = float(_typed(data, "timeout_s", (int, float), 10, err))
    deadline = float(_typed(data, "batch_deadline_s", (int, float), 60, err))
    max_answer = _typed(data, "max_answer_bytes", int, 16 * 1024 * 1024, err)
    if max_answer < 1024:
        raise err("max_answer_bytes", "must be >= 1024 bytes (the bound of an answer's body after decompression)")
    if rate < 0:
        raise err("rate_limit_per_s", "must be >= 0 (0 = unlimited)")
    if timeout <= 0:
        raise err("timeout_s", "must be > 0 seconds: every request needs a timeout")
    if deadline <= 0:
        raise err("batch_deadline_s", "must be > 0 seconds: every poll needs a deadline")

    capabilities = data.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise err("capabilities", f"must be a list of strings from {KNOWN_CAPABILITIES}")
    for c in capabilities:
        if c not in KNOWN_CAPABILITIES:
            raise err("capabilities", f"unknown capability {c!r}; known: {KNOWN_CAPABILITIES}")

    base_urls = data.get("base_urls", {})
    if not isinstance(base_urls, dict):
        raise err("base_urls", "must be a table [base_urls] with one URL per API family")
    families = catalogue.families()
    renamed: dict[str, Any] = {}
    for fam, url in base_urls.items():
        new = OLD_FAMILY_KEYS.get(fam, fam)
        if new in renamed:
            raise err(f"base_urls.{fam}", f"set twice (as {new} and {fam}); keep {new}")
        renamed[new] = url
    base_urls = renamed
    for fam, url in base_urls.items():
        if fam not in families:
            raise err(f"base_urls.{fam}", f"unknown API family; use one of {families}")
        if not isinstance(url, str) or (url and not url.startswith("https://")):
            raise err(f"base_urls.{fam}", f"must be an https:// URL (the register uses mutual TLS), got {url!r}")
    base_urls = {k: v.rstrip("/") for k, v in base_urls.items() if v}

    tls_raw = data.get("tls", {})
    if not isinstance(tls_raw, dict) or set(tls_raw) - {"ca_bundle"}:
        raise err("tls", "must be a table [tls] with only ca_bundle")
    tls = TlsConfig(ca_bundle=file_field("tls.ca_bundle", tls_raw.get("ca_bundle", ""), must_exist=True))

    identities: dict[str, Identity] = {}
    ids_raw = data.get("identities", {})
    if not isinstance(ids_raw, dict):
        raise err("identities", "must be tables [identities.<slot>]")
    for slot, spec in ids_raw.items():
        f = f"identities.{slot}"
        if slot not in SLOT_ROLES:
            raise err(f, f"unknown identity slot; slots are {list(SLOT_ROLES)}")
        if not isinstance(spec, dict):
            raise err(f, "must be a table with cert, key, owner")
        extra = set(spec) - {"cert", "key", "owner", "name"}
        if extra:
            raise err(f"{f}.{sorted(extra)[0]}", "unknown field; an identity has cert, key, owner, name")
        for k in ("cert", "key"):
            if not spec.get(k):
                raise err(f"{f}.{k}", "is required (PEM file; usually \"${PCR_..._" + k.upper() + "}\")")
        owner = spec.get("owner")
        if not isinstance(owner, dict):
            raise err(f"{f}.owner", 'is required: owner = { idCodeType = "BusinessId", idCode = "1234567-1" }')
        _check_owner(owner, f"{f}.owner", err)
        identities[slot] = Identity(
            slot=slot,
            cert=file_field(f"{f}.cert", spec["cert"], must_exist=True),
            key=file_field(f"{f}.key", spec["key"], must_exist=True),
            owner=dict(owner),
            name=str(spec.get("name", "")),
            role=SLOT_ROLES[slot],
        )

    extra_certs: dict[str, CertificatePair] = {}
    for kind, spec in (data.get("extra_certificates") or {}).items():
        f = f"extra_certificates.{kind}"
        if kind not in EXTRA_CERTIFICATES:
            raise err(f, f"unknown kind; use one of {EXTRA_CERTIFICATES}")
        if not isinstance(spec, dict) or not spec.get("cert") or not spec.get("key"):
            raise err(f, "must be a table with cert and key")
        extra_certs[kind] = CertificatePair(file_field(f"{f}.cert", spec["cert"], must_exist=True),
                                            file_field(f"{f}.key", spec["key"], must_exist=True))

    pool = file_field("pool", data.get("pool", ""), must_exist=not embedded)

    slots = data.get("slots", [])
    allowed_slots = [*SLOT_ROLES, *EXTRA_CERTIFICATES]
    if not isinstance(slots, list) or not all(isinstance(x, str) and x in allowed_slots for x in slots):
        raise err("slots", f"must be a list of identity slots or extra certificates from {allowed_slots}")
    if slots and not embedded:
        raise err("slots", "only an embedded target takes its identities from the register; a remote target "
                           "lists its identities as [identities.<slot>] tables")

    variant = _typed(data, "variant", str, "", err)
    if variant and variant not in REGISTER_VARIANTS:
        raise err("variant", f"unknown register variant {variant!r}; use one of {REGISTER_VARIANTS}")
    if variant and not embedded:
        raise err("variant", "only an embedded target starts the register in a variant (embedded = true)")

    if not embedded:
        if not base_urls:
            raise err("base_urls", "a non-embedded target needs at least one base URL, "
                                   "e.g. reporting = \"https://api-testi.positiivinenluottotietorekisteri.fi\"")
        for fam in families:  # the capability of an API family is the family (catalogue.Operation.capability)
            cap = fam
            if cap in capabilities and fam not in base_urls:
                raise err(f"base_urls.{fam}", f"capability {cap!r} is claimed but has no base URL; "
                                             f"add it or remove the capability")
        if not identities:
            raise err("identities", "a non-embedded target needs at least one identity, e.g. [identities.lender]")

    # Our own register (embedded, not in a variant) is judged by the reading it implements, with its profile;
    # every other implementation by the public reading, with no profile unless the file names one.
    ours = embedded and variant in ("", "reference")
    contract = _typed(data, "contract", str, "reference" if ours else "public", err)
    if contract not in CONTRACTS:
        raise err("contract", f"must be one of {CONTRACTS} (public: what public material shows decides; reference: "
                              f"also our model), got {contract!r}")
    contract_version = _typed(data, "contract_version", str, "", err)
    if contract_version:
        try:
            versions.get(contract_version)
        except versions.VersionError as e:
            raise err("contract_version", f"{e}; leave it out for the current version") from None
    profile = _typed(data, "implementation_profile", str, "reference" if ours else "", err)
    if profile.endswith(".toml"):
        profile = file_field("implementation_profile", profile, must_exist=True)

    return Target(
        contract=contract, implementation_profile=profile, contract_version=contract_version,
        name=name, embedded=embedded, environment=environment, read_only=read_only, rate_limit_per_s=rate,
        timeout_s=timeout, batch_deadline_s=deadline, max_answer_bytes=max_answer, pool=pool, capabilities=tuple(capabilities),
        base_urls=base_urls, tls=tls, identities=identities, extra_certificates=extra_certs,
        source=str(path), slots=tuple(slots), variant=variant,
    )


def _typed(data: Mapping[str, Any], field: str, types: Any, default: Any, err: Any) -> Any:
    value = data.get(field, default)
    # bool is an int subclass: reject `timeout_s = true` explicitly.
    if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
        raise err(field, f"wrong type {type(value).__name__}; expected {getattr(types, '__name__', types)}")
    return value


def _check_owner(owner: Mapping[str, Any], field: str, err: Any) -> None:
    extra = set(owner) - {"idCodeType", "idCode", "countryCode"}
    if extra:
        raise err(f"{field}.{sorted(extra)[0]}", "unknown member; owner has idCodeType, idCode, countryCode")
    t = owner.get("idCodeType")
    if t not in OWNER_ID_TYPES:
        raise err(f"{field}.idCodeType", f"must be one of {OWNER_ID_TYPES}, got {t!r}")
    code = owner.get("idCode")
    if not isinstance(code, str) or not code:
        raise err(f"{field}.idCode", "is required")
    if t == "BusinessId" and not is_valid_business_id(code):
        raise err(f"{field}.idCode", f"{code!r} is not a valid Business ID (NNNNNNN-C with a correct check "
                                     f"digit); copy it from the certificate's organizationIdentifier")
    if t == "ForeignBusinessId" and not owner.get("countryCode"):
        raise err(f"{field}.countryCode", "is required for a ForeignBusinessId owner (ISO 3166 code, e.g. \"SE\")")


def replace(target: Target, **changes: Any) -> Target:
    """A copy with some fields changed (the embedded register fills in URLs, identities, pool)."""
    return dataclasses.replace(target, **changes)


def as_mapping(target: Target) -> dict[str, Any]:
    """The target as the table of a target file that `parse_target` reads back: for another process that must
    reach the same register with the same identities (a load run's Locust processes). An embedded register's
    resolved URLs, certificates and pool become those of a remote target; its reading and profile stay."""
    identities = {slot: {"cert": i.cert, "key": i.key, "owner": dict(i.owner), "name": i.name}
                  for slot, i in target.identities.items()}
    extra = {kind: {"cert": pair.cert, "key": pair.key} for kind, pair in target.extra_certificates.items()}
    data: dict[str, Any] = {
        "name": target.name, "environment": target.environment, "read_only": target.read_only,
        "rate_limit_per_s": target.rate_limit_per_s, "timeout_s": target.timeout_s,
        "batch_deadline_s": target.batch_deadline_s, "max_answer_bytes": target.max_answer_bytes,
        "pool": target.pool, "capabilities": list(target.capabilities), "base_urls": dict(target.base_urls),
        "tls": {"ca_bundle": target.tls.ca_bundle}, "identities": identities, "extra_certificates": extra,
        "contract": target.contract, "implementation_profile": target.implementation_profile,
    }
    if target.contract_version:
        data["contract_version"] = target.contract_version
    return data
