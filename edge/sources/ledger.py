"""The ledger: which files a folder source has done, in SQLite in the state dir.

A file is known by `FileKey(source, path, size, mtime_ns)` (path relative to the watched folder):
a file replaced by another with the same name has a new key and is done again; an unchanged file
is never done twice.

The order that makes a crash (kill -9, power cut) at any point lose nothing and double nothing:

    1. record_id = ledger.claim(key)     the id is chosen and committed BEFORE classifying
    2. classify, outbox.put(record with id=record_id)
    3. outbox.flush()                    the record is durable
    4. ledger.mark_done(key, outcome)    only now is the file done

A crash before 3 leaves the file not done: it is classified again, and `claim` returns the same id.
A crash between 3 and 4 classifies it again with that same id: the outbox (INSERT OR IGNORE on the
id) and the base station (stores an id once) keep one copy. A crash after 4 never offers it again.
So `claim` must be durable before the record is (else a second id could follow a lost claim),
which is why every commit here is fsynced: WAL with `synchronous=FULL`, as in the outbox.

Growth is bounded by `forget_older_than`: rows done (or claimed) before a cutoff go, except the
keys of files still in the folder, which would otherwise be classified again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.durable import small_cache, transaction
from edge.ids import uuid7

log = logging.getLogger("nv.sources.ledger")

LEDGER_FILE = "sources.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    source    TEXT    NOT NULL,  -- the source's name
    path      TEXT    NOT NULL,  -- relative to the watched folder, '/' separated
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    record_id TEXT    NOT NULL,  -- chosen at claim time, kept across crashes
    claimed   REAL    NOT NULL,  -- unix time
    done      REAL,              -- unix time; NULL while claimed but not done
    outcome   TEXT,
    PRIMARY KEY (source, path, size, mtime_ns)
);
CREATE INDEX IF NOT EXISTS files_age ON files (source, coalesce(done, claimed));
"""


class LedgerError(Exception):
    """The ledger file cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class FileKey:
    source: str
    path: str  # relative to the watched folder, '/' separated
    size: int
    mtime_ns: int


class Ledger:
    """One SQLite file, used by the one service process."""

    def __init__(self, path: str | Path, *, clock=time.time):
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise LedgerError(f"{self.path}: SQLite refused WAL mode ({mode}); put [device] state_dir on a local file system")
            self._db.execute("PRAGMA synchronous=FULL")
            small_cache(self._db)
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise LedgerError(f"{self.path}: cannot open the source ledger: {exc}; check [device] state_dir and free "
                              f"space, or move a damaged file away (files already done would then be done again)") from None

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, **kwargs) -> "Ledger":
        return cls(Path(state_dir) / LEDGER_FILE, **kwargs)

    def claim(self, key: FileKey) -> str:
        """The record id for this file: a new UUIDv7, committed now, or the one claimed before."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO files (source, path, size, mtime_ns, record_id, claimed) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (*_cols(key), uuid7(), self.clock()))
            return db.execute("SELECT record_id FROM files WHERE source = ? AND path = ? AND size = ? AND mtime_ns = ?",
                              _cols(key)).fetchone()[0]

    def is_done(self, key: FileKey) -> bool:
        with self._lock:
            row = self._db.execute("SELECT done FROM files WHERE source = ? AND path = ? AND size = ? AND mtime_ns = ?",
                                   _cols(key)).fetchone()
        return row is not None and row[0] is not None

    def mark_done(self, key: FileKey, outcome: str) -> None:
        """Call only after the item's record is flushed to the outbox (see the module docstring)."""
        with self._write() as db:
            cur = db.execute("UPDATE files SET done = ?, outcome = ? WHERE source = ? AND path = ? AND size = ? "
                             "AND mtime_ns = ?", (self.clock(), outcome, *_cols(key)))
            if cur.rowcount == 0:
                # Not claimed: a caller bug, but the file is done all the same; keep it done.
                db.execute("INSERT INTO files (source, path, size, mtime_ns, record_id, claimed, done, outcome) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*_cols(key), uuid7(), self.clock(), self.clock(), outcome))

    def outcome(self, key: FileKey) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT outcome FROM files WHERE source = ? AND path = ? AND size = ? AND mtime_ns = ?",
                                   _cols(key)).fetchone()
        return row[0] if row else None

    def forget_older_than(self, cutoff: float, *, source: str, keep: Iterable[FileKey] = ()) -> int:
        """Drop `source`'s rows done (or claimed) before unix time `cutoff`, except the `keep`
        keys (files still in the folder: forgetting them would classify them again). Returns
        the number of rows dropped."""
        keep = {_cols(k) for k in keep if k.source == source}
        with self._lock:
            old = self._db.execute("SELECT source, path, size, mtime_ns FROM files WHERE source = ? "
                                   "AND coalesce(done, claimed) < ?", (source, cutoff)).fetchall()
        gone = [row for row in old if tuple(row) not in keep]
        if not gone:
            return 0
        with self._write() as db:
            db.executemany("DELETE FROM files WHERE source = ? AND path = ? AND size = ? AND mtime_ns = ?", gone)
        return len(gone)

    def count(self, source: str | None = None) -> int:
        with self._lock:
            if source is None:
                return self._db.execute("SELECT count(*) FROM files").fetchone()[0]
            return self._db.execute("SELECT count(*) FROM files WHERE source = ?", (source,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self):
        return transaction(self._db, self._lock, lambda exc: LedgerError(
            f"{self.path}: write failed: {exc}; check free space in [device] state_dir "
            f"and that no other program holds the file"))


def _cols(key: FileKey) -> tuple[str, str, int, int]:
    return (key.source, key.path, key.size, key.mtime_ns)
