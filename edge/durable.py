"""SQLite writes that survive a power cut, for the outbox and the source ledger: one explicit
transaction per call (BEGIN IMMEDIATE ... COMMIT, so one fsync of the WAL with synchronous=FULL),
rolled back on any error, under the owner's lock (one connection is shared between threads); and the
page cache each of their connections keeps."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

CACHE_KIB = 512  # SQLite's default is 2 MB a connection, and `nv-edge run` holds four (the outbox twice, a ledger per pipeline)


def small_cache(db: sqlite3.Connection) -> None:
    """Keep at most CACHE_KIB of pages in this connection's own cache. The rows written are read back once
    (by the publisher) from the OS's file cache just as fast; a busy outbox kept 2 MB resident a connection."""
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.Lock | threading.RLock,
                failed: Callable[[sqlite3.OperationalError], Exception]) -> Iterator[sqlite3.Connection]:
    """`failed(exc)` makes the caller's own error (naming its file) when SQLite cannot write."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise failed(exc) from None
