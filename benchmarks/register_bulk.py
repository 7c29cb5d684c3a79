"""Bulk population of a register database for benchmarks/register.py: N loans written straight into the
register's tables (loans + loan_persons), in the rows the register itself writes, while no register runs.

PostgreSQL: COPY, in one transaction. SQLite: executemany in one transaction (a rollback journal and
synchronous=OFF for the load only: a crashed load is thrown away; the file is left in WAL, as the register
keeps it). The schema is the register's own
(pcr_register.storage.open_storage applies its migrations first).

Borrowers are artificial identity codes (individual numbers 900-999) spread over birth dates from 1900 on,
`loans_per_person` loans each, so that a person's extract stays a realistic handful of loans at any size.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from pcr_register.storage import is_postgres_url, open_storage

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CHUNK = 20_000
LOAN_COLUMNS = ("loan_key, owner, owner_json, status, loan_type, consumer_act, data, delays, termination, "
                "last_repayment, created_utc, last_updated_utc")


def artificial_hetu(n: int, exclude: frozenset[str] = frozenset()) -> str:
    """The n-th artificial personal identity code: birth 1900-01-01 + n // 100 days, individual 900 + n % 100;
    a code in `exclude` (the population's: the measured persons must keep their own loans only) takes the
    next century sign of the same century (-YXWVU for the 1900s, ABCDEF for the 2000s: valid since 2023), a
    distinct code of the same birth date and individual number."""
    birth = date(1900, 1, 1) + timedelta(days=n // 100)
    individual = 900 + n % 100
    digits = f"{birth:%d%m%y}{individual:03d}"
    for sign in "-YXWVU" if birth.year < 2000 else "ABCDEF":
        code = f"{birth:%d%m%y}{sign}{individual:03d}{_CHECK[int(digits) % 31]}"
        if code not in exclude:
            return code
    raise ValueError(f"no artificial code for {n}: every century sign is in the population")


def loan_report(n: int, borrower: str, prefix: str) -> dict[str, Any]:
    """A valid AddLoans lump-sum loan report, as benchmarks/register.py's Loans.report makes them."""
    contract = date(2020, 1, 1) + timedelta(days=n % 2000)
    issued = 1000 + (n * 37) % 30000
    return {
        "reportReference": f"R-{n}", "reportType": "NewReport",
        "loanNumber": {"type": "Other", "number": f"{prefix}-{n:09d}"},
        "isPeerToPeerLoanBroker": False, "lenderMarketingName": "Demo Bank Kulutusluotto",
        "contractDate": contract.isoformat(), "currencyCode": "EUR", "oneTimeServiceFees": 0,
        "loanType": "LumpSumLoan", "isTransferredFromAnotherLender": False, "borrowersCount": 1,
        "borrowers": [{"idCodeType": "PersonalIdentityCode", "idCode": borrower}],
        "consumerCredit": {"loanConsumerProtectionAct": "ConsumerCredit", "isGoodsOrServicesRelatedCredit": False},
        "interest": {"totalInterestRatePct": 5.25, "marginPct": 2.5, "interestType": "Euribor",
                     "interestDeterminationPeriod": 12},
        "isLoanWithCollateral": False,
        "lumpSumLoan": {"amountIssued": issued, "amountPaid": issued, "balance": round(issued * 0.8, 2),
                        "amortizationFrequency": 1, "purposeOfUse": "OtherConsumerCredit",
                        "repaymentMethod": "Annuities"},
    }


def _borrower(n: int, loans_per_person: int, borrowers: list[str] | None, exclude: frozenset[str]) -> str:
    return borrowers[n % len(borrowers)] if borrowers else artificial_hetu(n // loans_per_person, exclude)


def loan_rows(start: int, count: int, owner: str, owner_json: str, prefix: str, loans_per_person: int,
              borrowers: list[str] | None = None, exclude: frozenset[str] = frozenset()) -> Iterator[tuple[Any, ...]]:
    """The loans rows of loans start .. start+count-1 (borrowers: these codes in turn, else artificial ones)."""
    now = "2026-01-01T00:00:00Z"
    for n in range(start, start + count):
        report = loan_report(n, _borrower(n, loans_per_person, borrowers, exclude), prefix)
        yield (f"Other:{report['loanNumber']['number']}", owner, owner_json, "Active", "LumpSumLoan",
               "ConsumerCredit", json.dumps(report, ensure_ascii=False), None, None, None, now, now)


def person_rows(start: int, count: int, prefix: str, loans_per_person: int,
                borrowers: list[str] | None = None, exclude: frozenset[str] = frozenset()) -> Iterator[tuple[Any, ...]]:
    """The loan_persons rows (the borrower) of the same loans."""
    for n in range(start, start + count):
        yield (_borrower(n, loans_per_person, borrowers, exclude), "B", f"Other:{prefix}-{n:09d}", None)


def load(db: str | Path, count: int, *, start: int = 0, owner: str = "lender-a", owner_json: str = "{}",
         prefix: str = "BULK", loans_per_person: int = 3, borrowers: list[str] | None = None,
         exclude: frozenset[str] = frozenset()) -> float:
    """Write `count` loans; returns the seconds taken. Artificial borrowers avoid the codes in `exclude`."""
    storage = open_storage(db)  # the register's schema (migrations)
    if storage.backend == "sqlite":
        storage.conn().close()  # the load switches the journal mode, which needs the only connection
    began = time.perf_counter()
    loans = loan_rows(start, count, owner, owner_json, prefix, loans_per_person, borrowers, exclude)
    persons = person_rows(start, count, prefix, loans_per_person, borrowers, exclude)
    if is_postgres_url(str(db)):
        with psycopg.connect(str(db)) as con, con.cursor() as cur:  # one transaction
            with cur.copy(f"COPY loans({LOAN_COLUMNS}) FROM STDIN") as copy:
                for row in loans:
                    copy.write_row(row)
            with cur.copy("COPY loan_persons(id_code, role, loan_key, business_id) FROM STDIN") as copy:
                for row in persons:
                    copy.write_row(row)
        with psycopg.connect(str(db), autocommit=True) as con:
            con.execute("VACUUM ANALYZE loans")
            con.execute("VACUUM ANALYZE loan_persons")
    else:
        con = sqlite3.connect(str(db), isolation_level=None)
        try:
            # A rollback journal for the load: one transaction in WAL would first write the whole load to the WAL
            # (twice the disk at 12.5 M loans); new pages need next to no journal.
            con.execute("PRAGMA journal_mode=DELETE")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("PRAGMA cache_size=-1000000")
            con.execute("BEGIN")
            while True:
                chunk = list(itertools.islice(loans, CHUNK))
                if not chunk:
                    break
                con.executemany(f"INSERT INTO loans({LOAN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", chunk)
                con.executemany("INSERT INTO loan_persons(id_code, role, loan_key, business_id) VALUES (?,?,?,?)",
                                list(itertools.islice(persons, len(chunk))))
            con.execute("COMMIT")
            con.execute("ANALYZE")
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
    return time.perf_counter() - began


def database_bytes(db: str | Path) -> int:
    """The database's size on disk: pg_database_size, or the SQLite file with its -wal and -shm."""
    if is_postgres_url(str(db)):
        with psycopg.connect(str(db)) as con:
            return int(con.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    path = Path(db)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
