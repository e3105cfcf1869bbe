"""Exports for GIS tools: CSV with every detection, GeoJSON with those that have a place (both databases)."""

from __future__ import annotations

import csv
import io
import json

from detections import detection

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
