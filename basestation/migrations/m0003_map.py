"""3: the map: detections with a location inside a bounding box, newest first.

The store asks for the box one capture-time window at a time, newest first, widening the window
until the page is full (Store.in_box), so each query needs an index on place *and* time:

- SQLite: an R*Tree over (lat, lon, capture time), kept by triggers. Time is counted in tens of
  days from 2023-02-25, so that a year spans about as many units as the map does degrees: in
  seconds it would dwarf them, the tree would split on time alone and a box would visit every node
  (200 ms instead of 1 ms over a million rows). Its boxes are 32-bit floats rounded outwards (here
  about a minute of time), so it finds a superset; the exact id, time, lat and lon ride along in it
  (auxiliary columns), so a window is sorted and cut to a page before any detection row is read.
- PostgreSQL with PostGIS: a point column `geom` (WGS 84, SRID 4326), generated from lat/lon, so
  every writer fills it without knowing it exists, with a GiST index; the planner joins it with the
  time index. PostGIS is used when the extension is in the database already, or when it is
  installed on the server and this user may create it.
- Otherwise (PostgreSQL without PostGIS, SQLite without the R*Tree module): a B-tree on (lat, lon, time).

A PostGIS installed after this migration ran is not used until a later migration adds the column.
"""

import logging

log = logging.getLogger("nv.base")

PLAIN = "CREATE INDEX IF NOT EXISTS detections_place_btree ON detections (lat, lon, time) WHERE lat IS NOT NULL"
EPOCH = "(julianday({t}) - 2460000.5) / 10.0"  # dialects.rtree_time() says the same in unix seconds
RTREE = f"""
CREATE VIRTUAL TABLE detections_place USING rtree (n, lat0, lat1, lon0, lon1, t0, t1, +detection, +time, +lat, +lon);
INSERT INTO detections_place (lat0, lat1, lon0, lon1, t0, t1, detection, time, lat, lon)
    SELECT lat, lat, lon, lon, {EPOCH.format(t="time")}, {EPOCH.format(t="time")}, id, time, lat, lon
    FROM detections WHERE lat IS NOT NULL AND lon IS NOT NULL;
CREATE TRIGGER detections_place_insert AFTER INSERT ON detections
    WHEN new.lat IS NOT NULL AND new.lon IS NOT NULL
BEGIN
    INSERT INTO detections_place (lat0, lat1, lon0, lon1, t0, t1, detection, time, lat, lon)
    VALUES (new.lat, new.lat, new.lon, new.lon, {EPOCH.format(t="new.time")}, {EPOCH.format(t="new.time")},
            new.id, new.time, new.lat, new.lon);
END;
CREATE TRIGGER detections_place_delete AFTER DELETE ON detections
    WHEN old.lat IS NOT NULL AND old.lon IS NOT NULL
BEGIN
    DELETE FROM detections_place WHERE detection = old.id;
END;
"""
POSTGIS = """
ALTER TABLE detections ADD COLUMN geom geometry(Point, 4326)
    GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED;
CREATE INDEX detections_geom ON detections USING gist (geom);
"""


def apply(db, dialect) -> None:
    if dialect.name == "sqlite":
        if _has_rtree(db):
            dialect.script(db, RTREE)
        else:
            log.warning("this SQLite has no R*Tree module: the map reads lat/lon from a B-tree, slower on big databases")
            dialect.script(db, PLAIN)
    elif _postgis(db):
        dialect.script(db, POSTGIS)
    else:
        dialect.script(db, PLAIN)


def _has_rtree(db) -> bool:
    return any(row[0] == "ENABLE_RTREE" for row in db.execute("PRAGMA compile_options"))


def _postgis(db) -> bool:
    if db.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
        return True
    if not db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone():
        log.info("PostGIS is not installed on the server: the map uses lat/lon columns")
        return False
    db.execute("SAVEPOINT postgis")
    try:
        db.execute("CREATE EXTENSION postgis")
    except Exception as exc:  # noqa: BLE001 - psycopg's error; the migration goes on without PostGIS
        db.execute("ROLLBACK TO SAVEPOINT postgis")
        log.warning("PostGIS is installed but cannot be enabled here (%s): the map uses lat/lon columns; "
                    "a superuser can run CREATE EXTENSION postgis in this database before nv-base first starts",
                    " ".join(str(exc).split()))
        return False
    db.execute("RELEASE SAVEPOINT postgis")
    return True
