"""The proof of the two readings, part 2 (tests/test_public_contract.py): the reference reading against our
register, every kit conformant as before the readings existed."""

from __future__ import annotations

from typing import Any

import pytest
from public_contract import per_kit, session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference_ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return session(tmp_path_factory.mktemp("reference-ours"), "reference", "reference")


def test_every_kit_is_conformant_against_our_register_under_the_reference_reading(reference_ours) -> None:
    assert reference_ours["contract"] == "reference"
    assert reference_ours["implementation_profile"].endswith("reference.toml")
    for name, kit in per_kit(reference_ours).items():
        assert kit["verdict"] == "conformant", (name, kit["counts"], kit["gaps"], kit["unattributed_failures"])
        assert kit["counts"]["failed"] == 0 and kit["counts"]["informative"] == 0, name
