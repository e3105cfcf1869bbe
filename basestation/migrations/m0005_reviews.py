"""5: reviews, a person's verdicts on events and detections (basestation/reviews.py).

`IF NOT EXISTS`: `nv-base serve` made this table itself before this migration, with the same
columns, so a SQLite store that has it already keeps it and its rows. The newest verdict of a target
is the last by time, then by insertion order: SQLite's rowid; PostgreSQL has none, so there an
identity column of that name gives the same order to the same statement (`ORDER BY time, rowid`).

reviews.py also made an index `detections_device_time ON detections (device, time)` to find an
event's records. Migration 2 makes an index of that name on (device, time, id) for the event list;
on a store where the page ran first, `IF NOT EXISTS` left the shorter one in its place. It is made
again here with the id, which serves both.
"""

SQLITE = """
CREATE TABLE IF NOT EXISTS reviews (
    id          TEXT PRIMARY KEY,      -- UUIDv7
    target_kind TEXT NOT NULL,         -- detection or event
    target      TEXT NOT NULL,         -- the detection's id, or the event's id
    anchor      TEXT NOT NULL,         -- a detection of the target (itself, or one phase of the event)
    verdict     TEXT NOT NULL,         -- confirmed, false_alarm, unsure
    note        TEXT NOT NULL,
    reviewer    TEXT NOT NULL,         -- the account that gave it
    time        REAL NOT NULL          -- unix time
);
CREATE INDEX IF NOT EXISTS reviews_target ON reviews (target, id);
"""

POSTGRESQL = """
CREATE TABLE IF NOT EXISTS reviews (
    id          TEXT COLLATE "C" PRIMARY KEY,
    target_kind TEXT NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    anchor      TEXT COLLATE "C" NOT NULL,
    verdict     TEXT NOT NULL,
    note        TEXT NOT NULL,
    reviewer    TEXT COLLATE "C" NOT NULL,
    time        DOUBLE PRECISION NOT NULL,
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX IF NOT EXISTS reviews_target ON reviews (target, id);
"""

EVENT_INDEX = ("device", "time", "id")  # migration 2's detections_device_time


def apply(db, dialect) -> None:
    dialect.script(db, SQLITE if dialect.name == "sqlite" else POSTGRESQL)
    if dialect.name == "sqlite":
        columns = tuple(row[2] for row in db.execute("PRAGMA index_info(detections_device_time)"))
        if columns != EVENT_INDEX:
            db.execute("DROP INDEX IF EXISTS detections_device_time")
            db.execute(f"CREATE INDEX detections_device_time ON detections ({', '.join(EVENT_INDEX)})")
