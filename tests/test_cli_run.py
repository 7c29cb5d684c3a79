"""`pcr-conformance run` and the command line itself: help, target errors, unreachable target, end to end.

The end-to-end test runs one kit against the embedded reference register (slow, but part of the test command).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcr_conformance.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("run", "load", "validate", "requirements", "report", "selftest")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
        cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pcr_conformance.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_each_subcommand(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pcr-conformance {command}")


def test_top_level_help_names_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS) and "Exit codes" in out


def test_names_stay_names_and_other_files_become_absolute_paths(tmp_path: Path) -> None:
    from pcr_conformance.commands.run import _as_argument

    assert _as_argument("reference", REPO / "targets" / "reference.toml", REPO / "targets") == "reference"
    elsewhere = tmp_path / "targets" / "myorg.toml"  # found in the user's folder, not by pytest in the repo
    assert _as_argument("myorg", elsewhere, REPO / "targets") == str(elsewhere.resolve())
    assert _as_argument("targets/reference.toml", REPO / "targets" / "reference.toml", REPO / "targets") == \
        str((REPO / "targets" / "reference.toml").resolve())


def test_run_defaults() -> None:
    args = build_parser().parse_args(["run"])
    assert (args.target, args.kit, args.profile, args.output, args.no_html, args.mask_pii) == \
        ("reference", [], "certification", "reports", False, False)


@pytest.mark.parametrize(("content", "needle"), [
    ("name = [", "not valid TOML"),
    ('name = "x"\nembedded = false\npool = "${PCR_TEST_SURELY_UNSET_VAR}"\n', "PCR_TEST_SURELY_UNSET_VAR"),
    ('name = "x"\nembedded = true\ncolour = "blue"\n', "colour"),
], ids=["bad-toml", "missing-env", "unknown-field"])
def test_bad_target_file_exits_2_with_one_line(content: str, needle: str, tmp_path: Path) -> None:
    target = tmp_path / "bad.toml"
    target.write_text(content, encoding="utf-8")
    proc = cli("run", "--target", str(target), "--output", str(tmp_path / "reports"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_unknown_target_name_and_kit_exit_2(tmp_path: Path) -> None:
    proc = cli("run", "--target", "no-such-target")
    assert proc.returncode == 2 and "no-such-target" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("run", "--kit", "no-such-kit", "--output", str(tmp_path))
    assert proc.returncode == 2 and "no-such-kit" in proc.stderr and "Traceback" not in proc.stderr


def _remote_target(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """targets/example-remote.toml pointed at a closed port of 127.0.0.1, with real certificate files."""
    import trustme

    ca = trustme.CA()
    client = ca.issue_cert("lender@example.invalid")
    files = {"PCR_CA_BUNDLE": "ca.pem", "PCR_LENDER_CERT": "lender.pem", "PCR_LENDER_KEY": "lender.key",
             "PCR_LENDER_EXTRACT_CERT": "lender.pem", "PCR_LENDER_EXTRACT_KEY": "lender.key",
             "PCR_POOL_FILE": "pool.json"}
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "lender.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "lender.key"))
    (tmp_path / "pool.json").write_text(json.dumps(
        {"version": 1, "environment": "Test", "persons": [], "organisations": {}}), encoding="utf-8")
    text = (REPO / "targets" / "example-remote.toml").read_text(encoding="utf-8")
    text = text.replace("https://api-testi.positiivinenluottotietorekisteri.fi", "https://127.0.0.1:9")
    target = tmp_path / "example-remote.toml"
    target.write_text(text, encoding="utf-8")
    return target, {k: str(tmp_path / v) for k, v in files.items()}


def test_unreachable_remote_target_exits_2_quickly_with_reason(tmp_path: Path) -> None:
    target, env = _remote_target(tmp_path)
    started = time.monotonic()
    proc = cli("run", "--target", str(target), "--kit", "lender-reporting", "--output", str(tmp_path / "reports"),
               "--no-html", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert elapsed < 30, f"took {elapsed:.0f} s"
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert "unreachable" in line and "https://127.0.0.1:9" in line, line
    assert not (tmp_path / "reports").exists()


def test_plugin_startup_error_is_passed_through(tmp_path: Path) -> None:
    """pytest.exit(returncode=2) from the plugin (here: the embedded register refuses to start) -> exit 2."""
    proc = cli("run", "--kit", "authority", "--output", str(tmp_path / "reports"),
               env={"PCR_REGISTER_FAULTS": "no_such_fault_switch"}, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("pcr-conformance: authority: could not run: "), proc.stderr
    assert "no_such_fault_switch" in lines[0]
    assert "could not run" in proc.stdout  # the table row
    folder = tmp_path / "reports" / "authority" / "reference"
    assert (folder / "pytest.log").is_file() and not (folder / "html").exists()


# A user's own kit (./kits/<name>.toml, found by name): the authority's orders and distributions in a few corpus
# cases and scenarios. That every shipped kit is conformant is tests/test_public_contract_reference.py's.
AUTHORITY_FEW = """name = "authority-few"
title = "Authority (a few tests)"
actors = ["nobody"]
include = ["AUT-002", "AUT-004", "AUT-005", "AUT-006", "AUT-007"]
"""


@pytest.mark.slow
def test_run_one_kit_against_the_reference_register(tmp_path: Path) -> None:
    (tmp_path / "kits").mkdir()
    (tmp_path / "kits" / "authority-few.toml").write_text(AUTHORITY_FEW, encoding="utf-8")
    reports = tmp_path / "reports"
    folder = reports / "authority-few" / "reference"
    folder.mkdir(parents=True)
    (folder / "stale-from-an-earlier-run.json").write_text("{}", encoding="utf-8")
    proc = cli("run", "--kit", "authority-few", "--output", str(reports), timeout=1800, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "conformant" and summary["counts"]["passed"] > 0
    assert (folder / "junit.xml").is_file() and any((folder / "allure-results").iterdir())
    assert (folder / "pytest.log").is_file()
    assert not (folder / "stale-from-an-earlier-run.json").exists()  # results never mix
    assert [p.name for p in (reports / "authority-few").iterdir()] == ["reference"]  # no temp folder left
    assert "[authority-few] " in proc.stdout  # progress lines carry the kit name
    table = proc.stdout[proc.stdout.index("kit "):]
    row = next(line for line in table.splitlines() if line.startswith("authority-few "))
    assert row.split()[:4] == ["authority-few", "reference", "conformant", str(summary["counts"]["passed"])]
    from pcr_conformance.allure_build import find_allure
    if find_allure() is not None:
        assert (folder / "html" / "index.html").is_file()


def test_console_shows_progress_and_summary_but_not_tracebacks() -> None:
    from pcr_conformance.commands.console import ConsoleFilter

    console = ConsoleFilter("[kit] ")
    shown = console.feed("..")  # progress appears before its line is complete
    shown += console.feed(".F\n")
    shown += console.feed("=================== FAILURES ===================\n___ test_x ___\nE   AssertionError\n")
    shown += console.feed("====== short test summary info ======\nFAILED suites/a.py::test_x - RPT-004 ...\n")
    shown += console.feed("1 failed, 3 passed in 0.1s")
    shown += console.flush()
    assert shown.splitlines() == [
        "[kit] ...F",
        "[kit] (failures: details in pytest.log, junit.xml and the report)",
        "[kit] ====== short test summary info ======",
        "[kit] FAILED suites/a.py::test_x - RPT-004 ...",
        "[kit] 1 failed, 3 passed in 0.1s",
    ]


def test_pytest_command_passes_every_option(tmp_path: Path) -> None:
    from pcr_conformance.commands.run import RunConfig, pytest_command

    config = RunConfig(target=str(tmp_path / "t.toml"), target_name="t", kits=("k",), kit_args=("k",),
                       profile="regression", output=tmp_path, html=False, mask_pii=True, timeout_s=5,
                       suites=tmp_path / "suites")
    cmd = pytest_command(config, "k", tmp_path / "k" / "t")
    joined = " ".join(cmd)
    for part in (f"--pcr-target {tmp_path / 't.toml'}", "--pcr-kit k", "--pcr-profile regression", "--pcr-mask-pii",
                 f"--alluredir {tmp_path / 'k' / 't' / 'allure-results'}", f"--junitxml {tmp_path / 'k' / 't' / 'junit.xml'}",
                 f"--pcr-output {tmp_path / 'k' / 't'}"):
        assert part in joined


def test_a_kit_over_its_timeout_is_stopped_and_exits_2(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = cli("run", "--kit", "authority", "--timeout", "3", "--output", str(tmp_path / "reports"), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "stopped by the kit's time limit (--timeout 3 s)" in proc.stderr
    assert time.monotonic() - started < 60
    folder = tmp_path / "reports" / "authority" / "reference"
    assert (folder / "pytest.log").is_file()
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "error" and "time limit" in summary["error"]
    assert [p.name for p in (tmp_path / "reports" / "authority").iterdir()] == ["reference"]


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pcr-conformance {importlib.metadata.version('pcr-conformance')}"


def test_an_expired_lender_certificate_is_one_named_line_and_exit_2(tmp_path: Path) -> None:
    """A target whose lender slot holds the reference register's expired client certificate: the run says once
    which slot and why, every test needing the slot is broken (JUnit <error>, never <failure>), exit 2."""
    import xml.etree.ElementTree as ET

    from pcr_conformance import embedded, tlsprobe
    from pcr_conformance.target import load_target

    handle = embedded.start(load_target("reference"))
    try:
        reg = handle.target
        expired = reg.extra_certificates["expired"]
        owner = ", ".join(f'{k} = "{v}"' for k, v in reg.identities["lender"].owner.items())
        urls = "\n".join(f'{fam} = "{url}"' for fam, url in reg.base_urls.items())
        target = tmp_path / "expired-lender.toml"
        target.write_text(f'name = "expired-lender"\ncapabilities = ["reporting"]\npool = "{reg.pool}"\n'
                          f'timeout_s = 5\n[base_urls]\n{urls}\n[tls]\nca_bundle = "{reg.tls.ca_bundle}"\n'
                          f'[identities.lender]\ncert = "{expired.cert}"\nkey = "{expired.key}"\n'
                          f'owner = {{ {owner} }}\n', encoding="utf-8")
        expiry = f"{tlsprobe.certificate_info(expired.cert).not_after:%Y-%m-%d}"
        # A few tests that each need the lender slot (not the kit's ~1 200: the line is once however many break).
        kit = tmp_path / "lender-slot.toml"
        kit.write_text('name = "lender-slot"\ntitle = "Lender slot (a few tests)"\nactors = ["nobody"]\n'
                       'include = ["RPT-002", "RPT-039", "BAT-007"]\n', encoding="utf-8")
        proc = cli("run", "--target", str(target), "--kit", str(kit), "--output", str(tmp_path / "reports"),
                   "--no-html", timeout=300)
    finally:
        handle.stop()
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr
    named = [ln for ln in proc.stdout.splitlines() if "identity slot lender:" in ln and ln.startswith("[")]
    assert len(named) == 1, proc.stdout[-3000:]  # once in pytest's output, not once per test
    footer = [ln for ln in proc.stdout.splitlines() if ln.startswith("lender-slot: identity slot lender:")]
    assert len(footer) == 1, proc.stdout[-3000:]  # and once as the kit's reason under the verdict table
    assert "the register refused the client certificate (TLS handshake" in named[0]
    assert f"certificate expired on {expiry}" in named[0] and "CN=" in named[0] and "sha256 " in named[0]
    assert "RemoteProtocolError" not in proc.stdout and "Traceback" not in proc.stderr
    folder = tmp_path / "reports" / "lender-slot" / "expired-lender"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "error" and summary["counts"]["failed"] == 0
    assert summary["counts"]["broken"] == len(summary["tests"]) > 2  # every test of the kit, each broken
    suite = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert int(suite.get("errors", "0")) == summary["counts"]["broken"]
    errors = [e.get("message", "") for e in suite.iter("error")]
    assert errors and all("identity slot lender: the register refused" in m for m in errors)
    # summary.json and the error line on stderr name the cause, not "N broken tests"
    assert list(summary["identity_problems"]) == ["lender"]
    assert summary["identity_problems"]["lender"] in named[0]
    assert "identity slot lender: the register refused the client certificate" in proc.stderr
    # the report keeps the public certificates the attachments' curl commands name (certs/<slot>.pem)
    assert (folder / "certs" / "ca.pem").is_file() and (folder / "certs" / "lender.pem").is_file()
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in (folder / "certs").iterdir())
