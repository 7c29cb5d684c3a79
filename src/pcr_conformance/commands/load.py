"""`pcr-conformance load`: a load run on Locust against a target, judged by the load kit (docs/load.md).

Without --worker: the load kit's tests run through `run` (one pytest session: the embedded register started
by default, any target with --target), their `pcr_load` fixture runs Locust with these options (headless, or
its web UI with --web-ui; a master waiting for --expect-workers workers with --master), and the verdict per
service level lands in OUTPUT/load/<target>/ with summary.json, junit.xml, allure-results, html/ and Locust's
own HTML and CSV statistics in locust/. With --worker: Locust's own worker process with our locustfile,
connected to --master-host; nothing of ours runs between the worker and the master.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from pcr_conformance import load, resources
from pcr_conformance.cli import CliError
from pcr_conformance.commands import run as run_cmd
from pcr_conformance.errors import HarnessError
from pcr_conformance.target import load_target, resolve_target_path

KIT = "load"


def options(args: argparse.Namespace) -> load.LoadOptions:
    """The CLI's Locust options as load.LoadOptions (CliError naming a bad one)."""
    try:
        run_time = load.parse_duration(args.run_time) if args.run_time else 0.0
        chosen = load.LoadOptions(users=args.users, spawn_rate=args.spawn_rate, run_time_s=run_time,
                                  web_ui=args.web_ui, web_port=args.web_port, master=args.master,
                                  expect_workers=args.expect_workers, master_bind_host=args.master_bind_host,
                                  master_port=args.master_port, html=os.path.abspath(args.html) if args.html else "",
                                  csv=os.path.abspath(args.csv) if args.csv else "")
        load.check(chosen)
    except HarnessError as e:
        raise CliError(str(e)) from None
    return chosen


def as_text(chosen: load.LoadOptions) -> str:
    """The options as --pcr-load's KEY=VALUE list (only those that differ from load.SMOKE)."""
    parts = []
    for field in dataclasses.fields(load.LoadOptions):
        value = getattr(chosen, field.name)
        if value != getattr(load.SMOKE, field.name) and field.name != "cleanup":
            if "," in str(value):
                raise CliError(f"--{field.name.replace('_', '-')} {value}: no comma in a path, please")
            parts.append(f"{field.name}={str(value).lower() if isinstance(value, bool) else value}")
    return ",".join(parts)


def main(args: argparse.Namespace) -> int:
    if args.worker:
        return _worker(args)
    chosen = options(args)
    ns = argparse.Namespace(target=args.target or "reference", kit=[KIT], profile="certification", output=args.output,
                            no_html=args.no_html, mask_pii=False, timeout=args.timeout, contract=args.contract,
                            implementation_profile=None, recording=None, json=args.json)
    config = run_cmd.run_config(ns)
    # One pytest process: the load itself is Locust's processes; xdist workers would each start a load run.
    config = dataclasses.replace(config, load=as_text(chosen), suites=resources.suites_dir().resolve() / "load",
                                 workers=1)
    if chosen.web_ui:
        print(f"Locust's web UI: http://{chosen.web_host}:{chosen.web_port}", flush=True)
    if chosen.master:
        print(f"Locust master: waiting for {chosen.expect_workers} worker(s) on port {chosen.master_port} "
              f"(pcr-conformance load --worker --master-host <this host>)", flush=True)
    outcomes = run_cmd.run_kits(config, html_notice=lambda m: print(m, flush=True))
    for o in outcomes:
        if o.folder:
            print(f"Locust's statistics: {o.folder}/locust/locust.html", flush=True)
    return run_cmd.report_outcomes(config, outcomes, args.json)


def _worker(args: argparse.Namespace) -> int:
    """Become Locust's worker process (exec): the master drives it, as with `locust --worker`."""
    own = ""
    if args.target:
        try:
            if not load_target(args.target).embedded:
                own = str(resolve_target_path(args.target))
        except HarnessError as e:
            raise CliError(str(e)) from None
    cmd = load.worker_command(args.master_host, args.master_port, own)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached
