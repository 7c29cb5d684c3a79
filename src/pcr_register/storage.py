"""Storage: one interface, two backends chosen by the database given to `serve --db`.

A path (the default DIR/register.sqlite3) is an SQLite file (WAL); a `postgresql://` URL is a PostgreSQL
database (storage_pg.py), which several register processes may share. Every write is one transaction on
both. A batch's body is stored (and committed) before the 202 is sent, and its processing result is written
in the same transaction as the loan changes, so a kill -9 at any moment loses no acknowledged batch and never
applies a batch twice (BAT-011). The schema comes from schema.py's migrations, applied at open.

The SQL of the handlers is written once for both backends: `?` placeholders (storage_pg translates them),
upserts as `INSERT ... ON CONFLICT(...) DO ...`, and `Storage.json_values` for "the values of a JSON array
parameter", the one construct the two dialects spell differently.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from pcr_register import schema
from pcr_register.clock import now_utc

POSTGRES_SCHEMES = ("postgresql", "postgres")


class Storage(Protocol):
    """What the handlers use; SqliteStorage and storage_pg.PostgresStorage both provide it."""

    backend: str  # "sqlite" | "postgresql"
    json_values: str  # SQL: a subquery of the text values of a JSON array given as one `?` parameter

    def conn(self) -> Any: ...  # this thread's connection: execute / executemany, rows by name and index
    def write(self) -> AbstractContextManager[Any]: ...  # one write transaction
    def write_one(self, sql: str, params: tuple[Any, ...]) -> None: ...  # one statement, its own transaction
    def batch_processor(self) -> AbstractContextManager[bool]: ...  # True: this process may process batches now
    def schema_version(self) -> int: ...
    def load_population(self, population: dict[str, Any]) -> None: ...
    def person(self, id_code: str) -> Any: ...
    def person_statuses(self) -> dict[str, str]: ...


def is_postgres_url(db: str) -> bool:
    return db.split("://", 1)[0].lower() in POSTGRES_SCHEMES and "://" in db


def open_storage(db: str | Path) -> Storage:
    """The storage named by `db`: a postgresql:// URL, else the path of an SQLite file. Migrates the schema."""
    text = str(db)
    if is_postgres_url(text):
        # Imported only for a PostgreSQL URL: psycopg adds 0.1-1 s to every start of an SQLite register (the
        # self-test starts one per fault).
        from pcr_register.storage_pg import PostgresStorage

        return PostgresStorage(text)
    return SqliteStorage(Path(text))


class SqliteStorage:
    """Thread-local sqlite3 connections to one database file."""

    backend = "sqlite"
    json_values = "SELECT value FROM json_each(?)"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.migrate()

    def conn(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            # synchronous=NORMAL in WAL survives a process kill -9 (only an OS crash could lose the tail).
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute("PRAGMA cache_size=-65536")
            self._local.con = con
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rollback on error)."""
        con = self.conn()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def write_one(self, sql: str, params: tuple[Any, ...]) -> None:
        """One statement as its own transaction (autocommit: the same as BEGIN IMMEDIATE + it + COMMIT)."""
        self.conn().execute(sql, params)

    @contextmanager
    def batch_processor(self) -> Iterator[bool]:
        # One SQLite file has one register process (a shared sandbox uses PostgreSQL): BEGIN IMMEDIATE and the
        # Processing check in process_batch already keep a batch from being applied twice.
        yield True

    def schema_version(self) -> int:
        row = self.conn().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> None:
        """Apply the pending migrations, each in one transaction with its schema_version row."""
        self.conn().execute(schema.SCHEMA_VERSION_TABLE)
        with self.write() as con:  # BEGIN IMMEDIATE: a second process starting now waits for this one
            current = int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
        for migration in schema.pending(current):
            with self.write() as con:
                if int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0) >= migration.number:
                    continue  # another process applied it meanwhile
                for statement in schema.statements(migration.sqlite):
                    con.execute(statement)
                con.execute("INSERT INTO schema_version(version, description, applied_utc) VALUES (?,?,?)",
                            (migration.number, migration.description, now_utc()))

    # -- population -----------------------------------------------------------------------------------
    def load_population(self, population: dict[str, Any]) -> None:
        with self.write() as con:
            con.execute("DELETE FROM persons")
            con.executemany("INSERT OR REPLACE INTO persons VALUES (?,?,?,?,?,?,?)", schema.person_rows(population))

    def person(self, id_code: str) -> sqlite3.Row | None:
        return self.conn().execute("SELECT * FROM persons WHERE id_code=?", (id_code,)).fetchone()

    def person_statuses(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn().execute("SELECT id_code, status FROM persons")}


__all__ = ["POSTGRES_SCHEMES", "SqliteStorage", "Storage", "is_postgres_url", "open_storage"]
