"""A tiny register data dir for the register's own tests, and a helper to run the register as a process.

Independent of pcr_register.init (written separately): certificates follow interfaces.md §6, the files follow
the agreed organisations.json / population.json formats. Only artificial identity codes (individual number
900-999) are used.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

REPO = Path(__file__).resolve().parents[1]
ORG_ID = ObjectIdentifier("2.5.4.97")
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(birth: dt.date, individual: int, sign: str | None = None) -> str:
    if sign is None:
        sign = "-" if birth.year < 2000 else "A"
    digits = f"{birth:%d%m%y}{individual:03d}"
    return f"{birth:%d%m%y}{sign}{individual:03d}{_CHECK[int(digits) % 31]}"


def business_id(seven: str) -> str:
    r = sum(int(d) * w for d, w in zip(seven, (7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    assert r != 1, seven
    return f"{seven}-{0 if r == 0 else 11 - r}"


def wrong_check(code: str) -> str:
    last = code[-1]
    return code[:-1] + ("X" if last != "X" else "Y")


ORGS: dict[str, dict[str, Any]] = {
    "lender-a": {"name": "Lender A Oy", "idCodeType": "BusinessId", "idCode": business_id("9900111"), "countryCode": None,
                 "roles": ["reporting", "using-data"], "extractPermission": True, "isKela": False, "scope": "full"},
    "lender-b": {"name": "Lender B Oy", "idCodeType": "BusinessId", "idCode": business_id("9900112"), "countryCode": None,
                 "roles": ["reporting", "using-data"], "extractPermission": True, "isKela": False, "scope": "full"},
    "kela": {"name": "Demo Kela role", "idCodeType": "BusinessId", "idCode": business_id("9900113"), "countryCode": None,
             "roles": ["reporting"], "extractPermission": False, "isKela": True, "scope": "full"},
    "lender-noperm": {"name": "No Permission Oy", "idCodeType": "BusinessId", "idCode": business_id("9900114"),
                      "countryCode": None, "roles": ["reporting", "using-data"], "extractPermission": False,
                      "isKela": False, "scope": "full"},
    "lender-foreign": {"name": "Utlandsk Bank AB", "idCodeType": "ForeignBusinessId", "idCode": "5560000000",
                       "countryCode": "SE", "roles": ["reporting"], "extractPermission": False, "isKela": False,
                       "scope": "full"},
    "authority-full": {"name": "Demo Supervisory Authority", "idCodeType": "BusinessId", "idCode": business_id("9900118"),
                       "countryCode": None, "roles": ["authority"], "extractPermission": False, "isKela": False,
                       "scope": "full"},
    "authority-consumer": {"name": "Consumer Authority (test)", "idCodeType": "BusinessId",
                           "idCode": business_id("9900116"), "countryCode": None, "roles": ["authority"],
                           "extractPermission": False, "isKela": False, "scope": "consumer-credit-only"},
    "cic": {"name": "Credit Info Oy", "idCodeType": "BusinessId", "idCode": business_id("9900117"), "countryCode": None,
            "roles": ["credit-information-company"], "extractPermission": False, "isKela": False, "scope": "full"},
}


def _income(today: dt.date) -> list[dict[str, Any]]:
    out = []
    year, month = today.year, today.month
    for _ in range(14):  # more than 12: the register must pick the latest 12
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        out.append({"year": year, "month": month, "wagesGrossAmount": 3000.0, "wagesNetAmount": 2200.0,
                    "benefitsGrossAmount": 100.0, "benefitsNetAmount": 80.0})
    return out


@dataclass(frozen=True)
class People:
    active: list[str]
    deceased: str
    not_in_use: str
    unknown: str
    banned_consent: str
    banned_no_consent: str
    century_twin: str  # active[30] with the century sign Y instead of - (IDN-007)


def people() -> People:
    base = dt.date(1980, 1, 1)
    active = [hetu(base + dt.timedelta(days=i), 900 + i) for i in range(40)]
    return People(
        active=active,
        deceased=hetu(dt.date(1950, 5, 5), 950),
        not_in_use=hetu(dt.date(1960, 6, 6), 960),
        unknown=hetu(dt.date(1970, 7, 7), 970),
        banned_consent=hetu(dt.date(1975, 3, 3), 975),
        banned_no_consent=hetu(dt.date(1976, 4, 4), 976),
        century_twin=hetu(base + dt.timedelta(days=30), 930, "Y"),
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], subject: x509.Name, *, server: bool = False,
          expired: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    import ipaddress

    key = _key()
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca[0].subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(ca[1], hashes.SHA256()), key


def client_subject(key: str, org: dict[str, Any], role: str) -> x509.Name:
    org_id = f"NTRFI-{org['idCode']}" if org["idCodeType"] == "BusinessId" else f"NTR{org['countryCode']}-{org['idCode']}"
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, f"{key} {role}"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, org["name"]),
             x509.NameAttribute(ORG_ID, org_id),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)]
    if org["scope"] == "consumer-credit-only":
        attrs.append(x509.NameAttribute(NameOID.TITLE, "consumer-credit-only"))
    return x509.Name(attrs)


def make_data_dir(path: Path) -> People:
    """Write ca.pem, server.pem/.key, clients/<org>-<role>.pem/.key, expired and foreign certs, JSON files."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "clients").mkdir(exist_ok=True)
    (path / "foreign-ca").mkdir(exist_ok=True)
    ca = _ca("PCR test register CA")
    (path / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    server = _leaf(ca, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), server=True)
    _write(path / "server", *server)
    for key, org in ORGS.items():
        for role in org["roles"]:
            _write(path / "clients" / f"{key}-{role}", *_leaf(ca, client_subject(key, org, role)))
    _write(path / "clients" / "expired-lender-reporting",
           *_leaf(ca, client_subject("lender-a", ORGS["lender-a"], "reporting"), expired=True))
    foreign = _ca("Some other CA")
    (path / "foreign-ca" / "ca.pem").write_bytes(foreign[0].public_bytes(serialization.Encoding.PEM))
    _write(path / "foreign-ca" / "lender-a-reporting", *_leaf(foreign, client_subject("lender-a", ORGS["lender-a"], "reporting")))
    (path / "organisations.json").write_text(json.dumps(ORGS, indent=1))
    who = people()
    today = dt.date.today()
    persons = [{"idCode": c, "status": "active", "dateOfDeath": None, "income": _income(today), "voluntaryBan": None,
                "banConsent": False, "banChangedTimeUtc": None} for c in [*who.active, who.century_twin]]
    persons.append({"idCode": who.deceased, "status": "deceased", "dateOfDeath": "2025-01-15", "income": [],
                    "voluntaryBan": None, "banConsent": False, "banChangedTimeUtc": None})
    persons.append({"idCode": who.not_in_use, "status": "not-in-use", "dateOfDeath": None, "income": [],
                    "voluntaryBan": None, "banConsent": False, "banChangedTimeUtc": None})
    ban = {"isInEffect": True, "reason": "RiskOfIdentityTheft", "startDate": "2024-01-01", "endDate": None}
    persons.append({"idCode": who.banned_consent, "status": "active", "dateOfDeath": None, "income": _income(today),
                    "voluntaryBan": ban, "banConsent": True, "banChangedTimeUtc": "2024-01-01T08:00:00Z"})
    persons.append({"idCode": who.banned_no_consent, "status": "active", "dateOfDeath": None, "income": _income(today),
                    "voluntaryBan": {**ban, "reason": "ControlOfPersonalFinances"}, "banConsent": False,
                    "banChangedTimeUtc": "2024-02-01T08:00:00Z"})
    (path / "population.json").write_text(json.dumps({"persons": persons, "unknown": [who.unknown]}, indent=1))
    return who


