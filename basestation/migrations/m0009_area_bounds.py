"""9: a drone scan's area is on the map wherever any of it is. Migration 8 placed an area record (an
`area` polygon, no `geo`) at its centroid, so a box that held a corner of the area but not its centre
did not find it. Each area record now also keeps its polygon's bounding box (south, north, west, east;
NULL for a point), and the box query finds an area when that box meets the map's (dialects.box):

- SQLite with the R*Tree: the tree's entry for an area is its bounding box, not its centroid (the
  insert trigger of migration 3 is made again so; the areas stored before are moved in the tree);
- PostGIS: a GiST index on the areas' envelopes, beside the points' index;
- otherwise: a B-tree on the areas' bounds (only area rows are in it: they are few).

Why not widen the box by the largest area's reach instead? It would need no index of its own, but one
large polygon (a whole orthomosaic found mining) would widen every query of the map by its size, for
ever; kept bounds cost four columns and make each query look only at what meets its box.
"""

import json

from basestation.migrations.m0003_map import EPOCH
from basestation.places import area_bounds

CANDIDATES = """SELECT id, record FROM detections WHERE lat IS NOT NULL AND record LIKE '%"area"%'"""
TRIGGER = f"""
DROP TRIGGER detections_place_insert;
CREATE TRIGGER detections_place_insert AFTER INSERT ON detections
    WHEN new.lat IS NOT NULL AND new.lon IS NOT NULL
BEGIN
    INSERT INTO detections_place (lat0, lat1, lon0, lon1, t0, t1, detection, time, lat, lon)
    VALUES (coalesce(new.south, new.lat), coalesce(new.north, new.lat), coalesce(new.west, new.lon),
            coalesce(new.east, new.lon), {EPOCH.format(t="new.time")}, {EPOCH.format(t="new.time")},
            new.id, new.time, new.lat, new.lon);
END;
"""
ENVELOPES = ("CREATE INDEX detections_area_envelope ON detections "
             "USING gist (ST_MakeEnvelope(west, south, east, north, 4326)) WHERE south IS NOT NULL")
PLAIN = "CREATE INDEX detections_area_btree ON detections (south, north, west, east, time) WHERE south IS NOT NULL"


def apply(db, dialect) -> None:
    number = "REAL" if dialect.name == "sqlite" else "DOUBLE PRECISION"
    for column in ("south", "north", "west", "east"):
        db.execute(f"ALTER TABLE detections ADD COLUMN {column} {number}")
    bounds = {}
    for row_id, text in db.execute(dialect.sql(CANDIDATES)).fetchall():
        record = json.loads(text)
        found = None if record.get("geo") else area_bounds(record.get("area"))  # placed by its area (m0008)
        if found is not None:
            bounds[row_id] = found
    for row_id, b in bounds.items():
        db.execute(dialect.sql("UPDATE detections SET south = ?, north = ?, west = ?, east = ? WHERE id = ?"),
                   (b.south, b.north, b.west, b.east, row_id))
    rtree = dialect.name == "sqlite" and "detection" in dialect.columns(db, "detections_place")
    if rtree:
        dialect.script(db, TRIGGER)
        if bounds:  # the tree is found by its rowid, not by the detection's id: one pass over it
            for n, row_id in db.execute("SELECT n, detection FROM detections_place").fetchall():
                if row_id in bounds:
                    b = bounds[row_id]
                    db.execute("UPDATE detections_place SET lat0 = ?, lat1 = ?, lon0 = ?, lon1 = ? WHERE n = ?",
                               (b.south, b.north, b.west, b.east, n))
    elif dialect.name == "postgresql" and "geom" in dialect.columns(db, "detections"):
        db.execute(ENVELOPES)
    else:
        db.execute(PLAIN)
