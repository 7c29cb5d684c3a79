"""The sessions of the proof of the two readings (tests/test_public_contract*.py, issue 11), and each kit's
summary judged from one session of the `register` kit; one module per session, so that pytest-xdist's
--dist loadfile can run the three sessions in different processes (issue 12: CI time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pcr_conformance import resources, summary
from pcr_conformance.kits import available_kits, load_kit, load_requirements

RUN_TIMEOUT_S = 1500


def session(tmp: Path, target: str, contract: str) -> dict[str, Any]:
    cmd = [sys.executable, "-P", "-m", "pytest", str(resources.suites_dir()), *resources.suites_pytest_args(),
           "--pcr-target", target, "--pcr-kit", "register", "--pcr-contract", contract,
           "--pcr-output", str(tmp), "-q", "-p", "no:cacheprovider", "--tb=no"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    (tmp / "pytest.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    path = tmp / "summary.json"
    assert path.is_file(), (proc.stdout + proc.stderr)[-2000:]
    return json.loads(path.read_text(encoding="utf-8"))


def per_kit(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each shipped register kit's summary, from the register kit's session (the client kits judge a
    stakeholder's system, not a register: tests/test_client_proxy.py)."""
    reqs = load_requirements()
    tests = doc["tests"]
    findings = {n: [{"requirement": m.split(" ", 1)[0], "message": m} for m in t.get("informative_findings", [])]
                for n, t in tests.items()}
    out = {}
    for name in available_kits():
        kit = load_kit(name)
        if kit.side != "register":
            continue
        selected = kit.selected(reqs)
        mine = {n: t for n, t in tests.items() if any(r in selected for r in t["verifies"])}
        out[name] = summary.build(
            kit=kit, kit_name=name, target_name=doc["target"], requirements=reqs,
            verifies={n: t["verifies"] for n, t in mine.items()}, outcomes={n: t["outcome"] for n, t in mine.items()},
            startup_error=doc.get("error") or "", stakeholder=[], spec_hashes={}, suite_version="", profile="",
            seed="", run_id="", duration_s=0.0, known_deviations={},
            named={n: t["failed_requirements"] for n, t in mine.items()},
            reasons={n: t["reason"] for n, t in mine.items()}, capabilities=doc["capabilities"],
            reading=doc["contract"], findings={n: findings[n] for n in mine},
            observed={n: tests[n].get("observed", []) for n in mine})
    return out