# -- running the register --------------------------------------------------------------------------------

@dataclass
class Running:
    process: subprocess.Popen
    url: str
    data: Path

    def client(self, org: str, role: str, *, timeout: float = 30) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.data / "ca.pem"))
        ctx.load_cert_chain(self.data / "clients" / f"{org}-{role}.pem", self.data / "clients" / f"{org}-{role}.key")
        return httpx.Client(base_url=self.url, verify=ctx, timeout=timeout)

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


REGISTER_CMD = [sys.executable, "-m", "pcr_register.cli"]
START_DEADLINE_S = 30.0  # a forked register listens within this


def start_register(data: Path, *, faults: str = "", db: Path | str | None = None, validate_responses: bool = True,
                   extra_env: dict[str, str] | None = None, fork_server: str | None = None) -> Running:
    """`pcr-register serve` on a free port; forked by the `pcr-register fork-server` at `fork_server` when one
    is given (a module starting a register per fault: no register pays its own imports and spec parsing)."""
    env = {**os.environ, "PCR_REGISTER_FAULTS": faults,
           "PCR_REGISTER_VALIDATE_RESPONSES": "1" if validate_responses else "0", **(extra_env or {})}
    serve = ["serve", "--data", str(data), "--port", "0", *(["--db", str(db)] if db is not None else [])]
    if fork_server:
        from pcr_conformance import embedded_forks

        forked = embedded_forks.fork(fork_server, serve, env=env, deadline_s=START_DEADLINE_S)
        said: list[str] = []
        listening = threading.Event()

        def read() -> None:  # all of its output, so that it never blocks on it and `wait` learns its end
            for out in forked.stdout:
                if not listening.is_set():
                    said.append(out.strip())
                    if out.startswith("listening on "):
                        listening.set()

        threading.Thread(target=read, daemon=True).start()
        if listening.wait(START_DEADLINE_S):
            return Running(forked, said[-1].removeprefix("listening on "), data)  # type: ignore[arg-type]
        forked.kill()
        raise RuntimeError(f"forked register did not listen within {START_DEADLINE_S:g} s: "
                           f"{' | '.join(said)[-2000:]!r}")
    proc = subprocess.Popen([*REGISTER_CMD, *serve], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"register did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return Running(proc, line.removeprefix("listening on "), data)


def database(backend: str, request: Any, folder: Path) -> Path | str:
    """An empty database of `backend` for one register: an SQLite file in `folder`, or a new database on the
    session's PostgreSQL server (the `postgres` fixture of tests/conftest.py; `request` is pytest's)."""
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres").create_database())
    if backend != "sqlite":
        raise ValueError(f"unknown backend {backend!r}: sqlite or postgresql")
    return folder / f"{unique('register')}.sqlite3"


def wait_batch(client: httpx.Client, owner: dict[str, Any], reference: str, deadline_s: float = 60) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        resp = client.post("/GetBatchStatus", json={"targetEnvironment": "Test", "owner": owner,
                                                    "batchReference": reference})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if body["batchStatus"] != "Processing":
            return body
        if time.monotonic() > end:
            raise AssertionError(f"batch {reference} still Processing after {deadline_s}s")
        time.sleep(0.05)


def owner_of(key: str) -> dict[str, Any]:
    org = ORGS[key]
    owner = {"idCodeType": org["idCodeType"], "idCode": org["idCode"]}
    if org["countryCode"]:
        owner["countryCode"] = org["countryCode"]
    return owner


def lump_sum_loan(number: str, borrower: str, ref: str, **overrides: Any) -> dict[str, Any]:
    loan = {
        "reportReference": ref,
        "loanNumber": {"type": "Other", "number": number},
        "isPeerToPeerLoanBroker": False,
        "lenderMarketingName": "Test Loans",
        "contractDate": "2024-03-01",
        "currencyCode": "EUR",
        "oneTimeServiceFees": 0.0,
        "loanType": "LumpSumLoan",
        "isTransferredFromAnotherLender": False,
        "borrowersCount": 1,
        "borrowers": [{"idCodeType": "PersonalIdentityCode", "idCode": borrower}],
        "consumerCredit": {"loanConsumerProtectionAct": "ConsumerCredit", "isGoodsOrServicesRelatedCredit": False},
        "interest": {"totalInterestRatePct": 5.5, "marginPct": 2.0, "interestType": "Euribor",
                     "interestDeterminationPeriod": 12},
        "isLoanWithCollateral": False,
        "lumpSumLoan": {"amountIssued": 10000.0, "amountPaid": 10000.0, "balance": 9000.0,
                        "amortizationFrequency": 12, "purposeOfUse": "OtherConsumerCredit",
                        "repaymentMethod": "Annuities"},
    }
    loan.update(overrides)
    return loan


# -- a small client of the running register ----------------------------------------------------------

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}-{next(_counter)}"


