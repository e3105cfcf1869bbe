"""The outbox: every detection is kept in SQLite on the unit until its delivery is confirmed.

A record is written here before anything else happens to it; the publisher reads it from here,
never from memory, and deletes it only after a confirmation (the broker's PUBACK, or the base
station's receipt: `edge/delivery/publisher.py`). Rows are sent in the order they were written.

Durability. The file is in WAL mode with `synchronous=FULL`: every commit fsyncs the WAL, so a
committed record survives a power cut, not only a crash. With `NORMAL`, commits are not synced and
a power cut can take back everything since the last checkpoint (up to ~1000 pages, thousands of
records); field units lose power more often than they crash. The cost of FULL is one fsync per
commit, so writes are grouped: `put()` buffers, and one transaction commits the buffer when it
holds `batch` records or its oldest record has waited `max_delay_s` (a timer does it when no
further record comes). A record is durable at most `max_delay_s` after `put()`; `flush()` makes it
durable now.

Bounds and eviction. The outbox holds at most `max_records` rows and `max_bytes` of payload.
Past either bound the oldest rows of the least valuable class go first: thumbnails, then routine
records, then alerts (an alert is evicted only when nothing else is left). Rows older than their
class's age limit go too: routine records and thumbnails after `routine_max_age_s`, alerts after
`alert_max_age_s`. Age is time spent in the outbox, not capture time. Every eviction is counted
(persistently) and reported in the heartbeat, so the base station learns what was lost.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.durable import small_cache, transaction
from edge.records.fit import fit_record

log = logging.getLogger("nv.outbox")

DETECTION = "detection"  # the topic leaf of a detection record: naturevision/<device>/detection
THUMBNAIL = "thumbnail/"  # + detection id
# Eviction classes: the lowest goes first.
THUMB, ROUTINE, ALERT = 0, 1, 2
CLASS_NAMES = {THUMB: "thumbnail", ROUTINE: "routine", ALERT: "alert"}
MAX_RESEND_DOUBLINGS = 6  # a record never confirmed is resent after 1, 2, 4 ... 64 x the timeout

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,  -- write order: sent oldest first
    id       TEXT    NOT NULL,                   -- detection id (a thumbnail carries its detection's)
    leaf     TEXT    NOT NULL,                   -- topic below naturevision/<device>/
    class    INTEGER NOT NULL,                   -- eviction class: 0 thumbnail, 1 routine, 2 alert
    queued   REAL    NOT NULL,                   -- unix time it was written here
    sent     REAL,                               -- last PUBACK while awaiting a receipt; NULL = not taken
    attempts INTEGER NOT NULL DEFAULT 0,         -- PUBACKs so far (spaces out resends)
    payload  BLOB    NOT NULL,
    UNIQUE (id, leaf)
);
CREATE INDEX IF NOT EXISTS outbox_class ON outbox (class, seq);
CREATE TABLE IF NOT EXISTS outbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class OutboxError(Exception):
    """The outbox file cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class OutboxLimits:
    max_records: int = 200_000
    max_bytes: int = 200 * 1024 * 1024
    routine_max_age_s: float = 30 * 86400
    alert_max_age_s: float = 365 * 86400


@dataclass(frozen=True)
class Row:
    seq: int
    id: str
    leaf: str
    queued: float
    payload: bytes

    @property
    def is_detection(self) -> bool:
        return self.leaf == DETECTION


@dataclass(frozen=True)
class OutboxStats:
    depth: int  # rows not yet confirmed
    unsent: int  # rows the broker has not taken yet (the rest await a receipt)
    bytes: int
    oldest_queued: float | None  # unix time of the oldest row
    evicted: dict[str, int]
    commits: int  # transactions this process committed (each one fsync of the WAL)

    def oldest_age_s(self, now: float | None = None) -> float | None:
        if self.oldest_queued is None:
            return None
        return max(0.0, (now or time.time()) - self.oldest_queued)


