"""The base station's store as it was before migrations (commit 3638785, basestation/store.py, unchanged
below this note): tests/basestation/test_migrate.py makes a database with it and upgrades that in place.
Keep it as it is: it stands for the databases in the field."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from basestation.payloads import Accepted, DeadLetter

SCHEMA = """
CREATE TABLE IF NOT EXISTS detections (
    id        TEXT PRIMARY KEY,      -- UUIDv7 from the unit: a redelivery is ignored
    device    TEXT NOT NULL,
    time      TEXT NOT NULL,         -- capture time (UTC, ISO 8601)
    received  REAL NOT NULL,         -- unix time it was first stored here
    kind      TEXT NOT NULL,
    source    TEXT NOT NULL,
    label     TEXT,
    score     REAL,
    alert     INTEGER,
    lat       REAL,
    lon       REAL,
    alt       REAL,
    queued_s  REAL,                  -- time it waited in the unit's outbox (late delivery)
    error     TEXT,
    record    TEXT NOT NULL          -- the record as received, JSON
);
CREATE INDEX IF NOT EXISTS detections_received ON detections (received);
CREATE TABLE IF NOT EXISTS thumbnails (
    id        TEXT PRIMARY KEY,      -- the detection's id
    device    TEXT NOT NULL,
    received  REAL NOT NULL,
    jpeg      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    state        TEXT,               -- online / offline / stopped
    state_time   TEXT,
    health       TEXT,               -- the latest heartbeat, JSON
    health_time  TEXT,
    last_seen    REAL NOT NULL       -- unix time we last heard from or about it
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    received  REAL NOT NULL,         -- unix time
    topic     TEXT NOT NULL,
    cause     TEXT NOT NULL,         -- size, depth, json, number, schema, ... (docs/mqtt.md)
    reason    TEXT NOT NULL,
    retained  INTEGER NOT NULL,      -- 1: it came as a retained message (the broker may still hold it)
    size      INTEGER NOT NULL,      -- payload bytes
    prefix    BLOB NOT NULL          -- the payload's first bytes
);
"""
MAX_DEAD_LETTERS = 10_000  # rows kept; each is at most ~3 KB (payloads.DEAD_LETTER_PREFIX, MAX_TEXT)


class StoreError(Exception):
    """The database cannot be used; the message names the file."""


@dataclass
class Saved:
    """What one `save()` committed: counts, and the ids to confirm to each unit."""

    stored: int = 0
    duplicates: int = 0
    receipts: dict[str, tuple[list[str], list[str]]] = field(default_factory=lambda: defaultdict(lambda: ([], [])))
    unstorable: list[tuple[int, str]] = field(default_factory=list)  # (index in the batch, why): not stored


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the base-station database: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def save(self, batch: list[Accepted], dead: Sequence[DeadLetter] = ()) -> Saved:
        """Store `batch` and keep `dead` in one transaction. An item whose values the database will
        not take (a lone surrogate in a string, say) is left out and named in `unstorable`; the
        caller keeps it as a dead letter. Raises StoreError when the database itself fails."""
        saved = Saved()
        now = time.time()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for index, item in enumerate(batch):
                try:
                    self._item(item, now, saved)
                except (ValueError, TypeError, KeyError, OverflowError) as exc:  # raised before the row is written
                    saved.unstorable.append((index, f"{type(exc).__name__}: {exc}"))
            counts = Counter({"stored": saved.stored, "duplicates": saved.duplicates, "rejected": len(dead)})
            counts.update(f"rejected.{letter.cause}" for letter in dead)
            for letter in dead:
                self.db.execute("INSERT INTO dead_letters (received, topic, cause, reason, retained, size, prefix) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (now, letter.topic, letter.cause, letter.reason, int(letter.retained), letter.size, letter.prefix))
            if dead:
                self.db.execute("DELETE FROM dead_letters WHERE seq <= (SELECT max(seq) FROM dead_letters) - ?",
                                (MAX_DEAD_LETTERS,))
            for name, n in counts.items():
                if n:
                    self.db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                                    (name, n, n))
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: cannot store {len(batch) + len(dead)} message(s): {exc}; check free space") from None
        return saved

    def _item(self, item: Accepted, now: float, saved: Saved) -> None:
        if item.kind == "detection":
            self._detection(item, now, saved)
        elif item.kind == "thumbnail":
            cur = self.db.execute("INSERT OR IGNORE INTO thumbnails VALUES (?, ?, ?, ?)",
                                  (item.id, item.device, now, item.value))
            saved.receipts[item.device][1].append(item.id)
            saved.stored += cur.rowcount
            saved.duplicates += 1 - cur.rowcount
        else:
            self._device(item, now)

    def _detection(self, item: Accepted, now: float, saved: Saved) -> None:
        r = item.value
        geo = r.get("geo") or {}
        cur = self.db.execute(
            "INSERT OR IGNORE INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r["id"], r["device"], r["time"], now, r["kind"], r["source"], r.get("label"), r.get("score"),
             None if "alert" not in r else int(r["alert"]), geo.get("lat"), geo.get("lon"), geo.get("alt"),
             r.get("queued_s"), r.get("error"), item.raw or json.dumps(r, separators=(",", ":"))),
        )
        saved.stored += cur.rowcount
        saved.duplicates += 1 - cur.rowcount
        saved.receipts[item.device][0].append(r["id"])

    def _device(self, item: Accepted, now: float) -> None:
        """Keep the latest status and heartbeat per unit. Both are retained: the broker hands us
        the current one on every (re)subscribe, so the last to arrive is the one that holds."""
        v = item.value
        if item.kind == "status":
            self.db.execute(
                "INSERT INTO devices (device, state, state_time, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT(device) "
                "DO UPDATE SET state = excluded.state, state_time = excluded.state_time, last_seen = excluded.last_seen",
                (item.device, v["state"], v["time"], now))
        else:
            self.db.execute(
                "INSERT INTO devices (device, health, health_time, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT(device) "
                "DO UPDATE SET health = excluded.health, health_time = excluded.health_time, last_seen = excluded.last_seen",
                (item.device, item.raw or json.dumps(v, separators=(",", ":")), v["time"], now))

    # -- reading ---------------------------------------------------------------------------------

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM detections").fetchone()[0]

    def ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM detections")]

    def recent(self, limit: int) -> list[sqlite3.Row]:
        return self._rows("SELECT * FROM detections ORDER BY received DESC, id DESC LIMIT ?", (limit,))

    def detections(self, *, alerts_only: bool = False) -> list[sqlite3.Row]:
        where = "WHERE alert = 1" if alerts_only else ""
        return self._rows(f"SELECT * FROM detections {where} ORDER BY time, id", ())

    def devices(self) -> list[sqlite3.Row]:
        return self._rows("SELECT * FROM devices ORDER BY device", ())

    def counters(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, value FROM counters"))

    def dead_letters(self, limit: int) -> list[sqlite3.Row]:
        return self._rows("SELECT * FROM dead_letters ORDER BY seq DESC LIMIT ?", (limit,))

    def _rows(self, sql: str, args: tuple) -> list[sqlite3.Row]:
        cur = self.db.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(sql, args).fetchall()
