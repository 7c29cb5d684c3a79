"""The PostgreSQL backend of storage.py: `pcr-register serve --db postgresql://USER@HOST:PORT/DB`.

Several register processes may share one database (a sandbox for many lenders): each serves requests on
its own connections, and batches are processed by one process at a time, in arrival order, the one holding a
session-level advisory lock (`batch_processor`); the lock goes with its connection, so a process killed with
kill -9 hands it on. Arrival order across processes is why a batch is not claimed row by row: two batches
touching the same loan must be applied one after the other (BAT-011). Every write is one transaction; a
batch acknowledged with 202 is on disk (`write` commits with synchronous_commit=on), the extract log entry
is committed without waiting for the disk (`write_one`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from pcr_register import schema
from pcr_register.clock import now_utc

CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000  # the largest batch (10 000 reports) is applied in well under this
# Advisory lock keys (any two distinct 64-bit numbers; "pcr" in ASCII, then 1 and 2).
MIGRATION_LOCK = 0x706372_0001
BATCH_LOCK = 0x706372_0002


class DatabaseUnavailable(ConnectionError):
    """The PostgreSQL server of --db cannot be reached or refuses the connection."""


def redacted(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class Row:
    """A result row by column name or by index, as sqlite3.Row (the handlers use both)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


_TRANSLATED: dict[str, str] = {}


def translate(sql: str) -> str:
    """The handlers' SQLite-style `?` placeholders as psycopg's `%s` (a literal % doubled)."""
    out = _TRANSLATED.get(sql)
    if out is None:
        out = _TRANSLATED[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


class Connection:
    """A psycopg connection (autocommit; `write` opens the transactions) that speaks the handlers' SQL."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(translate(sql), tuple(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(translate(sql), rows)


class PostgresStorage:
    """Thread-local connections to one PostgreSQL database."""

    backend = "postgresql"
    json_values = "SELECT json_array_elements_text(?::json)"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self.migrate()

    def connect(self) -> psycopg.Connection[Any]:
        try:
            # synchronous_commit=off outside write(): write_one's extract log entry does not wait for the
            # disk (write() turns it on again for its transaction, see there).
            return psycopg.connect(self.url, autocommit=True, row_factory=_row_factory,  # type: ignore[arg-type]
                                   connect_timeout=CONNECT_TIMEOUT_S,
                                   options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c synchronous_commit=off")
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise DatabaseUnavailable(
                f"--db {redacted(self.url)}: cannot connect to PostgreSQL ({reason}); check the host, "
                "port, user and database of the URL, and that the server runs") from exc

    def conn(self) -> Connection:
        con: Connection | None = getattr(self._local, "con", None)
        if con is None or con.raw.closed or con.raw.broken:  # reconnect after a server restart
            con = self._local.con = Connection(self.connect())
        return con

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction (COMMIT at the end, ROLLBACK on error) whose COMMIT waits until the WAL is on
        disk (synchronous_commit=on): a batch or an order answered 202 survives a crash of the register, of
        the server and of the machine (BAT-011, AUT-002)."""
        con = self.conn()
        with con.raw.transaction():
            con.raw.execute("SET LOCAL synchronous_commit = on")
            yield con

    def write_one(self, sql: str, params: tuple[Any, ...]) -> None:
        """One statement as its own transaction, in one round trip and without waiting for the disk
        (synchronous_commit=off): used for the extract log entry, on the latency path of every extract
        (EXT-015). The entry survives a kill of the register (the server has it); only a crash of the
        server or the machine within about 0.6 s (3 x wal_writer_delay) could lose it, as an OS crash could
        lose SQLite's last commits in WAL with synchronous=NORMAL. Measured: extract p50 7.6-8.0 ms with the
        disk wait, 2.1-3.9 ms without (benchmarks/register.py at 100 000 loans, --pg-setting)."""
        self.conn().execute(sql, params)

    @contextmanager
    def batch_processor(self) -> Iterator[bool]:
        """True while this process holds the batch lock (try, never wait: the holder processes everything)."""
        con = self.conn()
        got = bool(con.execute("SELECT pg_try_advisory_lock(?)", (BATCH_LOCK,)).fetchone()[0])
        try:
            yield got
        finally:
            if got and not con.raw.closed:
                con.execute("SELECT pg_advisory_unlock(?)", (BATCH_LOCK,))

    def schema_version(self) -> int:
        row = self.conn().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> None:
        """Apply the pending migrations, each in one transaction with its schema_version row, under a lock
        so that register processes starting together apply each once."""
        with self.write() as con:
            con.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            con.execute(schema.SCHEMA_VERSION_TABLE)
        while True:
            with self.write() as con:
                con.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                current = int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
                todo = schema.pending(current)
                if not todo:
                    return
                migration = todo[0]
                for statement in schema.statements(migration.postgresql):
                    con.execute(statement)
                con.execute("INSERT INTO schema_version(version, description, applied_utc) VALUES (?,?,?)",
                            (migration.number, migration.description, now_utc()))

    # -- population -----------------------------------------------------------------------------------
    def load_population(self, population: dict[str, Any]) -> None:
        """Replace the persons in one transaction (readers see the old ones until the commit); under the
        migration lock, so processes starting together do not interleave their copies."""
        rows = schema.person_rows(population)
        with self.write() as con:
            con.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            con.execute("DELETE FROM persons")
            with con.raw.cursor() as cur, cur.copy(
                    "COPY persons(id_code, status, date_of_death, income, ban, ban_consent, ban_changed_utc)"
                    " FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def person(self, id_code: str) -> Row | None:
        return self.conn().execute("SELECT * FROM persons WHERE id_code=?", (id_code,)).fetchone()

    def person_statuses(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn().execute("SELECT id_code, status FROM persons")}


__all__ = ["BATCH_LOCK", "Connection", "DatabaseUnavailable", "PostgresStorage", "Row",
           "redacted", "translate"]
