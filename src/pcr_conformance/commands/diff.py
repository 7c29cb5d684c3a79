"""`pcr-conformance diff OLD NEW`: the changes between two contract versions, per side and per stakeholder kit
(pcr_conformance.contract_diff). Exit 1 when a change breaks either side, for CI gates on spec changes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pcr_conformance.cli import EXIT_FAILED, EXIT_OK, CliError


def _folder(given: str) -> tuple[str, Path]:
    """(label, folder) of a version name or a folder of contract files."""
    from pcr_conformance import versions

    path = Path(given)
    if path.is_dir():
        if not (path / "requirements.yaml").is_file():
            raise CliError(f"{given}: not a folder of contract files (no requirements.yaml); give a version name "
                           f"(pcr-conformance diff --list) or a specs/ folder")
        return f"{versions.current_name(path) or 'unnamed'} ({path})", path
    try:
        return given, versions.build(given)
    except versions.VersionError as e:
        raise CliError(str(e)) from None


def side_of(kit: Any) -> str:
    """Whose system a kit's stakeholder changes: the register team's (the register kit), else a client's."""
    return "register" if not kit.actors or "register" in kit.actors else "client"


def _list_versions() -> int:
    from pcr_conformance import versions

    for name, v in versions.catalogue().items():
        base = f"overlays on {v.base}" if v.base else "the files of specs/ (current)"
        print(f"{name:<10} {v.status or '-':<14} {base}: {v.description}")
        # Where its complete files are: PCR_SPECS_DIR=<folder> pcr-register serve serves that version.
        print(f"{'':<10} files: {versions.build(name)}")
    return EXIT_OK


def main(args: argparse.Namespace) -> int:
    from pcr_conformance import collect, contract_diff, kits
    from pcr_conformance.errors import HarnessError

    if args.list:
        return _list_versions()
    if not args.old or not args.new:
        raise CliError("give OLD and NEW (version names or folders); pcr-conformance diff --list shows the versions")
    (old_label, old), (new_label, new) = _folder(args.old), _folder(args.new)
    changes = contract_diff.diff(old, new)
    reqs = contract_diff.requirements_of_both(old, new)
    try:
        all_kits = [kits.load_kit(name) for name in kits.available_kits()]
    except HarnessError as e:
        raise CliError(str(e)) from None
    per_kit = {k.name: [i for i, c in enumerate(changes) if k.name in contract_diff.affected_kits(c, [k], reqs)]
               for k in all_kits}
    tests: dict[int, list[str]] = {}
    if not args.no_tests and changes:
        try:
            verifies = {**collect.collect_verifies(contract_dir=old), **collect.collect_verifies(contract_dir=new)}
        except (collect.CollectError, OSError) as e:
            raise CliError(f"cannot collect the suites' tests (use --no-tests): {str(e).splitlines()[0]}") from None
        tests = {i: contract_diff.affected_tests(c, verifies, reqs) for i, c in enumerate(changes)}
    if args.format == "json":
        doc = json.loads(contract_diff.to_json(changes, per_kit, tests))
        doc.update(old=old_label, new=new_label,
                   kits={k.name: {"side": side_of(k), "changes": per_kit[k.name],
                                  "breaking": [i for i in per_kit[k.name] if getattr(changes[i], side_of(k)) ==
                                               contract_diff.BREAKING]} for k in all_kits})
        print(json.dumps(doc, indent=1))
    else:
        print(render(changes, per_kit, tests, all_kits, old_label, new_label, markdown=args.format == "markdown",
                     with_tests=not args.no_tests))
    return EXIT_FAILED if any(c.breaking for c in changes) else EXIT_OK


def _mark(value: str) -> str:
    return "BREAKING" if value == "breaking" else "ok"


def render(changes: list[Any], per_kit: dict[str, list[int]], tests: dict[int, list[str]], all_kits: list[Any],
           old: str, new: str, *, markdown: bool, with_tests: bool) -> str:
    breaking = sum(1 for c in changes if c.breaking)
    head = f"Contract {old} -> {new}: {len(changes)} change(s), {breaking} breaking for a side"
    rows = [(str(i + 1), c.subject, c.kind, c.location, c.detail, _mark(c.client), _mark(c.register))
            for i, c in enumerate(changes)]
    header = ("#", "subject", "change", "where", "detail", "clients", "registers")
    out: list[str] = []
    if markdown:
        out += [f"## {head}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r).replace("\n", " ") + " |" for r in rows]
    else:
        out += [head, ""]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    out.append("")
    out.append("## What it means for each kit's stakeholder" if markdown else "What it means for each kit's stakeholder:")
    for kit in all_kits:
        side = side_of(kit)
        mine = per_kit.get(kit.name, [])
        hurt = [i for i in mine if getattr(changes[i], side) == "breaking"]
        reached = sorted({t for i in mine for t in tests.get(i, [])})
        who = "the register team (its register must change)" if side == "register" else "its system as a client"
        line = (f"{kit.name} ({kit.title}; {who}): {len(mine)} change(s) reach it, {len(hurt)} breaking for it"
                + (f"; {len(reached)} test(s) reached" if with_tests else ""))
        out.append(("- " if markdown else "  ") + line)
        for i in hurt:
            c = changes[i]
            out.append(("  - " if markdown else "      ") + f"#{i + 1} {c.subject}: {c.kind} {c.location}: {c.detail}")
    if with_tests:
        out.append("")
        out.append("## Tests reached per change" if markdown else "Tests reached per change:")
        for i, c in enumerate(changes):
            reached = tests.get(i, [])
            shown = ", ".join(reached[:8]) + (f", ... ({len(reached) - 8} more)" if len(reached) > 8 else "")
            out.append(("- " if markdown else "  ") + f"#{i + 1} {c.subject}: {len(reached)} test(s)"
                       + (f": {shown}" if reached else ""))
    return "\n".join(out)
