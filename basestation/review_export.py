"""Reviewed records as labelled data: CSV and JSON (what `nv-convert calibrate` reads), and GeoJSON (QGIS).

One row per reviewed record (basestation/reviews.py, `labelled_rows`); the columns are in
docs/web.md#labelled-export. In CSV, `scores` is a JSON object in one cell, and empty cells are
nulls; in JSON, it is an object. GeoJSON has one Point feature per located row, with the same
properties (`scores` as JSON text, because GIS attribute tables hold only scalars).
"""

from __future__ import annotations

import csv
import json
import time
from typing import TextIO

from basestation.reviews import LABELLED_COLUMNS

FORMAT = "naturevision-labelled"
VERSION = 1


def write_csv(rows: list[dict], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=LABELLED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row[k]) for k in LABELLED_COLUMNS})
    return len(rows)


def write_json(rows: list[dict], out: TextIO) -> int:
    json.dump({"format": FORMAT, "version": VERSION, "exported": _now(), "columns": list(LABELLED_COLUMNS),
               "rows": rows}, out, indent=1)
    out.write("\n")
    return len(rows)


def write_geojson(rows: list[dict], out: TextIO) -> tuple[int, int]:
    """Returns (features written, rows left out for want of a location)."""
    features = []
    for row in rows:
        if row["lat"] is None or row["lon"] is None:
            continue
        props = {k: (json.dumps(v, separators=(",", ":")) if k == "scores" else v) for k, v in row.items()}
        features.append({"type": "Feature", "id": row["record_id"],
                         "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}, "properties": props})
    json.dump({"type": "FeatureCollection", "name": "naturevision_reviews", "features": features}, out)
    out.write("\n")
    return len(features), len(rows) - len(features)


WRITERS = {"csv": write_csv, "json": write_json, "geojson": write_geojson}
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "geojson": "application/geo+json"}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
