"""Mutation score of the kit against the reference register's rule and handler modules (issue 13, item 5).

A benchmark, not part of the test command. It needs cosmic-ray (``pip install -c constraints.txt -e ".[mutation]"``):

    .venv/bin/python benchmarks/mutation.py --sample 40 --seed 13           # a random sample of the mutants
    .venv/bin/python benchmarks/mutation.py --module rules --sample 0       # every mutant of one module
    .venv/bin/python benchmarks/mutation.py --sample 40 --json mutation.json --second-stage kit
    .venv/bin/python benchmarks/mutation.py --sample 0 --mutant "rules.py:97 ReplaceAndWithOr #10"

Why cosmic-ray: it writes each mutant into the source file and runs an ordinary command, so the mutated code
is what a *separate process* imports. The register under test is such a process (`pcr-register serve`,
started by the harness), which rules out tools that switch mutants inside the test process. This script uses
cosmic-ray's operators and its mutate_code() only; it does not mutate the checkout: each mutant is written
into a copy of ``src/`` in a temporary folder, and the suites run with ``PYTHONPATH`` pointing there, so the
embedded register (and the harness, unchanged) import the copy.

For each mutant: the tests that verify the requirements cited in the mutated function (``# RPT-012 ...``,
else those cited anywhere in the module) run first (pytest exit 1: killed). With ``--second-stage kit`` a
survivor is run again against the whole `register` kit. A survivor of a module in REGISTER_TESTS is run against
the register tests of behaviour that is the register's own, not contract (tests/test_register_own_behaviour.py):
no suite may check that. Survivors judged equivalent (no register behaviour visible through any API can differ)
are listed with the reason in benchmarks/mutation_equivalents.toml; the score is printed raw and over the
non-equivalent mutants. `--mutant NAME` reruns named mutants while a test is written. Mutants on a line that asks for a fault switch
(``faults.on(...)``) are left out: with no fault active that code is dead by construction (the self-test
proves those lines). Timeouts count as killed (the mutant hangs the register) and are listed apart.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
MODULES = ("rules", "processing", "submission", "loans", "identifiers", "extract", "authorities",
           "voluntary_ban", "views")  # the register's rule and handler modules (ARCHITECTURE.md)
REQUIREMENT = re.compile(r"\b[A-Z]{3}-\d{3}\b")
TIMEOUT_S = 300
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")
# Register unit tests of behaviour that is the reference register's own (not contract, so no suite may check
# it): run for a mutant of the module when the suites' tests leave it alive.
REGISTER_TESTS: dict[str, tuple[str, ...]] = {
    "processing": ("tests/test_register_own_behaviour.py",),
    "views": ("tests/test_register_own_behaviour.py",),
    "extract": ("tests/test_register_variant.py::test_the_reference_variant_warns_about_the_flat_extract_form",),
}


@dataclass(frozen=True)
class Mutant:
    module: str
    operator: str
    occurrence: int
    line: int
    code: str  # the mutated module source
    before: str = ""  # the mutated line as it was and as it became (stripped): what EQUIVALENTS keys on
    after: str = ""

    @property
    def name(self) -> str:
        return f"{self.module}.py:{self.line} {self.operator} #{self.occurrence}"


@dataclass(frozen=True)
class Equivalent:
    """A surviving mutant judged equivalent: no register behaviour visible through any API can differ."""

    module: str
    before: str
    after: str
    reason: str


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    """The judged-equivalent mutants (benchmarks/mutation_equivalents.toml), keyed by module and line text so
    that an edit elsewhere in the module (which moves line numbers and occurrences) does not lose them."""
    import tomllib

    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Equivalent(e["module"], e["before"].strip(), e["after"].strip(), e["reason"])
            for e in data.get("equivalent", [])]


def equivalence_of(mutant: Mutant, equivalents: list[Equivalent]) -> str | None:
    for e in equivalents:
        if (e.module, e.before) == (mutant.module, mutant.before) and e.after in ("*", mutant.after):
            return e.reason
    return None


def _operators() -> list[tuple[str, Any]]:
    from cosmic_ray.plugins import get_operator, operator_names

    out = []
    for name in sorted(operator_names()):
        try:
            out.append((name, get_operator(name)()))
        except TypeError:  # operators that need arguments (none of the core ones we use)
            continue
    return out


def _is_fault_test(test: ast.expr) -> bool:
    """`faults.on(...)` or `... and faults.on(...)`: the body runs only with that fault switch on."""
    def on_call(node: ast.expr) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "on"
    if on_call(test):
        return True
    return isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and any(on_call(v) for v in test.values)


def fault_only_lines(source: str) -> set[int]:
    """Lines that ask for a fault switch, or run only when one is on (dead code with no fault active)."""
    lines = {i for i, text in enumerate(source.splitlines(), 1) if "faults.on(" in text}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and _is_fault_test(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _without_annotations(source: str) -> str:
    """The AST dump with every annotation removed: under `from __future__ import annotations` they are
    strings that nothing evaluates, so a mutant differing only there is equivalent."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            node.annotation = None
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
        elif isinstance(node, ast.AnnAssign):
            node.annotation = ast.Constant(None)
    return ast.dump(tree)


