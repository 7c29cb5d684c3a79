"""Hypothesis / schemathesis profiles of the suites (docs/concepts.md#fuzzing-profiles), applied to suite tests only.

certification: the same inputs on every run (derandomized, fixed budget, no example database).
regression: random and longer, for the register team; the seed is recorded so a run can be replayed.

The profiles are registered here, but loaded only around the call of a suite test (one that carries the
`verifies` marker) and the previous profile is restored afterwards, so another Hypothesis test in the same
pytest session keeps its own settings.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, core, settings

PROFILES = ("certification", "regression")
CERTIFICATION_SEED = 20261121
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.function_scoped_fixture]

settings.register_profile("certification", derandomize=True, max_examples=25, deadline=None, database=None,
                          suppress_health_check=_HEALTH, print_blob=False)
settings.register_profile("regression", derandomize=False, max_examples=300, deadline=None, database=None,
                          suppress_health_check=_HEALTH, print_blob=True)


def choose_seed(config: pytest.Config, profile: str) -> tuple[str, int | None]:
    """(the seed as summary.json shows it, the seed to force on the suite tests or None)."""
    given = config.getoption("hypothesis_seed", None)
    if given is not None:
        return str(given), None  # Hypothesis' own --hypothesis-seed applies to every test already
    if profile == "regression":
        forced = random.SystemRandom().randrange(2**31)
        return str(forced), forced
    return "derandomized", None


def profile_for(config: pytest.Config, profile: str) -> str | None:
    """The profile to load around suite tests; None when --hypothesis-profile chose one for the session."""
    return None if config.getoption("hypothesis_profile", None) is not None else profile


@contextlib.contextmanager
def applied(profile: str | None, forced_seed: int | None) -> Iterator[None]:
    """Load `profile` (and force the seed) for the duration of the block, then restore what was there."""
    previous_profile = settings.get_current_profile_name()
    previous_seed = core.global_force_seed
    if profile is not None:
        settings.load_profile(profile)
    if forced_seed is not None:
        core.global_force_seed = forced_seed
    try:
        yield
    finally:
        if profile is not None:
            settings.load_profile(previous_profile)
        core.global_force_seed = previous_seed
