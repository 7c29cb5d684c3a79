"""The proof of the two readings (issue 11): every kit judged against our register and against its
public-minimal variant, a different correct register (`targets/public-minimal.toml`).

- public reading, variant: every kit conformant with 0 failed tests (no false alarm), the modelled
  requirements informative and the implementation-defined values the variant showed recorded;
- reference reading, our register: every kit conformant, as before the readings existed;
- reference reading, variant: every kit not-conformant, and every failure names a modelled requirement.

To keep it cheap there is one pytest session per (reading, register): the `register` kit, which selects every
requirement and so runs every test. Each other kit is judged from that session's test outcomes by the same
summary.build a kit's own run uses, over the tests that verify a requirement it selects (the tests a kit's
run would keep): a test's outcome does not depend on which other tests ran (docs/concepts.md#shared-environment).
The sessions and that judging are tests/public_contract.py's; each session has its module (this one, then
test_public_contract_reference.py and test_public_contract_variant.py), so the three run in parallel processes.
"""

from __future__ import annotations

from typing import Any

import pytest
from public_contract import per_kit, session

from pcr_conformance import readings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def public_variant(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return session(tmp_path_factory.mktemp("public-variant"), "public-minimal", "public")


def test_every_kit_is_conformant_against_the_variant_under_the_public_reading(public_variant) -> None:
    doc = public_variant
    assert doc["contract"] == "public" and doc["implementation_profile"] == ""
    for name, kit in per_kit(doc).items():
        if name == "load":  # every service level is modelled: informative, nothing decides (docs/load.md)
            assert kit["verdict"] == "error" and "every deciding requirement is modelled" in kit["error"], kit
            assert kit["counts"]["failed"] == 0 and kit["counts"]["broken"] == 0 and kit["informative"], kit
            continue
        assert kit["verdict"] == "conformant" and kit["counts"]["failed"] == 0, (name, kit["counts"], kit["gaps"])
        assert kit["counts"]["broken"] == 0, name
        # Modelled requirements ran and are shown, never deciding.
        assert kit["informative"] and all(not readings.is_public_requirement(r) for r in kit["informative"]), name
        assert not any(r["status"] == "informative" for rid, r in kit["requirement_results"].items()
                       if readings.is_public_requirement(rid)), name
    values = doc["observed_values"]
    # What the variant showed where the public material is silent is recorded (the raw material of --learn).
    assert values["processing_literal"] == {"BeingProcessed": values["processing_literal"]["BeingProcessed"]}
    assert set(values["extract_date_format"]) == {"date-time"}
    assert set(values["error_codes.D11"]) == {"Q11"} and set(values["error_codes.D02"]) == {"D02"}
    kits = per_kit(doc)
    counts = {name: kit["counts"]["informative"] for name, kit in kits.items()}
    informative = {name: len(kit["informative"]) for name, kit in kits.items()}
    findings = sum(len(t.get("informative_findings", [])) for t in doc["tests"].values())
    print(f"\npublic reading against public-minimal: {doc['counts']}; informative tests per kit {counts}; "
          f"informative requirements per kit {informative}; {findings} informative findings; "
          f"{len(values)} implementation-defined values recorded: "
          f"{ {k: sorted(v) for k, v in sorted(values.items())} }")
