"""8: drone scans' area records on the map. A record with an `area` (schema 1.4: a polygon) and no
`geo` was stored without a location, so the map's box query never found it. The store now keeps the
polygon's centroid in lat/lon (basestation/places.py); this gives the records stored before the same.

SQLite's R*Tree of places is kept by triggers on insert and delete only, so the rows given a place
here are added to it too (the statements of migration 3's trigger). On PostgreSQL the PostGIS point
is generated from lat/lon and follows by itself.
"""

import json

from basestation.migrations.m0003_map import EPOCH
from basestation.places import area_centre

CANDIDATES = """SELECT id, record FROM detections WHERE lat IS NULL AND lon IS NULL AND record LIKE '%"area"%'"""
RTREE_ROW = f"""INSERT INTO detections_place (lat0, lat1, lon0, lon1, t0, t1, detection, time, lat, lon)
    SELECT lat, lat, lon, lon, {EPOCH.format(t="time")}, {EPOCH.format(t="time")}, id, time, lat, lon
    FROM detections WHERE id = ?"""


def apply(db, dialect) -> None:
    placed = []
    for row_id, text in db.execute(dialect.sql(CANDIDATES)).fetchall():
        record = json.loads(text)
        centre = None if record.get("geo") else area_centre(record.get("area"))
        if centre is not None:
            placed.append((centre["lat"], centre["lon"], row_id))
    rtree = dialect.name == "sqlite" and "detection" in dialect.columns(db, "detections_place")
    for lat, lon, row_id in placed:
        db.execute(dialect.sql("UPDATE detections SET lat = ?, lon = ? WHERE id = ?"), (lat, lon, row_id))
        if rtree:
            db.execute(RTREE_ROW, (row_id,))
