"""Shared set-up of the project's own tests.

Some harness tests run pytest in-process (pytester.runpytest); afterwards pytester drops every module first
imported during that inner run. Importing the certificate libraries here, before any test, keeps one copy of
their classes for the whole session (otherwise trustme's `ec.SECP256R1()` fails cryptography's isinstance
check after a reload).
"""

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
