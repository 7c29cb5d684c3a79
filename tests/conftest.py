"""Shared set-up of the project's own tests.

Some harness tests run pytest in-process (pytester.runpytest); afterwards pytester drops every module first
imported during that inner run. Importing the certificate libraries here, before any test, keeps one copy of
their classes for the whole session (otherwise trustme's `ec.SECP256R1()` fails cryptography's isinstance
check after a reload).
"""

from collections.abc import Iterator
from pathlib import Path

import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
import cryptography.x509  # noqa: F401
import pytest
import trustme  # noqa: F401


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small register data dir (register_fixtures.make_data_dir) per test module that starts a register;
    a module with another data dir defines its own fixture of this name."""
    from register_fixtures import make_data_dir

    path = tmp_path_factory.mktemp("register-data")
    make_data_dir(path)
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator["pgserver.PgServer"]:  # noqa: F821 - imported below, when a test needs it
    """A real PostgreSQL server (pcr_register.pgserver: Debian's binaries, a temporary cluster, a free port),
    shared by the session and stopped at its end. A test that needs it FAILS when it cannot be started:
    `.ci/run` installs the server when initdb is missing, so a missing server is a broken machine, not a skip."""
    from pcr_register import pgserver

    try:
        server = pgserver.start()
    except pgserver.PgServerError as exc:
        pytest.fail(f"this test needs a PostgreSQL server and none could be started: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each register backend in turn: "sqlite" or "postgresql" (the latter needs the postgres fixture)."""
    return str(request.param)