@dataclass
class Api:
    """Calls as one organisation; clients per role are cached."""

    reg: Running
    org: str = "lender-a"
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, role: str) -> httpx.Client:
        if role not in self._clients:
            self._clients[role] = self.reg.client(self.org, role)
        return self._clients[role]

    @property
    def owner(self) -> dict[str, Any]:
        return owner_of(self.org)

    def post(self, operation: str, body: dict[str, Any], role: str = "reporting", **kw: Any) -> httpx.Response:
        return self.client(role).post(f"/{operation}", json=body, **kw)

    def envelope(self, **members: Any) -> dict[str, Any]:
        return {"targetEnvironment": "Test", "owner": self.owner, **members}

    def submit(self, operation: str, collection: str, reports: list[dict[str, Any]], reference: str | None = None) -> str:
        reference = reference or unique("B")
        resp = self.post(operation, self.envelope(**{collection: reports}), headers={"BatchReference": reference})
        assert resp.status_code == 202, resp.text
        return reference

    def run(self, operation: str, collection: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
        return wait_batch(self.client("reporting"), self.owner, self.submit(operation, collection, reports))

    def add(self, *loans: dict[str, Any]) -> dict[str, Any]:
        return self.run("AddLoans", "loans", list(loans))

    def get_loan(self, loan_number: dict[str, Any]) -> httpx.Response:
        return self.post("GetLoan", self.envelope(loanNumber=loan_number))

    def extract(self, id_code: str, purposes: tuple[str, ...] = ("NewConsumerCredit",)) -> httpx.Response:
        return self.post("GetCreditRegisterExtract", self.envelope(request={
            "idCodeType": "PersonalIdentityCode", "idCode": id_code,
            "creditRegisterExtractPurpose": list(purposes)}), role="using-data")

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def with_api(reg: Running, org: str, fn: Any) -> Any:
    """fn(an Api of `org` on `reg`), the client closed afterwards."""
    api = Api(reg, org)
    try:
        return fn(api)
    finally:
        api.close()


def status_and_codes(resp: httpx.Response) -> tuple[int, list[str]]:
    """(status, error codes) of an answer; no codes for a success."""
    return resp.status_code, codes(resp) if resp.status_code >= 400 else []


def codes(result_or_response: Any) -> list[str]:
    """Error codes of an error answer (httpx.Response) or of every report of a batch status."""
    if isinstance(result_or_response, httpx.Response):
        return [e["errorCode"] for e in result_or_response.json().get("errorResponses", [])]
    return [e["errorCode"] for r in result_or_response["reportResults"] for e in r["errorResponses"]]


def termination(number: dict[str, Any], ref: str, report_type: str = "NewReport", *, terminated: bool = True,
                end: str = "2025-06-30", transferred: bool = False) -> dict[str, Any]:
    return {"reportReference": ref, "reportType": report_type, "loanNumber": number,
            "termination": {"isTerminated": terminated, "endDate": end, "isTransferredToAnotherLender": transferred}}


def no_cert_client(reg: Running) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(reg.data / "ca.pem"))
    return httpx.Client(base_url=reg.url, verify=ctx, timeout=10)