class Outbox:
    """One SQLite file; safe to share between one writer process and one publisher process."""

    def __init__(self, path: str | Path, *, batch: int = 64, max_delay_s: float = 1.0,
                 limits: OutboxLimits = OutboxLimits(), clock=time.time):
        self.path = Path(path)
        self.batch = batch
        self.max_delay_s = max_delay_s
        self.limits = limits
        self.clock = clock
        self.commits = 0
        self._pending: list[tuple] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.RLock()
        self._last_age_check = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(f"{self.path}: SQLite refused WAL mode ({mode}); put the outbox on a local file system")
            self._db.execute("PRAGMA synchronous=FULL")
            small_cache(self._db)
            self._db.execute("PRAGMA journal_size_limit=8388608")  # the WAL shrinks back after checkpoints
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox: {exc}; check the path and free space, "
                              f"or move a damaged file away to start a new outbox") from None

    # -- writing ---------------------------------------------------------------------------------

    def put(self, record: dict, thumbnail: bytes | None = None) -> None:
        """Queue one detection record (and optionally its JPEG thumbnail) for delivery."""
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ValueError("a detection record is a dict with an 'id' (see edge/records/record.py)")
        if "queued_s" in record:
            raise ValueError(f"record {record['id']}: queued_s is set by the publisher, not before the outbox")
        now = self.clock()
        klass = ALERT if record.get("alert") else ROUTINE
        record, payload = fit_record(record)  # the base station refuses records over 1 MiB
        rows = [(record["id"], DETECTION, klass, now, payload)]
        if thumbnail:
            rows.append((record["id"], THUMBNAIL + record["id"], THUMB, now, bytes(thumbnail)))
        with self._lock:
            self._pending.extend(rows)
            if len(self._pending) >= self.batch:
                self._commit_pending()
            elif self._timer is None:
                self._timer = threading.Timer(self.max_delay_s, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Commit what `put()` buffered: after this, it survives a crash or a power cut."""
        with self._lock:
            self._commit_pending()

    def _flush_from_timer(self) -> None:
        try:
            self.flush()
        except OutboxError as exc:  # nobody to raise to in the timer thread; put() retries the rows
            log.error("%s", exc)

    def _commit_pending(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO outbox (id, leaf, class, queued, payload) VALUES (?, ?, ?, ?, ?)",
                           self._pending)
            self._evict(db)
        self._pending = []  # only once committed: a failed write keeps them for the next try

    def close(self) -> None:
        with self._lock:
            self._commit_pending()
            self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- eviction --------------------------------------------------------------------------------

    def _evict(self, db: sqlite3.Connection) -> None:
        now = self.clock()
        evicted = {name: 0 for name in CLASS_NAMES.values()}
        if now - self._last_age_check > 60:
            self._last_age_check = now
            for klass, max_age in ((THUMB, self.limits.routine_max_age_s), (ROUTINE, self.limits.routine_max_age_s),
                                   (ALERT, self.limits.alert_max_age_s)):
                cur = db.execute("DELETE FROM outbox WHERE class = ? AND queued < ?", (klass, now - max_age))
                evicted[CLASS_NAMES[klass]] += cur.rowcount
        count, size = db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        extra_rows = count - self.limits.max_records
        extra_bytes = size - self.limits.max_bytes
        for klass in (THUMB, ROUTINE, ALERT):
            if extra_rows <= 0 and extra_bytes <= 0:
                break
            cut, n = None, 0
            for seq, length in db.execute("SELECT seq, length(payload) FROM outbox WHERE class = ? ORDER BY seq", (klass,)):
                cut, n = seq, n + 1
                extra_rows -= 1
                extra_bytes -= length
                if extra_rows <= 0 and extra_bytes <= 0:
                    break
            if cut is not None:
                db.execute("DELETE FROM outbox WHERE class = ? AND seq <= ?", (klass, cut))
                evicted[CLASS_NAMES[klass]] += n
        for name, n in evicted.items():
            if n:
                log.warning("%s: evicted %d %s row(s) to stay within its bounds (%s)", self.path, n, name, self.limits)
                db.execute("INSERT INTO outbox_counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                           (f"evicted_{name}", n, n))

    # -- reading and confirming (the publisher) --------------------------------------------------

    def due(self, *, after_seq: int, limit: int, resend_after_s: float | None) -> list[Row]:
        """Rows to publish, oldest first, after `after_seq`: not yet taken by the broker, or taken
        but unconfirmed for longer than `resend_after_s` (doubling per attempt). None: only new ones."""
        if resend_after_s is None:
            sql = "SELECT seq, id, leaf, queued, payload FROM outbox WHERE seq > ? AND sent IS NULL ORDER BY seq LIMIT ?"
            args: tuple = (after_seq, limit)
        else:
            sql = ("SELECT seq, id, leaf, queued, payload FROM outbox WHERE seq > ? AND (sent IS NULL OR "
                   f"sent + ? * (1 << min(attempts - 1, {MAX_RESEND_DOUBLINGS})) <= ?) ORDER BY seq LIMIT ?")
            args = (after_seq, resend_after_s, self.clock(), limit)
        with self._lock:
            return [Row(*r) for r in self._db.execute(sql, args)]

    def settle(self, *, taken: list[int] = (), delivered: list[int] = (), receipted: list[str] = (),
               receipted_thumbnails: list[str] = ()) -> int:
        """Write a group of confirmations in one transaction (one fsync). `taken`: seqs the broker
        PUBACKed, kept until a receipt; `delivered`: seqs to delete now; `receipted*`: ids the
        base station confirmed. Returns the number of rows deleted."""
        if not (taken or delivered or receipted or receipted_thumbnails):
            return 0
        with self._transaction() as db:
            now = self.clock()
            db.executemany("UPDATE outbox SET sent = ?, attempts = attempts + 1 WHERE seq = ?", [(now, s) for s in taken])
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in delivered])
            db.executemany("DELETE FROM outbox WHERE id = ? AND leaf = ?", [(i, DETECTION) for i in receipted])
            db.executemany("DELETE FROM outbox WHERE id = ? AND leaf = ?", [(i, THUMBNAIL + i) for i in receipted_thumbnails])
            return db.total_changes - before

    def mark_sent(self, seqs: list[int]) -> None:
        self.settle(taken=seqs)

    def delete_confirmed(self, detections: list[str], thumbnails: list[str]) -> int:
        return self.settle(receipted=detections, receipted_thumbnails=thumbnails)

    def forget_sent(self) -> int:
        """Make every row awaiting a receipt due again now (the broker lost its state)."""
        with self._transaction() as db:
            return db.execute("UPDATE outbox SET sent = NULL WHERE sent IS NOT NULL").rowcount

    def stats(self) -> OutboxStats:
        with self._lock:
            depth, unsent, size, oldest = self._db.execute(
                "SELECT count(*), count(*) - count(sent), coalesce(sum(length(payload)), 0), min(queued) FROM outbox"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM outbox_counters"))
        evicted = {name: counters.get(f"evicted_{name}", 0) for name in CLASS_NAMES.values()}
        return OutboxStats(depth, unsent, size, oldest, evicted, self.commits)

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    # -- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self):
        with self._lock:  # an RLock: transaction() takes it again
            with transaction(self._db, self._lock, lambda exc: OutboxError(
                    f"{self.path}: write failed: {exc}; check free space on the card "
                    f"and that no other program holds the file")) as db:
                yield db
            self.commits += 1


def stored_detections(path: str | Path) -> list[dict]:
    """The detection records waiting in an outbox file, oldest first, read without writing to it (a running
    unit's outbox too: WAL readers do not block its writer). Raises OutboxError naming the file."""
    from urllib.request import pathname2url

    path = Path(path)
    try:
        db = sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT payload FROM outbox WHERE leaf = ? ORDER BY seq", (DETECTION,)).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path}: cannot read it as an outbox: {exc}") from None
    return [json.loads(payload) for (payload,) in rows]
