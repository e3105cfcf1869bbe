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
- the map: an R*Tree (SQLite) or a PostGIS point and envelope (PostgreSQL) where there is one, lat/lon
  ranges otherwise. A point is in the box when its lat/lon is; a drone scan's area when its bounding box
  (south/north/west/east, migrations/m0009_area_bounds.py) meets the box.
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

    def box(self, west: float, south: float, east: float, north: float, window: Window, limit: int,
            match: Match | None = None) -> tuple[str, tuple]:
        """The condition for the rows inside the box and the capture-time window that `match` too."""
        match = match or Match()
        if not self.spatial:
            return _plain_box(west, south, east, north, window, match)
        # The R*Tree holds a point's place, or an area's bounding box, as 32-bit floats rounded outwards,
        # so "its box meets ours" finds every row inside; the exact values decide: a point's lat/lon ride
        # along in the tree (auxiliary columns), an area's bounds are read from its row (the few areas
        # whose box meets ours but whose centroid lies outside it). The filters on other columns are
        # looked up by id the same way, so that the page is cut inside the R*Tree.
        time, time_args = _time_window(window)
        area = "EXISTS (SELECT 1 FROM detections a WHERE a.id = detection AND " + _overlap("a.") + ")"
        also, also_args = match.condition("f.")
        rows = "" if not also else f" AND EXISTS (SELECT 1 FROM detections f WHERE f.id = detection AND {also})"
        return (f"id IN (SELECT detection FROM detections_place WHERE lat1 >= ? AND lat0 <= ? AND lon1 >= ? "
                f"AND lon0 <= ? AND t1 >= ? AND t0 <= ? AND (lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? OR {area})"
                f"{time}{rows} ORDER BY time DESC, detection DESC LIMIT ?)",
                (south, north, west, east, rtree_time(window.since_unix - 1), rtree_time(window.until_unix + 1),
                 south, north, west, east, north, south, east, west, *time_args, *also_args, limit))


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

    def box(self, west: float, south: float, east: float, north: float, window: Window, limit: int,
            match: Match | None = None) -> tuple[str, tuple]:
        match = match or Match()
        if not self.spatial:
            return _plain_box(west, south, east, north, window, match)
        # && is "bounding boxes meet", GiST-indexed: for a point, inside the box or on its edge; an area's
        # envelope has an index of its own (migration 9), the exact bounds decide.
        time, args = _time_window(window)
        also, also_args = match.condition("")
        envelope = "ST_MakeEnvelope(?, ?, ?, ?, 4326)"
        return (f"(geom && {envelope} OR south IS NOT NULL AND ST_MakeEnvelope(west, south, east, north, 4326) && "
                f"{envelope} AND {_overlap('')})" + time + (f" AND {also}" if also else ""),
                (west, south, east, north, west, south, east, north, north, south, east, west, *args, *also_args))


class Window(NamedTuple):
    """A capture-time window of the map, [since, until), as the text the time column holds and as
    unix times; None and ±infinity where it is open."""

    since: str | None
    until: str | None
    since_unix: float
    until_unix: float


class Match(NamedTuple):
    """What else the map's rows must be: of this unit, of this label, alerts only (None: any)."""

    device: str | None = None
    label: str | None = None
    alert: bool | None = None

    def condition(self, prefix: str) -> tuple[str, tuple]:
        """SQL over the detections table (its columns as `prefix`column) and its arguments; "" for any row."""
        sql, args = [], []
        for column, value in (("device", self.device), ("label", self.label)):
            if value is not None:
                sql.append(f"{prefix}{column} = ?")
                args.append(value)
        if self.alert is not None:
            sql.append(f"{prefix}alert = {int(self.alert)}")  # a literal: the partial alert index may serve
        return " AND ".join(sql), tuple(args)


def _overlap(prefix: str) -> str:
    """An area's bounds meet the box: its arguments are north, south, east, west of the box."""
    p = prefix
    return f"{p}south <= ? AND {p}north >= ? AND {p}west <= ? AND {p}east >= ?"


def _plain_box(west: float, south: float, east: float, north: float, window: Window, match: Match) -> tuple[str, tuple]:
    time, args = _time_window(window)
    also, also_args = match.condition("")
    return (f"(lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? OR south IS NOT NULL AND {_overlap('')})" + time
            + (f" AND {also}" if also else ""),
            (south, north, west, east, north, south, east, west, *args, *also_args))


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
