"""A throwaway PostgreSQL server for the tests and the benchmark: the real server binaries (Debian's
`postgresql` package: /usr/lib/postgresql/N/bin), a fresh cluster in a temporary folder, a free port on
127.0.0.1, trust authentication for one user, stopped and removed by `stop()`.

initdb and postgres refuse to run as root: as root the cluster belongs to the `postgres` user (created by
the Debian package) and every server command runs through `runuser -u postgres`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN_ENV = "PCR_PG_BIN"  # a folder holding initdb and pg_ctl, to use instead of the newest /usr/lib/postgresql/*/bin
USER = "pcr"  # the cluster's superuser (trust authentication on 127.0.0.1 only)
RUN_AS_ROOT_USER = "postgres"
START_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 120


class PgServerError(RuntimeError):
    """The server could not be found, initialised, started or stopped; the text says why and what to do."""


def find_bin_dir() -> Path:
    """$PCR_PG_BIN, else the newest /usr/lib/postgresql/*/bin with initdb, else the folder of initdb on PATH."""
    env = os.environ.get(BIN_ENV)
    candidates = [Path(env)] if env else sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("initdb")
    if not env and on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PgServerError(f"no PostgreSQL server binaries (initdb, pg_ctl) in {env or '/usr/lib/postgresql/*/bin'} "
                        "nor on PATH: install the server (Debian: apt-get install -y postgresql) or set "
                        f"{BIN_ENV} to the folder that holds initdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The user that runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS_ROOT_USER)
    except KeyError:
        raise PgServerError(f"running as root, and initdb refuses root: no user {RUN_AS_ROOT_USER!r} to run the "
                            "server as (the Debian package postgresql creates it)") from None
    return RUN_AS_ROOT_USER


@dataclass(frozen=True)
class PgServer:
    bin_dir: Path
    folder: Path  # the temporary folder: data/ (the cluster) and server.log
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"pcr_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        try:
            _command(self, ["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _command(server: PgServer, argv: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [str(server.bin_dir / argv[0]), *argv[1:]]
    if server.run_as:
        cmd = ["runuser", "-u", server.run_as, "--", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=server.folder)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PgServerError(f"{argv[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        log = server.folder / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        raise PgServerError(f"{' '.join(argv[:2])} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
                            + (f"\nserver.log:\n{tail}" if tail else ""))
    return proc


def start(*, durable: bool = False, settings: dict[str, str] | None = None, attempts: int = 3) -> PgServer:
    """initdb + pg_ctl start in a new temporary folder on a free port. `durable=False` (tests) turns fsync off:
    a killed register process loses nothing either way (the server keeps what it committed), only an OS crash
    would. The benchmark starts it durable. A port taken between choosing and binding it: another try."""
    for attempt in range(attempts):
        try:
            return _start_once(durable, settings or {})
        except PgServerError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_once(durable: bool, settings: dict[str, str]) -> PgServer:
    bin_dir = find_bin_dir()
    run_as = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="pcr-pg-"))
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = PgServer(bin_dir=bin_dir, folder=folder, port=_free_port(), run_as=run_as)
    options = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(folder), "max_connections": "200",
               **({} if durable else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
               **settings}
    try:
        _command(server, ["initdb", "-D", str(server.data_dir), "-U", USER, "--auth=trust", "--encoding=UTF8",
                          "--locale=C", "--no-sync"])
        flags = " ".join([f"-p {server.port}", *(f"-c {k}={v}" for k, v in options.items())])
        _command(server, ["pg_ctl", "start", "-D", str(server.data_dir), "-l", str(folder / "server.log"),
                          "-w", "-t", str(START_TIMEOUT_S), "-o", flags])
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


__all__ = ["BIN_ENV", "PgServer", "PgServerError", "find_bin_dir", "start"]
