"""The register's storage on both backends: schema migrations, the URL that picks the backend, and several
register processes behind one PostgreSQL database (a shared sandbox) processing each batch once, in order."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from register_fixtures import Api, database, lump_sum_loan, people, start_register, unique, wait_batch

from pcr_register import schema
from pcr_register.storage import is_postgres_url, open_storage
from pcr_register.storage_pg import BATCH_LOCK, DatabaseUnavailable, redacted, translate

WHO = people()
TABLES = {"batches", "batch_results", "loans", "loan_persons", "repayments", "extract_log", "orders", "persons"}


def _tables(db: Path | str) -> set[str]:
    con = open_storage(db).conn()
    if is_postgres_url(str(db)):
        rows = con.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()
    else:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {r[0] for r in rows}


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.number for m in schema.MIGRATIONS] == list(range(1, len(schema.MIGRATIONS) + 1))
    for m in schema.MIGRATIONS:
        assert m.description and schema.statements(m.sqlite) and schema.statements(m.postgresql)
        assert len(schema.statements(m.sqlite)) == len(schema.statements(m.postgresql)), m.number


def test_open_migrates_once_and_again_is_a_no_op(backend: str, request: pytest.FixtureRequest,
                                                 tmp_path: Path) -> None:
    db = database(backend, request, tmp_path)
    first = open_storage(db)
    assert first.backend == backend
    assert first.schema_version() == schema.MIGRATIONS[-1].number
    assert TABLES | {"schema_version"} <= _tables(db)
    with first.write() as con:
        con.execute("INSERT INTO orders(reference, owner, scope, status, subject_count, body, created_utc) "
                    "VALUES ('o1', 'x', 'full', 'Processing', 1, '{}', '2026-01-01T00:00:00Z')")
    second = open_storage(db)  # a restart: nothing applied twice, nothing lost
    rows = second.conn().execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.number for m in schema.MIGRATIONS]
    assert second.conn().execute("SELECT count(*) FROM orders").fetchone()[0] == 1


def test_a_database_of_the_register_before_migrations_is_taken_over(tmp_path: Path) -> None:
    """An SQLite file made by the register before schema_version existed (its tables, no version table)."""
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as con:
        for statement in schema.statements(schema.MIGRATIONS[0].sqlite):
            con.execute(statement)
        con.execute("INSERT INTO extract_log(requester, creation_utc, entry) VALUES ('a', 't', '{}')")
    storage = open_storage(db)
    assert storage.schema_version() == schema.MIGRATIONS[-1].number
    assert storage.conn().execute("SELECT count(*) FROM extract_log").fetchone()[0] == 1


def test_a_database_of_a_newer_register_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite3"
    open_storage(db).conn().execute("INSERT INTO schema_version VALUES (999, 'from the future', 't')")
    with pytest.raises(schema.SchemaTooNew, match="schema version 999"):
        open_storage(db)


def test_the_url_picks_the_backend_and_errors_name_the_fix(tmp_path: Path) -> None:
    assert is_postgres_url("postgresql://u@h/db") and is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url(str(tmp_path / "postgresql.sqlite3")) and not is_postgres_url("postgresql")
    assert redacted("postgresql://pcr:secret@db.example:5432/reg") == "postgresql://pcr:***@db.example:5432/reg"
    assert translate("SELECT 1 WHERE a=? AND b LIKE '5%'") == "SELECT 1 WHERE a=%s AND b LIKE '5%%'"
    with pytest.raises(DatabaseUnavailable, match=r"cannot connect to PostgreSQL .*check the host, port"):
        open_storage("postgresql://pcr:secret@127.0.0.1:1/none")  # port 1: nothing listens there


def test_serve_with_an_unreachable_postgres_exits_2_naming_the_url(data_dir: Path) -> None:
    with pytest.raises(RuntimeError, match=r"cannot connect to PostgreSQL") as info:
        start_register(data_dir, db="postgresql://pcr:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value)


def test_two_registers_on_one_database_process_each_batch_once_in_arrival_order(
        data_dir: Path, postgres: object, request: pytest.FixtureRequest) -> None:
    url = database("postgresql", request, data_dir)
    first, second = start_register(data_dir, db=url), start_register(data_dir, db=url)
    apis = [Api(first, "lender-a"), Api(second, "lender-a")]
    try:
        # While something else holds the batch lock, neither register processes anything (the lock is what
        # elects the processor), and both answer reads meanwhile.
        with psycopg.connect(str(url), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (BATCH_LOCK,))
            loans = [lump_sum_loan(unique("MP"), WHO.active[i], unique("R")) for i in range(10)]
            added = apis[0].submit("AddLoans", "loans", loans)
            time.sleep(1.5)  # three worker rounds of each register
            status = apis[1].post("GetBatchStatus", apis[1].envelope(batchReference=added)).json()
            assert status["batchStatus"] == "Processing"
            # Repayments of those loans, sent to both registers in turn before the AddLoans is applied: each
            # is right only if applied after the AddLoans and the ones before it, and exactly once.
            references = []
            for month in range(1, 7):
                api = apis[month % 2]
                repayments = [{"reportReference": unique("R"), "reportType": "NewReport",
                               "loanNumber": loan["loanNumber"], "loanType": "LumpSumLoan",
                               "reportCreationTimeUtc": "2025-07-02T10:00:00Z",
                               "lumpSumLoanRepayment": {"amortizationPaid": 100.0, "interestPaid": 10.0,
                                                        "otherExpenses": 0.0, "paymentDate": f"2025-0{month}-01",
                                                        "balance": 9000.0 - 100 * month}} for loan in loans]
                references.append((api, api.submit("Repayments", "repayments", repayments)))
            holder.execute("SELECT pg_advisory_unlock(%s)", (BATCH_LOCK,))
        assert wait_batch(apis[0].client("reporting"), apis[0].owner, added)["batchStatus"] == "FinishedSuccess"
        for api, reference in references:
            final = wait_batch(api.client("reporting"), api.owner, reference)
            assert (final["batchStatus"], final["acceptedCount"]) == ("FinishedSuccess", 10), final
        for loan in loans:
            stored = apis[1].get_loan(loan["loanNumber"]).json()["loan"]
            assert [r["paymentDate"] for r in stored["repayments"]] == [f"2025-0{m}-01" for m in range(1, 7)]
            assert stored["lumpSumLoan"]["balance"] == 8400.0
    finally:
        for api in apis:
            api.close()
        first.stop()
        second.stop()


def test_postgres_commits_batches_durably_and_the_extract_log_without_a_disk_wait(
        postgres: object, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """write() (batches, orders: answered 202 only once on disk) turns synchronous_commit on for its
    transaction; write_one (the extract log entry) leaves the connection's off."""
    storage = open_storage(database("postgresql", request, tmp_path))
    with storage.write() as con:
        assert con.execute("SHOW synchronous_commit").fetchone()[0] == "on"
    assert storage.conn().execute("SHOW synchronous_commit").fetchone()[0] == "off"
