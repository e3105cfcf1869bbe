"""`nv-base export`: detections as CSV (one row each) or GeoJSON (for QGIS and other GIS tools).

GeoJSON (RFC 7946) needs a location: a record without `geo` is left out unless asked for, in
which case it becomes a Feature with a null geometry (valid GeoJSON; QGIS lists it in the
attribute table without drawing it). Coordinates are WGS 84 longitude, latitude[, altitude].
A drone scan's area record (an `area` polygon, no `geo`) is a Polygon, its exterior ring as the
record has it (counter-clockwise, closed), so that QGIS draws the mined area; its properties are
those of a point (lat/lon: the polygon's centroid).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timezone
from typing import TextIO

from basestation.places import area_ring

COLUMNS = ("id", "device", "time", "received", "kind", "source", "label", "score", "alert", "threshold",
           "lat", "lon", "alt", "queued_s", "model", "model_version", "error")


def flat(row: sqlite3.Row) -> dict:
    """One detection as flat scalar columns (what a CSV or a GIS attribute table can hold)."""
    record = json.loads(row["record"])
    model = record.get("model") or {}
    return {
        "id": row["id"], "device": row["device"], "time": row["time"],
        "received": datetime.fromtimestamp(row["received"], timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "kind": row["kind"], "source": row["source"], "label": row["label"], "score": row["score"],
        "alert": None if row["alert"] is None else bool(row["alert"]), "threshold": record.get("threshold"),
        "lat": row["lat"], "lon": row["lon"], "alt": row["alt"], "queued_s": row["queued_s"],
        "model": model.get("name"), "model_version": model.get("version"), "error": row["error"],
    }


def write_csv(rows: list[sqlite3.Row], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in flat(row).items()})
    return len(rows)


def write_geojson(rows: list[sqlite3.Row], out: TextIO, *, include_unlocated: bool = False) -> tuple[int, int]:
    """Returns (features written, records left out for want of a location)."""
    features, left_out = [], 0
    for row in rows:
        props = flat(row)
        if row["lat"] is None or row["lon"] is None:
            if not include_unlocated:
                left_out += 1
                continue
            geometry = None
        else:
            geometry = _area(json.loads(row["record"])) or _point(row)
        features.append({"type": "Feature", "id": row["id"], "geometry": geometry, "properties": props})
    json.dump({"type": "FeatureCollection", "name": "naturevision_detections", "features": features}, out)
    out.write("\n")
    return len(features), left_out


def _point(row) -> dict:
    coords = [row["lon"], row["lat"]] + ([row["alt"]] if row["alt"] is not None else [])
    return {"type": "Point", "coordinates": coords}


def _area(record: dict) -> dict | None:
    """A Polygon for a record placed by its area (the store put its centroid in lat/lon); None otherwise."""
    if record.get("geo") or not isinstance(record.get("area"), dict):
        return None
    ring = area_ring(record["area"])
    if ring is None or len(ring) < 4:
        return None
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