def mutants_of(module: str) -> tuple[list[Mutant], dict[str, int]]:
    """The mutants cosmic-ray's operators make of src/pcr_register/<module>.py, and how many were set aside as
    equivalent by construction (on fault-switch code, in annotations only, or not valid Python)."""
    from cosmic_ray.ast import ast_nodes, get_ast
    from cosmic_ray.mutating import mutate_code

    path = SRC / "pcr_register" / f"{module}.py"
    source = path.read_text(encoding="utf-8")
    fault_lines = fault_only_lines(source)
    plain = _without_annotations(source)
    tree = get_ast(source)
    found: list[Mutant] = []
    aside = {"fault-switch code": 0, "annotation only": 0, "not valid Python": 0}
    for name, operator in _operators():
        occurrence = 0
        for node in ast_nodes(tree):
            for start, _stop in operator.mutation_positions(node):
                line = start[0]
                if line in fault_lines:
                    aside["fault-switch code"] += 1
                else:
                    mutated = mutate_code(source, operator, occurrence)
                    if mutated is not None and mutated != source:
                        try:
                            same = _without_annotations(mutated) == plain
                        except SyntaxError:
                            aside["not valid Python"] += 1
                            same = None
                        if same:
                            aside["annotation only"] += 1
                        elif same is False:
                            before, after = _changed_line(source, mutated, line)
                            found.append(Mutant(module, name.removeprefix("core/"), occurrence, line, mutated,
                                                before, after))
                occurrence += 1
    return found, aside


def _changed_line(source: str, mutated: str, line: int) -> tuple[str, str]:
    """The mutated line before and after (stripped); cosmic-ray keeps the line count, so index `line` fits."""
    a, b = source.splitlines(), mutated.splitlines()
    if len(a) == len(b) and 0 < line <= len(a):
        return a[line - 1].strip(), b[line - 1].strip()
    return "", ""


def cited_requirements(mutant: Mutant) -> set[str]:
    """Requirement IDs cited in the function around the mutated line (else anywhere in the module)."""
    lines = (SRC / "pcr_register" / f"{mutant.module}.py").read_text(encoding="utf-8").splitlines()
    start = mutant.line - 1
    while start > 0 and not re.match(r"(def |class |async def )", lines[start]):
        start -= 1
    end = mutant.line
    while end < len(lines) and not re.match(r"(def |class |async def |[A-Z_]+ = )", lines[end]):
        end += 1
    ids = set(REQUIREMENT.findall("\n".join(lines[start:end])))
    return ids or set(REQUIREMENT.findall("\n".join(lines)))


