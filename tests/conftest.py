"""Shared set-up of the project's own tests.

Some harness tests run pytest in-process (pytester.runpytest); afterwards pytester drops every module first
imported during that inner run. Importing the certificate libraries here, before any test, keeps one copy of
their classes for the whole session (otherwise trustme's `ec.SECP256R1()` fails cryptography's isinstance
check after a reload).
"""

import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
import cryptography.x509  # noqa: F401
import trustme  # noqa: F401
