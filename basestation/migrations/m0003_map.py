"""3: the map: detections with a location inside a bounding box, newest first.

PostgreSQL with PostGIS: a point column `geom` (WGS 84, SRID 4326), generated from lat/lon, so
every writer fills it without knowing it exists, with a GiST index. PostGIS is used when the
extension is in the database already, or when it is installed on the server and this user may
create it; otherwise, and on SQLite, the map reads lat/lon ranges from a B-tree index.
A PostGIS installed after this migration ran is not used until a later migration adds the column.
"""

import logging

log = logging.getLogger("nv.base")

PLAIN = "CREATE INDEX IF NOT EXISTS detections_place ON detections (lat, lon, time) WHERE lat IS NOT NULL"
POSTGIS = """
ALTER TABLE detections ADD COLUMN geom geometry(Point, 4326)
    GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED;
CREATE INDEX detections_geom ON detections USING gist (geom);
"""


def apply(db, dialect) -> None:
    if dialect.name == "postgresql" and _postgis(db):
        dialect.script(db, POSTGIS)
    else:
        dialect.script(db, PLAIN)


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
