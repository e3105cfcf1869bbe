"""What differs between the two databases nv-base writes, kept in this one place.

Everything else (the store's statements, the shared migrations) is written once, in the SQL both
speak: `?` placeholders, `INSERT ... ON CONFLICT DO NOTHING`, `ON CONFLICT (...) DO UPDATE SET ...
excluded.x`, partial indexes, row values. What is left differs here:

- placeholders: psycopg wants `%s` (and `%%` for a literal percent sign);
- a write transaction: SQLite's `BEGIN IMMEDIATE` takes the file's write lock at once; PostgreSQL's
  start-up migration takes an advisory lock instead, so two workers starting together migrate once;
- several statements in one transaction: sqlite3's executescript() would commit first, so they are
  split and run one by one; psycopg runs a script as it is;
- errors: what the database raises, which of them mean "this item will not go in" (raised before the
  row is written, the transaction goes on) and which mean "try the whole transaction again";
- the map: an R*Tree (SQLite) or a PostGIS point (PostgreSQL) where there is one, lat/lon ranges otherwise.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import NamedTuple

MIGRATION_LOCK = 0x6E76_0001  # pg_advisory_xact_lock key: "nv", the schema


class SQLite:
    name = "sqlite"
    spatial = False  # set by the store once the migrations ran: is there an R*Tree of places and times?
    errors: tuple = (sqlite3.DatabaseError,)
    item_errors: tuple = (ValueError, TypeError, KeyError, OverflowError)
    transient: tuple = ()

    def sql(self, text: str) -> str:
        return text

    def begin(self, db) -> None:
        db.execute("BEGIN IMMEDIATE")

    def begin_migration(self, db) -> None:
        db.execute("BEGIN IMMEDIATE")

    def script(self, db, text: str) -> None:
        statement = ""
        for line in text.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                db.execute(statement)
                statement = ""
        if statement.strip():
            db.execute(statement)  # the last statement needs no semicolon

    def in_transaction(self, db) -> bool:
        return db.in_transaction

    def aborted(self, db) -> bool:
        return False  # SQLite goes on after a failed statement

    def rows(self, db, sql: str, args: tuple) -> list:
        cur = db.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, args).fetchall()

    def columns(self, db, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    def box(self, west: float, south: float, east: float, north: float, window: Window, limit: int) -> tuple[str, tuple]:
        """The condition for the rows inside the box and the capture-time window."""
        if not self.spatial:
            return _plain_box(west, south, east, north, window)
        # The R*Tree holds 32-bit floats rounded outwards, so "its box meets ours" finds every point
        # inside; the exact values (auxiliary columns) decide, and the page is cut inside the R*Tree.
        exact, args = _plain_box(west, south, east, north, window)
        return (f"id IN (SELECT detection FROM detections_place WHERE lat1 >= ? AND lat0 <= ? AND lon1 >= ? "
                f"AND lon0 <= ? AND t1 >= ? AND t0 <= ? AND {exact} ORDER BY time DESC, detection DESC LIMIT ?)",
                (south, north, west, east, rtree_time(window.since_unix - 1), rtree_time(window.until_unix + 1),
                 *args, limit))


class PostgreSQL:
    name = "postgresql"

    def __init__(self, spatial: bool = False):
        import psycopg
        from psycopg import errors

        self.spatial = spatial  # set by the store once the migrations ran: is there a PostGIS point column?
        self.errors = (psycopg.Error,)
        # psycopg refuses a lone surrogate (UnicodeEncodeError) or a NUL in text (DataError) before
        # sending anything; should the server refuse a value, the transaction is aborted and the store
        # starts it again without that item (aborted()).
        self.item_errors = (ValueError, TypeError, KeyError, OverflowError, psycopg.DataError)
        self.transient = (errors.DeadlockDetected, errors.SerializationFailure)

    def sql(self, text: str) -> str:
        return _percent(text)

    def begin(self, db) -> None:
        db.execute("BEGIN")

    def begin_migration(self, db) -> None:
        db.execute("BEGIN")
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def script(self, db, text: str) -> None:
        db.execute(text)

    def in_transaction(self, db) -> bool:
        from psycopg.pq import TransactionStatus

        return db.info.transaction_status != TransactionStatus.IDLE

    def aborted(self, db) -> bool:
        from psycopg.pq import TransactionStatus

        return db.info.transaction_status == TransactionStatus.INERROR

    def rows(self, db, sql: str, args: tuple) -> list:
        from psycopg.rows import dict_row

        with db.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, args).fetchall()

    def columns(self, db, table: str) -> set[str]:
        cur = db.execute("SELECT column_name FROM information_schema.columns "
                         "WHERE table_schema = current_schema() AND table_name = %s", (table,))
        return {row[0] for row in cur}

    def box(self, west: float, south: float, east: float, north: float, window: Window, limit: int) -> tuple[str, tuple]:
        if not self.spatial:
            return _plain_box(west, south, east, north, window)
        # && is "bounding boxes meet": for a point, inside the box or on its edge; GiST-indexed.
        time, args = _time_window(window)
        return "geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)" + time, (west, south, east, north, *args)


class Window(NamedTuple):
    """A capture-time window of the map, [since, until), as the text the time column holds and as
    unix times; None and ±infinity where it is open."""

    since: str | None
    until: str | None
    since_unix: float
    until_unix: float


def _plain_box(west: float, south: float, east: float, north: float, window: Window) -> tuple[str, tuple]:
    time, args = _time_window(window)
    return "lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?" + time, (south, north, west, east, *args)


def _time_window(window: Window) -> tuple[str, tuple]:
    sql, args = "", ()
    if window.since is not None:
        sql, args = sql + " AND time >= ?", (*args, window.since)
    if window.until is not None:
        sql, args = sql + " AND time < ?", (*args, window.until)
    return sql, args


def rtree_time(unix: float) -> float:
    """A unix time in the R*Tree's unit: tens of days from 2023-02-25 (migrations/m0003_map.py says why)."""
    return (unix / 86400 + 2440587.5 - 2460000.5) / 10


@lru_cache(maxsize=256)
def _percent(text: str) -> str:
    return text.replace("%", "%%").replace("?", "%s")
