"""`pcr-conformance report`: regenerate the HTML report from existing results, print the verdict table."""

from __future__ import annotations

import argparse
from pathlib import Path

from pcr_conformance import report
from pcr_conformance.cli import EXIT_ERROR, EXIT_OK, CliError


def main(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if not root.is_dir():
        raise CliError(f"{root} is not a folder; give reports/ or reports/<kit>/<target>/")
    folders = report.report_folders(root)
    if not folders:
        raise CliError(f"no allure-results/ under {root}; run `pcr-conformance run` first")
    code = EXIT_OK
    named = [(folder, f"PCR conformance: {folder.parent.name} on {folder.name}") for folder in folders]
    for folder, html in zip(folders, report.generate_html_of(named), strict=True):
        print(f"{folder}: {html.message}")
        if not html.ok:
            code = EXIT_ERROR
    summaries = []
    for folder in folders:
        try:
            s = report.read_summary(folder / "summary.json")
            summaries.append(report.KitOutcome(folder.parent.name, folder.name, 0, summary=s))
        except report.ReportError:
            continue
    if summaries:
        print()
        print(report.render_table(summaries))
    return code
