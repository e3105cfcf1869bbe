"""Exports for GIS tools: CSV with every detection, GeoJSON with those that have a place (both databases):
a point each, a drone scan's area as its polygon (read back from `nv-base export`'s file, and checked
with shapely when it is installed)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from detections import area_detection, detection

from basestation.export import COLUMNS, write_csv, write_geojson
from basestation.payloads import Accepted
from basestation.store import Store
from edge.records.record import error_record


def filled_store(database) -> tuple[Store, list[dict]]:
    store = Store(database)
    records = [detection("unit-1", n) for n in range(1, 7)]  # n % 3 == 0 has no geo
    records[0]["geo"]["alt"] = 85.5
    records.append(error_record(source="card/x.jpg", error="card/x.jpg: empty file (0 bytes)", device="unit-1"))
    store.save([Accepted("detection", "unit-1", r, r["id"]) for r in records])
    return store, records


def test_csv_has_one_row_per_detection(database):
    store, records = filled_store(database)
    out = io.StringIO()
    assert write_csv(store.detections(), out) == len(records)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == COLUMNS
    assert {r["id"] for r in rows} == {r["id"] for r in records}
    error = next(r for r in rows if r["error"])
    assert error["label"] == "" and error["lat"] == ""


def test_geojson_is_lon_lat_points_and_says_what_it_left_out(database):
    store, records = filled_store(database)
    located = [r for r in records if "geo" in r]
    out = io.StringIO()
    assert write_geojson(store.detections(), out) == (len(located), len(records) - len(located))
    doc = json.loads(out.getvalue())
    assert doc["type"] == "FeatureCollection"
    by_id = {f["id"]: f for f in doc["features"]}
    for record in located:
        feature = by_id[record["id"]]
        geo = record["geo"]
        assert feature["geometry"]["type"] == "Point"
        assert feature["geometry"]["coordinates"][:2] == [geo["lon"], geo["lat"]]  # RFC 7946: longitude first
        assert all(not isinstance(v, (dict, list)) for v in feature["properties"].values())  # flat attributes
    assert by_id[records[0]["id"]]["geometry"]["coordinates"] == [records[0]["geo"]["lon"], records[0]["geo"]["lat"], 85.5]

    out = io.StringIO()
    assert write_geojson(store.detections(), out, include_unlocated=True) == (len(records), 0)
    nulls = [f for f in json.loads(out.getvalue())["features"] if f["geometry"] is None]
    assert len(nulls) == len(records) - len(located)


def test_geojson_writes_an_area_record_as_its_polygon(database, tmp_path):
    store, records = filled_store(database)
    area = area_detection("drone-1", 50)  # -59.70…-59.68, -3.60…-3.58: 0.02° square, counter-clockwise
    store.save([Accepted("detection", "drone-1", area, area["id"])])
    store.close()
    out = tmp_path / "detections.geojson"
    proc = subprocess.run([sys.executable, "-m", "basestation.cli", "export", "--db", str(database), "--format", "geojson",
                           "--out", str(out)], check=False, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    by_id = {f["id"]: f for f in doc["features"]}
    feature = by_id[area["id"]]
    assert feature["geometry"] == {"type": "Polygon", "coordinates": [area["area"]["polygon"]]}  # lon, lat; closed
    assert set(feature["properties"]) == set(by_id[records[0]["id"]]["properties"])  # the attributes of a point
    assert feature["properties"]["label"] == "mining" and feature["properties"]["alert"] is True
    assert abs(feature["properties"]["lat"] - -3.59) < 1e-9 and abs(feature["properties"]["lon"] - -59.69) < 1e-9
    assert {f["geometry"]["type"] for f in doc["features"] if f["id"] != area["id"]} == {"Point"}

    geometry = pytest.importorskip("shapely.geometry")
    polygon = geometry.shape(feature["geometry"])
    assert polygon.is_valid and polygon.exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise
    assert abs(polygon.area - 0.02 * 0.02) < 1e-12 and polygon.contains(geometry.Point(-59.69, -3.59))
