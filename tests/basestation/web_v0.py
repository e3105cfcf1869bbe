"""The tables `nv-base serve`, `nv-base user` and `nv-base unit` made themselves before migrations 4 to 7
took them over (commit 15b0acf: accounts.py, reviews.py, evidence.py and units.py, their SCHEMA strings
unchanged below), with the `create_tables` that ran them. tests/basestation/test_migrate.py makes
stores with these and upgrades them. Keep them as they are: they stand for the stores in the field."""

from __future__ import annotations

import sqlite3

# basestation/accounts.py
ACCOUNTS = """
CREATE TABLE IF NOT EXISTS users (
    name      TEXT PRIMARY KEY,
    role      TEXT NOT NULL,           -- read-only, reviewer, admin
    password  TEXT NOT NULL,           -- scrypt$N$r$p$salt$hash (base64)
    created   REAL NOT NULL            -- unix time
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,       -- SHA-256 of the cookie's token, hex
    name       TEXT NOT NULL,
    csrf       TEXT NOT NULL,          -- sent back with every state-changing request
    created    REAL NOT NULL,
    expires    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    id        TEXT PRIMARY KEY,        -- UUIDv7
    name      TEXT NOT NULL,
    address   TEXT NOT NULL,
    time      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_time ON login_failures (time);
"""

# basestation/reviews.py
REVIEWS = """
CREATE TABLE IF NOT EXISTS reviews (
    id          TEXT PRIMARY KEY,      -- UUIDv7: sorts by when the verdict was given
    target_kind TEXT NOT NULL,         -- detection or event
    target      TEXT NOT NULL,         -- the detection's id, or the event's id
    anchor      TEXT NOT NULL,         -- a detection of the target (itself, or one phase of the event)
    verdict     TEXT NOT NULL,         -- confirmed, false_alarm, unsure
    note        TEXT NOT NULL,
    reviewer    TEXT NOT NULL,         -- the account that gave it
    time        REAL NOT NULL          -- unix time
);
CREATE INDEX IF NOT EXISTS reviews_target ON reviews (target, id);
-- The records of one event share device and time (the event's start): this finds them.
CREATE INDEX IF NOT EXISTS detections_device_time ON detections (device, time);
"""

# basestation/evidence.py
AUDIO_SEGMENTS = """
CREATE TABLE IF NOT EXISTS audio_segments (
    id        TEXT PRIMARY KEY,      -- the detection's id
    device    TEXT NOT NULL,
    received  REAL NOT NULL,         -- unix time
    mime      TEXT NOT NULL,         -- audio/wav, audio/flac, audio/ogg
    data      BLOB NOT NULL
);
"""

# basestation/units.py
UNITS = """
CREATE TABLE IF NOT EXISTS units (
    name          TEXT PRIMARY KEY,
    access        TEXT NOT NULL,     -- active / revoked
    added         REAL NOT NULL,     -- unix time of the last `unit add`
    changed       REAL NOT NULL,     -- unix time of the last add or revoke
    serial        TEXT,              -- its current client certificate (hex), NULL without client certificates
    cert_expires  TEXT               -- that certificate's last day (ISO 8601)
);
"""


def create_tables(db: sqlite3.Connection) -> None:
    """What web/app.py's open_database and units.py's _open ran on every start."""
    for schema in (ACCOUNTS, REVIEWS, AUDIO_SEGMENTS, UNITS):
        db.executescript(schema)
