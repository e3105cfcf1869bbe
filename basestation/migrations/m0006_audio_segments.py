"""6: audio segments kept beside a detection (basestation/evidence.py).

`IF NOT EXISTS`: `nv-base serve` made this table itself before this migration, with the same
columns, so a SQLite store that has it already keeps it and its rows.
"""

SQLITE = """
CREATE TABLE IF NOT EXISTS audio_segments (
    id        TEXT PRIMARY KEY,      -- the detection's id
    device    TEXT NOT NULL,
    received  REAL NOT NULL,         -- unix time
    mime      TEXT NOT NULL,         -- audio/wav, audio/flac, audio/ogg
    data      BLOB NOT NULL
);
"""

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS audio_segments (
    id        TEXT COLLATE "C" PRIMARY KEY,
    device    TEXT COLLATE "C" NOT NULL,
    received  DOUBLE PRECISION NOT NULL,
    mime      TEXT NOT NULL,
    data      BYTEA NOT NULL
);
"""