def _pytest(copy: Path, node_ids: list[str], *, first_failure: bool, suites: bool = True) -> tuple[str, float]:
    """'killed' | 'survived' | 'timeout' | 'error:<exit>' of the suites' tests against the copy's register
    (suites=False: of the project's register tests, which start the copy's register themselves)."""
    from pcr_conformance import resources

    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    # The project's tests run under xdist by default (pyproject addopts), where -x ends as exit 2 "interrupted":
    # one process keeps exit 1 meaning a failed test.
    how = [*resources.suites_pytest_args(), "--rootdir", str(REPO), "--pcr-target", "reference"] if suites else [
        "-n", "0"]
    cmd = [sys.executable, "-m", "pytest", *how, "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
           *(["-x"] if first_failure else []), *node_ids]
    began = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - began
    took = time.monotonic() - began
    return {0: "survived", 1: "killed"}.get(proc.returncode, f"error:{proc.returncode}"), took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=MODULES, help="module to mutate (repeatable; "
                        "default: every rule and handler module)")
    parser.add_argument("--sample", type=int, default=40, help="random sample of this many mutants (0: all)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--second-stage", choices=("none", "kit"), default="none",
                        help="run a survivor of the targeted tests again against the whole register kit")
    parser.add_argument("--json", type=Path, help="write every mutant's outcome to this file")
    parser.add_argument("--mutant", action="append", help="run only the mutant of this name, as the output prints "
                        "it ('rules.py:97 ReplaceAndWithOr #10'; repeatable; --sample then picks among them)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(SRC))
    from pcr_conformance.collect import collect_verifies

    verifies = collect_verifies(REPO / "suites")
    everything: list[Mutant] = []
    aside: dict[str, int] = {}
    for module in args.module or MODULES:
        found, skipped = mutants_of(module)
        everything.extend(found)
        for why, n in skipped.items():
            aside[why] = aside.get(why, 0) + n
    if args.mutant:
        unknown = set(args.mutant) - {m.name for m in everything}
        if unknown:
            print(f"--mutant: no mutant named {', '.join(sorted(unknown))} (names as the output prints them)",
                  file=sys.stderr)
            return 2
        everything = [m for m in everything if m.name in args.mutant]
    equivalents = load_equivalents()
    rng = random.Random(args.seed)
    chosen = everything if args.sample <= 0 or args.sample >= len(everything) else rng.sample(everything, args.sample)
    print(f"{len(everything)} mutants of {', '.join(args.module or MODULES)}; set aside as equivalent by "
          f"construction: {', '.join(f'{n} {why}' for why, n in aside.items())}; running {len(chosen)} "
          f"(seed {args.seed})", flush=True)

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pcr-mutation-") as tmp:
        copy = Path(tmp)
        shutil.copytree(SRC, copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        # The unmutated copy must pass the tests a mutant is judged by, or every "killed" would be a lie.
        if chosen:
            first = sorted(n for n, reqs in verifies.items() if cited_requirements(chosen[0]) & set(reqs))
            baseline, _ = _pytest(copy, first, first_failure=True) if first else ("survived", 0.0)
            if baseline != "survived":
                print(f"the unmutated copy does not pass its tests ({baseline}): no score", file=sys.stderr)
                return 2
        for i, mutant in enumerate(chosen, 1):
            target = copy / "src" / "pcr_register" / f"{mutant.module}.py"
            original = target.read_text(encoding="utf-8")
            target.write_text(mutant.code, encoding="utf-8")
            try:
                ids = cited_requirements(mutant)
                tests = sorted(n for n, reqs in verifies.items() if ids & set(reqs))
                outcome, took = _pytest(copy, tests, first_failure=True) if tests else ("no-tests", 0.0)
                stage = "targeted"
                unit = [t for t in REGISTER_TESTS.get(mutant.module, ()) if (REPO / t.split("::")[0]).exists()]
                if outcome in ("survived", "no-tests") and unit:
                    outcome, more = _pytest(copy, unit, first_failure=True, suites=False)
                    took, stage = took + more, "register tests"
                if outcome in ("survived", "no-tests") and args.second_stage == "kit":
                    outcome, more = _pytest(copy, ["suites"], first_failure=True)
                    took, stage = took + more, "kit"
            finally:
                target.write_text(original, encoding="utf-8")
            equivalent = equivalence_of(mutant, equivalents) if outcome in ("survived", "no-tests") else None
            results.append({"mutant": mutant.name, "requirements": sorted(ids), "tests": len(tests),
                            "outcome": outcome, "stage": stage, "seconds": round(took, 1),
                            "line": mutant.before, "mutated": mutant.after,
                            **({"equivalent": equivalent} if equivalent else {})})
            print(f"[{i}/{len(chosen)}] {mutant.name}: {outcome} ({stage}, {len(tests)} tests, {took:.1f} s)",
                  flush=True)

    # As cosmic-ray counts: any failing run kills the mutant. A pytest error (exit 2, 3, 4) is a register that
    # does not start or answer (e.g. a mutant that breaks `pcr-register init`): listed apart, counted killed.
    killed = sum(r["outcome"] in ("killed", "timeout") or r["outcome"].startswith("error") for r in results)
    print(f"\nmutation score: {killed}/{len(results)} killed ({100 * killed / max(len(results), 1):.1f} %); "
          f"of them by a timeout {sum(r['outcome'] == 'timeout' for r in results)}, by a register or session "
          f"that did not start {sum(r['outcome'].startswith('error') for r in results)}")
    judged = [r for r in results if r.get("equivalent")]
    considered = len(results) - len(judged)
    print(f"of the non-equivalent: {killed}/{considered} killed ({100 * killed / max(considered, 1):.1f} %); "
          f"{len(judged)} survivors judged equivalent ({EQUIVALENTS.relative_to(REPO)}, the reason of each below)")
    for r in results:
        if r["outcome"] in ("survived", "no-tests") and not r.get("equivalent"):
            print(f"  survived: {r['mutant']} (requirements {', '.join(r['requirements']) or '-'})\n"
                  f"      {r['line']}\n   -> {r['mutated']}")
    for r in judged:
        print(f"  equivalent: {r['mutant']}: {r['equivalent']}")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "total_mutants": len(everything), "set_aside": aside,
                                         "results": results}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
