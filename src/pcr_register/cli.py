"""`pcr-register` command line (interfaces.md §7, §8): init, serve (with --variant), export-pool, faults,
fork-server."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from pcr_register import faults as faults_mod

REQUIRED_FILES = ("ca.pem", "server.pem", "server.key", "organisations.json", "population.json")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2 (no usage dump, no traceback)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _die(message: str) -> NoReturn:
    sys.stderr.write(f"pcr-register: error: {message}\n")
    raise SystemExit(2)


def build_parser() -> _Parser:
    parser = _Parser(prog="pcr-register", description="The pcr-conformance reference register (Finnish Positive "
                     "Credit Register APIs over mutual TLS, on SQLite or PostgreSQL).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p_init = sub.add_parser("init", help="create a data dir: CA, server and client certificates, organisations, "
                            "test population", description="Create DIR with certificates, organisations.json and "
                            "population.json.")
    p_init.add_argument("dir", metavar="DIR", type=Path, help="data directory to create")
    p_init.add_argument("--persons", type=int, default=500, help="number of persons in the test population (500)")
    p_init.add_argument("--seed", type=int, default=1, help="random seed of the population (1)")

    p_serve = sub.add_parser("serve", help="run the register over mutual TLS",
                             description="Serve every API on one port; prints 'listening on https://HOST:PORT' first. "
                             f"Fault switches come from {faults_mod.ENV_VAR}=name[,name].")
    p_serve.add_argument("--data", required=True, type=Path, metavar="DIR", help="data dir written by `init`")
    p_serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p_serve.add_argument("--port", type=int, default=8443, help="port; 0 = a free port (8443)")
    p_serve.add_argument("--db", metavar="PATH|URL", help="SQLite file (DIR/register.sqlite3), or a PostgreSQL "
                         "database postgresql://USER[:PASSWORD]@HOST[:PORT]/DB that several registers may share")
    p_serve.add_argument("--variant", metavar="NAME", help="reference (default) or public-minimal: a different "
                         "but correct register where the public material leaves a value open (default: "
                         "$PCR_REGISTER_VARIANT, else reference)")

    p_pool = sub.add_parser("export-pool", help="write the test-data pool file (JSON)",
                            description="Write the persons and organisations of DIR as a pool file.")
    p_pool.add_argument("--data", required=True, type=Path, metavar="DIR", help="data dir written by `init`")
    p_pool.add_argument("--output", type=Path, metavar="FILE", help="output file (default: stdout)")

    sub.add_parser("faults", help="print the fault switches as JSON",
                   description="Print [{name, requirement, description}] of every fault switch.")

    p_forks = sub.add_parser("fork-server", help="fork a register per client of a Unix socket (Linux)",
                             description="Import the register and parse the specs once, then fork a `serve` for "
                             "each client of the socket, with the client's arguments and environment "
                             "(the protocol: src/pcr_register/forkserver.py). Ends when stdin closes.")
    p_forks.add_argument("--socket", required=True, type=Path, metavar="PATH", help="the Unix socket to create")
    return parser


def _check_data_dir(path: Path) -> None:
    if not path.is_dir():
        _die(f"data dir {path} does not exist (create it with `pcr-register init {path}`)")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        _die(f"data dir {path} lacks {', '.join(missing)} (create it with `pcr-register init`)")


def _serve(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `pcr-register faults` and `init` need none of the server's dependencies.
    from pcr_register import variant as variant_mod
    from pcr_register.config import Config, SpecsNotFound, default_specs_dir
    from pcr_register.routes import check_specs
    from pcr_register.server import serve
    from pcr_register.state import open_register
    from pcr_register.storage import is_postgres_url
    from pcr_register.validation import SpecError

    try:
        active = faults_mod.from_env()
        variant = variant_mod.parse(args.variant) if args.variant is not None else variant_mod.from_env()
    except (faults_mod.UnknownFault, variant_mod.UnknownVariant) as exc:
        _die(str(exc))
    _check_data_dir(args.data)
    if not 0 <= args.port <= 65535:
        _die(f"port {args.port} out of range")
    try:
        specs_dir = default_specs_dir()
    except SpecsNotFound as exc:
        _die(str(exc))
    if not specs_dir.is_dir():
        _die(f"specs dir {specs_dir} does not exist (set PCR_SPECS_DIR)")
    config = Config(
        data_dir=args.data.resolve(),
        db=args.db if args.db and is_postgres_url(args.db) else str(Path(args.db or args.data / "register.sqlite3")
                                                                     .resolve()),
        specs_dir=specs_dir,
        faults=active,
        validate_responses=os.environ.get("PCR_REGISTER_VALIDATE_RESPONSES") == "1",
        variant=variant,
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        reg = open_register(config)
        check_specs(reg.specs)
    except (SpecError, OSError, ValueError, KeyError) as exc:
        _die(f"cannot start: {exc}")
    try:
        serve(reg, args.host, args.port)
    except OSError as exc:
        _die(f"cannot listen on {args.host}:{args.port}: {exc}")
    except KeyboardInterrupt:
        pass
    return 0


def _init_module():  # noqa: ANN202 - the module of the other part
    try:
        from pcr_register import init
    except ImportError as exc:
        _die(f"the init module is not available: {exc}")
    return init


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "faults":
        try:
            print(json.dumps(faults_mod.as_list(), indent=2), flush=True)
        except BrokenPipeError:  # `pcr-register faults | head`: the reader left; that is not an error
            sys.stdout = None  # type: ignore[assignment]  # no second flush at interpreter exit
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "fork-server":
        from pcr_register import forkserver

        try:
            return forkserver.serve_forks(args.socket, main)
        except forkserver.ForkServerError as exc:
            _die(str(exc))
    if args.command == "init":
        if args.persons < 1:
            _die("--persons must be at least 1")
        _init_module().init_data_dir(args.dir, args.persons, args.seed)
        return 0
    if args.command == "export-pool":
        _check_data_dir(args.data)
        _init_module().export_pool(args.data, args.output)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
