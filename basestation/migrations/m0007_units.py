"""7: the units provisioned here (`nv-base unit add|revoke`, basestation/units.py).

`IF NOT EXISTS`: `nv-base unit` made this table itself before this migration, with the same
columns, so a SQLite store that has it already keeps it and its rows.
"""

SQLITE = """
CREATE TABLE IF NOT EXISTS units (
    name          TEXT PRIMARY KEY,
    access        TEXT NOT NULL,     -- active / revoked
    added         REAL NOT NULL,     -- unix time of the last `unit add`
    changed       REAL NOT NULL,     -- unix time of the last add or revoke
    serial        TEXT,              -- its current client certificate (hex), NULL without client certificates
    cert_expires  TEXT               -- that certificate's last day (ISO 8601)
);
"""

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS units (
    name          TEXT COLLATE "C" PRIMARY KEY,
    access        TEXT NOT NULL,
    added         DOUBLE PRECISION NOT NULL,
    changed       DOUBLE PRECISION NOT NULL,
    serial        TEXT,
    cert_expires  TEXT
);
"""
