"""The base station's database, on SQLite and on PostgreSQL (with and without PostGIS): idempotent by
detection id, latest status per unit, counters, dead letters, the event list and the map."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from detections import area_detection, detection

from basestation.payloads import DEAD_LETTER_PREFIX, Accepted, DeadLetter, parse
from basestation.store import Store
from edge.records.record import iso_utc


def as_item(record: dict) -> Accepted:
    return Accepted("detection", record["device"], record, record["id"])


def test_a_redelivered_detection_is_stored_once_and_receipted_again(database):
    store = Store(database)
    records = [detection("unit-1", n) for n in range(5)] + [detection("unit-2", 9)]
    first = store.save([as_item(r) for r in records])
    assert (first.stored, first.duplicates) == (6, 0)
    again = store.save([as_item(r) for r in records[:3]])
    assert (again.stored, again.duplicates) == (0, 3)
    assert again.receipts["unit-1"] == ([r["id"] for r in records[:3]], [])  # a duplicate is confirmed too
    assert store.count() == 6
    assert store.counters() == {"stored": 6, "duplicates": 3}


def test_columns_hold_what_list_and_export_need(database):
    store = Store(database)
    record = dict(detection("unit-1", 1, alert=True), queued_s=7200.0)
    store.save([as_item(record)])
    (row,) = store.recent(10)
    assert (row["label"], row["alert"], row["queued_s"], row["time"]) == ("mining", 1, 7200.0, record["time"])
    assert (row["lat"], row["lon"]) == (record["geo"]["lat"], record["geo"]["lon"])
    assert json.loads(row["record"]) == record


def test_status_and_health_keep_the_latest(database):
    store = Store(database)
    status = {"schema": "1.0", "device": "unit-1", "state": "online", "time": "2026-05-01T10:00:00.000Z"}
    store.save([Accepted("status", "unit-1", status)])
    store.save([Accepted("status", "unit-1", dict(status, state="offline", time="2026-05-01T09:59:59.000Z"))])
    store.save([Accepted("health", "unit-1", {"device": "unit-1", "time": "2026-05-01T10:00:01.000Z", "outbox": {"depth": 4}})])
    (device,) = store.devices()
    assert device["state"] == "offline"  # the Last Will's time is its connection's start: arrival order wins
    assert json.loads(device["health"])["outbox"]["depth"] == 4


def test_dead_letters_are_kept_and_counted_by_cause_in_the_same_transaction(database, monkeypatch):
    monkeypatch.setattr("basestation.store.MAX_DEAD_LETTERS", 3)
    store = Store(database)
    letters = [DeadLetter.of("naturevision/unit-1/detection", b"[" * 2000, "depth", f"too deep {n}") for n in range(4)]
    letters.append(DeadLetter.of("naturevision/unit-1/status", b"\xff", "encoding", "not UTF-8", retained=True))
    store.save([as_item(detection("unit-1", 1))], letters)
    assert store.counters() == {"stored": 1, "rejected": 5, "rejected.depth": 4, "rejected.encoding": 1}
    rows = store.dead_letters(10)
    assert [r["reason"] for r in rows] == ["not UTF-8", "too deep 3", "too deep 2"]  # the newest 3 are kept
    assert (rows[0]["retained"], rows[1]["size"], bytes(rows[1]["prefix"])) == (1, 2000, b"[" * DEAD_LETTER_PREFIX)


def test_an_item_the_database_will_not_take_is_left_out_and_named(database):
    store = Store(database)
    good = detection("unit-1", 1)
    surrogate = parse("naturevision/unit-1/detection", json.dumps(dict(detection("unit-1", 2), source="\ud800")).encode())
    saved = store.save([as_item(good), surrogate])
    assert store.ids() == [good["id"]] and saved.stored == 1
    ((index, why),) = saved.unstorable
    assert index == 1 and why.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'")
    assert saved.receipts["unit-1"] == ([good["id"]], [])  # not confirmed: it is not stored


def test_a_nul_character_is_stored_by_sqlite_and_refused_by_postgresql_alone(database):
    store = Store(database)
    good = [detection("unit-1", n) for n in (1, 3)]
    nul = parse("naturevision/unit-1/detection", json.dumps(dict(detection("unit-1", 2), source="card/a\u0000.jpg")).encode())
    saved = store.save([as_item(good[0]), nul, as_item(good[1])],
                       [DeadLetter.of("naturevision/unit-1/detection", b"x", "schema", "bad value '\x00'")])
    if store.dialect.name == "sqlite":
        assert (saved.stored, saved.unstorable) == (3, [])
    else:
        assert saved.stored == 2 and [i for i, _ in saved.unstorable] == [1]
        assert "NUL" in saved.unstorable[0][1]
        assert sorted(store.ids()) == sorted(r["id"] for r in good)
    assert store.dead_letters(1)[0]["reason"] == "bad value '\\x00'"  # kept, spelt out


def test_thumbnails_are_stored_once_and_receipted(database):
    store = Store(database)
    record = detection("unit-1", 10, alert=True)
    thumb = Accepted("thumbnail", "unit-1", b"\xff\xd8\xff" + b"\0" * 100, record["id"])
    first = store.save([as_item(record), thumb])
    again = store.save([thumb])
    assert (first.stored, again.stored, again.duplicates) == (2, 0, 1)
    assert again.receipts["unit-1"] == ([], [record["id"]])


def fill_events(store: Store) -> list[dict]:
    records = [detection("unit-1", n) for n in range(0, 60)] + [detection("unit-2", n) for n in range(60, 90)]
    store.save([as_item(r) for r in records])
    return records


def newest_first(records: list[dict]) -> list[str]:
    return [r["id"] for r in sorted(records, key=lambda r: (r["time"], r["id"]), reverse=True)]


def test_the_event_list_is_newest_first_with_filters_and_pages(database):
    store = Store(database)
    records = fill_events(store)
    assert [r["id"] for r in store.events(limit=10)] == newest_first(records)[:10]
    unit1_alerts = [r for r in records if r["device"] == "unit-1" and r["alert"]]
    assert [r["id"] for r in store.events(device="unit-1", alert=True)] == newest_first(unit1_alerts)
    assert [r["id"] for r in store.events(label="not_mining", alert=False, limit=500)] == \
        newest_first([r for r in records if not r["alert"]])
    window = [r for r in records if "2026-05-01T00:00:20" <= r["time"] < "2026-05-01T00:01:05"]
    assert [r["id"] for r in store.events(since="2026-05-01T00:00:20", until="2026-05-01T00:01:05", limit=500)] == \
        newest_first(window)
    first = store.events(limit=7)
    second = store.events(limit=7, before=(first[-1]["time"], first[-1]["id"]))
    assert [r["id"] for r in first + second] == newest_first(records)[:14]
    assert store.events(device="unit-3") == []


def test_the_map_gives_located_detections_in_a_box_newest_first(database):
    store = Store(database)
    records = fill_events(store)
    located = [r for r in records if "geo" in r]
    assert [r["id"] for r in store.in_box(-61, -5, -59, -2, limit=1000)] == newest_first(located)
    west, south, east, north = -59.8, -3.9, -59.3, -3.2
    inside = [r for r in located if west <= r["geo"]["lon"] <= east and south <= r["geo"]["lat"] <= north]
    assert 0 < len(inside) < len(located)
    assert [r["id"] for r in store.in_box(west, south, east, north, limit=1000)] == newest_first(inside)
    assert [r["id"] for r in store.in_box(west, south, east, north, limit=3)] == newest_first(inside)[:3]
    edge = inside[0]["geo"]
    assert edge["lat"] in [r["lat"] for r in store.in_box(edge["lon"], edge["lat"], edge["lon"], edge["lat"])]
    with pytest.raises(ValueError, match="west ≤ east"):
        store.in_box(170, 0, -170, 1)


def test_the_map_finds_an_area_by_its_bounds_not_only_its_centroid(database):
    """A drone scan's area (-59.70…-59.68 W, -3.60…-3.58 S, centroid -59.69, -3.59) whose polygon reaches
    into the box while its centroid lies outside: found, on every backend, and only so."""
    store = Store(database)
    area = area_detection("drone-1", 50)
    beside = detection("unit-1", 51)
    beside["geo"] = {"lat": -3.59, "lon": -59.69, "source": "exif"}  # a point where the area's centroid is
    newer = [detection("unit-1", n) for n in range(60, 70)]
    for k, r in enumerate(newer):
        r["geo"] = {"lat": -3.59, "lon": -59.67 + k / 1000, "source": "exif"}  # east of the area, in the box
    store.save([as_item(r) for r in [area, beside, *newer]])
    straddling = (-59.685, -3.65, -59.60, -3.55)  # its west edge cuts the area's eastern quarter
    assert [r["id"] for r in store.in_box(*straddling)] == newest_first([area, *newer])
    assert [r["id"] for r in store.in_box(*straddling, limit=10)] == newest_first(newer)  # the area is older
    assert [r["id"] for r in store.in_box(-59.75, -3.65, -59.699, -3.599)] == [area["id"]]  # its SW corner
    assert [r["id"] for r in store.in_box(-59.68, -3.58, -59.675, -3.575)] == [area["id"]]  # its NE corner, edges included
    assert store.in_box(-59.6799, -3.5799, -59.6795, -3.5795) == []  # beyond it
    assert store.in_box(-59.75, -3.65, -59.7001, -3.6001) == []
    assert [r["id"] for r in store.in_box(*straddling, device="drone-1")] == [area["id"]]
    assert store.in_box(*straddling, device="drone-1", alert=False) == []
    assert [r["id"] for r in store.in_box(*straddling, label="mining", alert=True)] == \
        newest_first([area, *(r for r in newer if r["alert"])])
    assert [r["id"] for r in store.in_box(*straddling, since=area["time"], until=newer[0]["time"])] == [area["id"]]


def test_the_map_takes_the_event_lists_filters(database):
    store = Store(database)
    records = fill_events(store)
    box = (-61, -5, -59, -2)
    located = [r for r in records if "geo" in r]
    assert [r["id"] for r in store.in_box(*box, device="unit-2")] == newest_first([r for r in located if r["device"] == "unit-2"])
    alerts = [r for r in located if r["alert"]]
    assert [r["id"] for r in store.in_box(*box, alert=True)] == newest_first(alerts)
    assert [r["id"] for r in store.in_box(*box, alert=True, limit=2)] == newest_first(alerts)[:2]
    assert [r["id"] for r in store.in_box(*box, label="not_mining", device="unit-1", limit=1000)] == \
        newest_first([r for r in located if r["device"] == "unit-1" and not r["alert"]])
    window = [r for r in located if "2026-05-01T00:00:20" <= r["time"] < "2026-05-01T00:01:05"]
    assert [r["id"] for r in store.in_box(*box, since="2026-05-01T00:00:20.000Z", until="2026-05-01T00:01:05.000Z")] == \
        newest_first(window)
    assert store.in_box(*box, since="2027-01-01T00:00:00.000Z") == []


def test_the_map_reads_windows_of_capture_time_across_years(database):
    """Capture times every 5 days over two years: the map's widening windows (a day, 4, 16 …) must
    neither miss nor repeat a row, and keep newest first across window edges."""
    store = Store(database)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    records = []
    for k in range(150):
        record = detection("unit-1", k)
        record["time"] = iso_utc(start + timedelta(days=5 * k, seconds=k))
        record["geo"] = {"lat": -3.0 if k % 3 else -8.0, "lon": -60.0 + k / 1000, "source": "exif"}
        records.append(record)
    store.save([as_item(r) for r in records])
    north = [r for r in records if r["geo"]["lat"] == -3.0]
    assert [r["id"] for r in store.in_box(-61, -4, -59, -2, limit=1000)] == newest_first(north)
    assert [r["id"] for r in store.in_box(-61, -4, -59, -2, limit=7)] == newest_first(north)[:7]
    oldest = records[0]  # alone in its box, 745 days before the newest row
    lon = oldest["geo"]["lon"]
    assert [r["id"] for r in store.in_box(lon, -8.5, lon, -7.5)] == [oldest["id"]]


def test_the_map_has_its_spatial_index_where_the_database_has_one(database, request):
    store = Store(database)
    backend = request.node.callspec.params["database"]
    postgis = backend == "postgresql" and request.getfixturevalue("pg_databases").postgis
    record = detection("unit-1", 1)
    store.save([as_item(record), as_item(detection("unit-1", 3))])  # the second has no location
    if backend == "sqlite":  # the R*Tree, kept by a trigger
        assert store.dialect.spatial
        assert store.db.execute("SELECT detection FROM detections_place").fetchall() == [(record["id"],)]
    else:
        assert store.dialect.spatial == postgis
    if postgis:
        point = store.db.execute("SELECT ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM detections "
                                 "WHERE geom IS NOT NULL").fetchall()
        assert point == [(record["geo"]["lon"], record["geo"]["lat"], 4326)]
        index = store.db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'detections_geom'").fetchone()[0]
        assert "USING gist (geom)" in index
