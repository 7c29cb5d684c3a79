"""Target files: loading, ${ENV} expansion and validation errors that name the field and the fix."""

import pytest

from pcr_conformance.errors import TargetError
from pcr_conformance.target import load_target


def _write(tmp_path, text, name="t.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def pem_files(tmp_path):
    for n in ("ca.pem", "lender.pem", "lender.key"):
        (tmp_path / n).write_text("not read at load time\n")
    return tmp_path


REMOTE = """
name = "remote"
embedded = false
pool = ""
capabilities = ["reporting"]
[base_urls]
reporting = "https://${PCR_HOST}"
[tls]
ca_bundle = "ca.pem"
[identities.lender]
name = "Example Bank Oyj"
cert = "${PCR_LENDER_CERT}"
key = "lender.key"
owner = { idCodeType = "BusinessId", idCode = "0112038-9" }
"""


def test_reference_target_is_embedded():
    t = load_target("reference")
    assert t.embedded and t.name == "reference"
    assert "reporting" in t.capabilities and t.timeout_s > 0 and t.batch_deadline_s > 0


def test_env_expansion_and_relative_paths(pem_files):
    p = _write(pem_files, REMOTE)
    t = load_target(p, env={"PCR_HOST": "api-testi.example", "PCR_LENDER_CERT": "lender.pem"})
    assert t.base_urls == {"reporting": "https://api-testi.example"}
    ident = t.identity("lender")
    assert ident is not None and ident.cert == str(pem_files / "lender.pem") and ident.role == "reporting"
    assert ident.owner == {"idCodeType": "BusinessId", "idCode": "0112038-9"}
    assert t.tls.ca_bundle == str(pem_files / "ca.pem")
    assert t.identity("kela") is None


def test_missing_env_variable_names_field_and_variable(pem_files):
    p = _write(pem_files, REMOTE)
    with pytest.raises(TargetError) as e:
        load_target(p, env={"PCR_HOST": "x"})
    assert "identities.lender.cert" in str(e.value) and "PCR_LENDER_CERT" in str(e.value)


@pytest.mark.parametrize("change, field", [
    (('idCode = "0112038-9"', 'idCode = "1234567-8"'), "identities.lender.owner.idCode"),
    (("[identities.lender]", "[identities.lendr]"), "identities.lendr"),
    (('ca_bundle = "ca.pem"', 'ca_bundle = "missing.pem"'), "tls.ca_bundle"),
    (('reporting = "https://${PCR_HOST}"', 'reporting = "http://plain"'), "base_urls.reporting"),
    (('capabilities = ["reporting"]', 'capabilities = ["reporting", "extract"]'), "base_urls.extract"),
    (('embedded = false', 'embedded = false\ntimeout_s = 0'), "timeout_s"),
    (('embedded = false', 'embedded = false\ncolour = "blue"'), "colour"),
])
def test_validation_errors_name_the_field(pem_files, change, field):
    p = _write(pem_files, REMOTE.replace(*change))
    with pytest.raises(TargetError) as e:
        load_target(p, env={"PCR_HOST": "h", "PCR_LENDER_CERT": "lender.pem"})
    assert f"field {field}" in str(e.value)


def test_unknown_target_name_says_how_to_fix():
    with pytest.raises(TargetError, match="example-remote.toml"):
        load_target("no-such-target")


def test_example_remote_documents_its_variables():
    with pytest.raises(TargetError, match=r"\$\{PCR_"):
        load_target("example-remote", env={})


def test_example_remote_loads_with_its_variables_set(tmp_path):
    env = {}
    for var in ("PCR_POOL_FILE", "PCR_CA_BUNDLE", "PCR_LENDER_CERT", "PCR_LENDER_KEY", "PCR_LENDER_EXTRACT_CERT",
                "PCR_LENDER_EXTRACT_KEY"):
        (tmp_path / var).write_text("x")
        env[var] = str(tmp_path / var)
    t = load_target("example-remote", env=env)
    assert not t.embedded and t.base_urls["reporting"].startswith("https://api-testi.")
    assert set(t.identities) == {"lender", "lender_extract"} and t.rate_limit_per_s > 0


def test_base_urls_keys_are_the_spec_families_and_the_old_voluntary_ban_key_is_translated(pem_files):
    env = {"PCR_HOST": "h.example", "PCR_LENDER_CERT": "lender.pem"}
    new = REMOTE.replace('reporting = "https://${PCR_HOST}"',
                         'reporting = "https://${PCR_HOST}"\nvoluntary-ban = "https://ban.example"')
    t = load_target(_write(pem_files, new), env=env)
    assert t.base_urls["voluntary-ban"] == "https://ban.example"
    old = new.replace("voluntary-ban =", "voluntary_ban =")
    t = load_target(_write(pem_files, old, "old.toml"), env=env)
    assert t.base_urls == {"reporting": "https://h.example", "voluntary-ban": "https://ban.example"}
    assert t.base_url("voluntary-ban") == "https://ban.example"
    both = new.replace('voluntary-ban = "https://ban.example"',
                       'voluntary-ban = "https://ban.example"\nvoluntary_ban = "https://ban.example"')
    with pytest.raises(TargetError, match="set twice"):
        load_target(_write(pem_files, both, "both.toml"), env=env)


def test_an_embedded_target_may_list_fewer_slots(tmp_path, pem_files):
    t = load_target(_write(tmp_path, 'name = "few"\nembedded = true\nslots = ["lender", "expired"]\n'))
    assert t.slots == ("lender", "expired")
    with pytest.raises(TargetError, match="slots"):
        load_target(_write(tmp_path, 'name = "bad"\nembedded = true\nslots = ["lendr"]\n', "bad.toml"))
    env = {"PCR_HOST": "example.invalid", "PCR_LENDER_CERT": "lender.pem"}
    with pytest.raises(TargetError, match="only an embedded target"):
        load_target(_write(pem_files, REMOTE.replace("[base_urls]", 'slots = ["lender"]\n[base_urls]', 1),
                           "remote.toml"), env=env)


def test_the_public_minimal_target_starts_the_register_in_that_variant():
    """targets/public-minimal.toml: embedded, variant public-minimal; the reference target names no variant."""
    t = load_target("public-minimal")
    assert t.embedded and t.variant == "public-minimal" and t.capabilities == load_target("reference").capabilities
    assert load_target("reference").variant == ""


@pytest.mark.parametrize("text, message", [
    ('name = "e"\nembedded = true\nvariant = "public"\n', "unknown register variant 'public'"),
    (REMOTE.replace("embedded = false", 'embedded = false\nvariant = "public-minimal"'), "only an embedded target"),
])
def test_a_wrong_variant_names_the_field(pem_files, text, message):
    p = _write(pem_files, text)
    with pytest.raises(TargetError) as e:
        load_target(p, env={"PCR_HOST": "h", "PCR_LENDER_CERT": "lender.pem"})
    assert "field variant" in str(e.value) and message in str(e.value)
