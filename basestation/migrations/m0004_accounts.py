"""4: the web page's accounts (basestation/accounts.py): users, their sessions, failed logins.

`IF NOT EXISTS`: `nv-base serve` and `nv-base user` made these tables themselves before this
migration, with the same columns, so a SQLite store that has them already keeps them and their rows.
PostgreSQL spells REAL as DOUBLE PRECISION and sorts the names byte by byte ("C"), as migration 1 does.
"""

SQLITE = """
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

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS users (
    name      TEXT COLLATE "C" PRIMARY KEY,
    role      TEXT NOT NULL,
    password  TEXT NOT NULL,
    created   DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    csrf       TEXT NOT NULL,
    created    DOUBLE PRECISION NOT NULL,
    expires    DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    id        TEXT COLLATE "C" PRIMARY KEY,
    name      TEXT COLLATE "C" NOT NULL,
    address   TEXT NOT NULL,
    time      DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_time ON login_failures (time);
"""
