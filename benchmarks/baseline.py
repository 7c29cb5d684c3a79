"""Baseline comparison (issue 6): plain `schemathesis run` vs pcr-conformance on the seeded faults.

For every fault switch of the reference register, start the register with that fault and run plain
`schemathesis run` (all checks, the specs, the same client certificates, deterministic generation) over each
API family. A fault counts as detected by plain schemathesis when its set of failing (operation, check)
pairs differs from the control run against the register without faults: plain schemathesis already fails
the faultless register (random owners are answered 403, which its positive-data check reports), so only a
change against that control can be attributed to the fault.

The pcr-conformance side comes from the self-test's JSON (`pcr-conformance selftest --json FILE`), run here
unless `--selftest-json` names an existing one. Prints the side-by-side table and a JSON summary.

    python benchmarks/baseline.py [--fault NAME]... [--max-examples 20] [--selftest-json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pcr_conformance import embedded, specs, suite
from pcr_conformance.selftest import Fault, load_faults
from pcr_conformance.target import load_target

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS_TIMEOUT_S = 600


@dataclass(frozen=True)
class PlainRun:
    failing: frozenset[str]  # "family:testcase:first line of the failure"
    duration_s: float
    exit_codes: tuple[int, ...]


def schemathesis_exe() -> str:
    return str(Path(sys.executable).with_name("schemathesis"))


def failing_pairs(junit: Path, family: str) -> set[str]:
    if not junit.exists():
        return {f"{family}:no-report"}
    pairs: set[str] = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                first = (node.get("message") or node.text or "").strip().splitlines()[:1]
                pairs.add(f"{family}:{case.get('name')}:{first[0] if first else tag}")
    return pairs


def run_plain(faults: str, max_examples: int, workdir: Path) -> PlainRun:
    """Start the reference register with the given faults and run plain schemathesis over every family."""
    os.environ["PCR_REGISTER_FAULTS"] = faults
    started = time.monotonic()
    reg = embedded.start(load_target("reference"))
    try:
        target = reg.target
        failing: set[str] = set()
        codes: list[int] = []
        # Plain schemathesis gets each family's spec file and the certificate of the slot allowed on it.
        for family, spec in specs.family_files().items():
            identity = target.identity(suite.slot_for(family))
            if identity is None:
                continue
            junit = workdir / f"{family}.xml"
            cmd = [
                schemathesis_exe(), "run", str(specs.specs_dir() / spec), "--url", target.base_url(family),
                "--tls-verify", target.tls.ca_bundle, "--request-cert", identity.cert,
                "--request-cert-key", identity.key, "--checks", "all", "--max-examples", str(max_examples),
                "--seed", "1", "--generation-deterministic", "--request-timeout", "10",
                "--report", "junit", "--report-junit-path", str(junit), "--no-color",
            ]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S)
                codes.append(proc.returncode)
            except subprocess.TimeoutExpired:
                codes.append(-1)
            failing |= failing_pairs(junit, family)
    finally:
        reg.stop()
        os.environ.pop("PCR_REGISTER_FAULTS", None)
    return PlainRun(frozenset(failing), time.monotonic() - started, tuple(codes))


def selftest_results(path: Path | None, faults: list[Fault]) -> dict:
    if path is not None and path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "selftest.json"
        cmd = [sys.executable, "-m", "pcr_conformance.cli", "selftest", "--json", str(out)]
        for f in faults:
            cmd += ["--fault", f.name]
        subprocess.run(cmd, cwd=ROOT, timeout=3600)
        return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", action="append", default=[], help="only these faults (repeatable)")
    parser.add_argument("--max-examples", type=int, default=20, help="schemathesis examples per operation")
    parser.add_argument("--selftest-json", type=Path, help="reuse a self-test JSON instead of running it")
    args = parser.parse_args(argv)

    faults = load_faults(args.fault)
    with tempfile.TemporaryDirectory(prefix="pcr-baseline-") as tmp:
        tmp_path = Path(tmp)
        print("plain schemathesis: control run without faults", flush=True)
        control = run_plain("", args.max_examples, _dir(tmp_path / "control"))
        plain: dict[str, PlainRun] = {}
        for i, fault in enumerate(faults, 1):
            print(f"plain schemathesis [{i}/{len(faults)}] {fault.name}", flush=True)
            plain[fault.name] = run_plain(fault.name, args.max_examples, _dir(tmp_path / fault.name))
    print("pcr-conformance self-test", flush=True)
    ours = {f["name"]: f for f in selftest_results(args.selftest_json, faults)["faults"]}

    rows = [("fault", "requirement", "schemathesis", "pcr-conformance", "st time s", "pcr time s")]
    for fault in faults:
        run = plain[fault.name]
        mine = ours.get(fault.name, {})
        rows.append((fault.name, fault.requirement, "yes" if run.failing != control.failing else "no",
                     "yes" if mine.get("detected") else "no", f"{run.duration_s:.1f}",
                     f"{mine.get('duration_s', 0):.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    st_detected = sum(plain[f.name].failing != control.failing for f in faults)
    pcr_detected = sum(bool(ours.get(f.name, {}).get("detected")) for f in faults)
    st_median = statistics.median(plain[f.name].duration_s for f in faults) if faults else 0.0
    pcr_median = statistics.median(float(ours.get(f.name, {}).get("duration_s", 0)) for f in faults) if faults else 0.0
    summary = {
        "faults": len(faults),
        "plain_schemathesis_detected": st_detected,
        "pcr_conformance_detected": pcr_detected,
        "plain_schemathesis_control_failures": len(control.failing),
        "median_s_per_fault": {"plain_schemathesis": round(st_median, 1), "pcr_conformance": round(pcr_median, 1)},
    }
    print()
    print(f"detected: plain schemathesis {st_detected}/{len(faults)}, pcr-conformance {pcr_detected}/{len(faults)}")
    print(f"plain schemathesis fails the faultless register on {len(control.failing)} (operation, check) pairs")
    print(f"median time per fault: plain schemathesis {st_median:.1f} s, pcr-conformance {pcr_median:.1f} s")
    print(json.dumps(summary))
    return 0


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
