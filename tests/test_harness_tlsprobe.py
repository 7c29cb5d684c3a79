"""tlsprobe: each identity slot's certificate checked locally and by one handshake, one line per problem.

Against the reference register (started once for the module): its expired and foreign-CA client certificates
stand in for a lender's bad certificate, a CA bundle of another CA for an untrusted server certificate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pcr_conformance import tlsprobe
from pcr_conformance.target import replace


@pytest.fixture(scope="module")
def register():
    from pcr_conformance import embedded
    from pcr_conformance.target import load_target

    handle = embedded.start(load_target("reference"))
    try:
        yield handle.target
    finally:
        handle.stop()


def _with_lender(target, pair):
    lender = dataclasses.replace(target.identities["lender"], cert=pair.cert, key=pair.key)
    return replace(target, identities={"lender": lender}), lender


def test_a_good_certificate_has_no_problem(register):
    assert tlsprobe.probe_identities(register, timeout_s=5) == {}


def test_an_expired_certificate_is_named_with_its_expiry(register):
    target, lender = _with_lender(register, register.extra_certificates["expired"])
    info = tlsprobe.certificate_info(lender.cert)
    line = tlsprobe.probe_identities(target, timeout_s=5)["lender"]
    assert line.startswith("identity slot lender: the register refused the client certificate (TLS handshake: ")
    assert f"certificate expired on {info.not_after:%Y-%m-%d}" in line
    assert info.subject in line and info.sha256[:23] in line and "\n" not in line


def test_a_certificate_of_another_ca_is_named_with_its_issuer(register):
    target, _ = _with_lender(register, register.extra_certificates["foreign"])
    line = tlsprobe.probe_identities(target, timeout_s=5)["lender"]
    assert "the register refused the client certificate" in line
    assert "issued by CN=Untrusted Foreign CA, not by a CA of the ca_bundle" in line


def test_an_untrusted_server_certificate_is_named(register, tmp_path):
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    target = replace(register, tls=dataclasses.replace(register.tls, ca_bundle=str(other)),
                     identities={"lender": register.identities["lender"]})
    line = tlsprobe.probe_identities(target, timeout_s=5)["lender"]
    assert line.startswith("identity slot lender: the server certificate of https://127.0.0.1:")
    assert f"is not trusted by the ca_bundle {other}" in line


def test_an_unreadable_key_is_named(register, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key", encoding="utf-8")
    lender = dataclasses.replace(register.identities["lender"], key=str(bad))
    line = tlsprobe.probe_identities(replace(register, identities={"lender": lender}), timeout_s=5)["lender"]
    assert line.startswith("identity slot lender: cannot load its certificate and key")


def test_validity_problems_from_the_pem_dates(register):
    info = tlsprobe.certificate_info(register.identities["lender"].cert)
    assert tlsprobe.validity_problem(info) == ""
    later = info.not_after + dt.timedelta(days=1)
    assert tlsprobe.validity_problem(info, now=later) == f"certificate expired on {info.not_after:%Y-%m-%d}"
    earlier = info.not_before - dt.timedelta(days=1)
    assert tlsprobe.validity_problem(info, now=earlier).startswith("certificate not valid before ")


def test_the_security_tests_own_certificates_are_not_probed(register):
    """extra_certificates (SEC-002, SEC-003 expect their refusal) are not identity slots."""
    assert set(register.extra_certificates) == {"expired", "foreign"}
    assert tlsprobe.probe_identities(register, timeout_s=5) == {}
