"""SQLite storage: one file, WAL, every write in one transaction.

A batch's body is stored (and committed) before the 202 is sent, and its processing result is written in
the same transaction as the loan changes, so a kill -9 at any moment loses no acknowledged batch and never
applies a batch twice (BAT-011).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches(
  id INTEGER PRIMARY KEY,
  owner TEXT NOT NULL,
  reference TEXT NOT NULL,
  operation TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  body TEXT NOT NULL,
  owner_json TEXT NOT NULL,
  report_count INTEGER NOT NULL,
  received_utc TEXT NOT NULL,
  status TEXT NOT NULL,
  accepted INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0,
  finished_utc TEXT,
  UNIQUE(owner, reference)
);
CREATE INDEX IF NOT EXISTS batches_pending ON batches(status, id);
CREATE TABLE IF NOT EXISTS batch_results(
  batch_id INTEGER PRIMARY KEY,
  results TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS loans(
  id INTEGER PRIMARY KEY,
  loan_key TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  owner_json TEXT NOT NULL,
  status TEXT NOT NULL,
  loan_type TEXT NOT NULL,
  consumer_act TEXT,
  data TEXT NOT NULL,
  delays TEXT,
  termination TEXT,
  last_repayment TEXT,
  created_utc TEXT NOT NULL,
  last_updated_utc TEXT NOT NULL
);  -- a rowid table: rows of ~1 KB would overflow a WITHOUT ROWID b-tree (4x the disk)
CREATE TABLE IF NOT EXISTS loan_persons(
  id_code TEXT NOT NULL,
  role TEXT NOT NULL,
  loan_key TEXT NOT NULL,
  business_id TEXT
);
CREATE INDEX IF NOT EXISTS loan_persons_id ON loan_persons(id_code);
CREATE INDEX IF NOT EXISTS loan_persons_loan ON loan_persons(loan_key);
CREATE TABLE IF NOT EXISTS repayments(
  id INTEGER PRIMARY KEY,
  loan_key TEXT NOT NULL,
  payment_date TEXT,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS repayments_loan ON repayments(loan_key);
CREATE TABLE IF NOT EXISTS extract_log(
  id INTEGER PRIMARY KEY,
  requester TEXT NOT NULL,
  creation_utc TEXT NOT NULL,
  entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS extract_log_requester ON extract_log(requester, creation_utc);
CREATE TABLE IF NOT EXISTS orders(
  reference TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  scope TEXT NOT NULL,
  status TEXT NOT NULL,
  subject_count INTEGER NOT NULL,
  body TEXT NOT NULL,
  distribution TEXT,
  created_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_pending ON orders(status, created_utc);
CREATE TABLE IF NOT EXISTS persons(
  id_code TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  date_of_death TEXT,
  income TEXT NOT NULL,
  ban TEXT,
  ban_consent INTEGER NOT NULL,
  ban_changed_utc TEXT
) WITHOUT ROWID;
"""


class Storage:
    """Thread-local sqlite3 connections to one database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.conn().executescript(SCHEMA)

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

    # -- population -----------------------------------------------------------------------------------
    def load_population(self, population: dict[str, Any]) -> None:
        rows = [
            (
                p["idCode"],
                p.get("status", "active"),
                p.get("dateOfDeath"),
                json.dumps(p.get("income") or []),
                json.dumps(p["voluntaryBan"]) if p.get("voluntaryBan") else None,
                1 if p.get("banConsent") else 0,
                p.get("banChangedTimeUtc"),
            )
            for p in population.get("persons", [])
        ]
        with self.write() as con:
            con.execute("DELETE FROM persons")
            con.executemany("INSERT OR REPLACE INTO persons VALUES (?,?,?,?,?,?,?)", rows)

    def person(self, id_code: str) -> sqlite3.Row | None:
        return self.conn().execute("SELECT * FROM persons WHERE id_code=?", (id_code,)).fetchone()

    def person_statuses(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn().execute("SELECT id_code, status FROM persons")}
