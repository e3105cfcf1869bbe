"""Migrations 4 to 9: the page's tables, once made by `nv-base serve`, `user` and `unit` themselves, and
the places of drone scans' area records. A SQLite store made by the code before them upgrades in place,
keeping every row; area records stored without a location get their polygon's centroid, and those
stored with only their centroid get their bounds, on every backend."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import store_v0
import web_v0
from detections import area_detection, detection, detections

from basestation import accounts, migrate, reviews
from basestation.database import connect
from basestation.payloads import Accepted
from basestation.places import area_centre
from basestation.store import Store

PAGE_TABLES = ("users", "sessions", "login_failures", "reviews", "audio_segments", "units")
TOKEN = "an-old-session-token"
NOW = 1_780_000_000.0  # unix time of the old rows (2026-05-28)


def as_items(records: list[dict]) -> list[Accepted]:
    return [Accepted("detection", r["device"], r, r["id"]) for r in records]


def old_page_rows(db: sqlite3.Connection, alert: dict) -> None:
    """Rows in every page table, as the old code wrote them: an account with a live session and a failed
    login, two verdicts on one record given within one clock tick, an audio segment, a unit."""
    db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", ("ana", "reviewer", accounts.hash_password("ana-password"), NOW))
    db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
               (accounts._token_hash(TOKEN), "ana", "csrf-1", NOW, NOW + 10 * 365 * 86400))
    db.execute("INSERT INTO login_failures VALUES (?, ?, ?, ?)", ("0190aaaa-0000-7000-8000-000000000001", "bob", "10.0.0.9", NOW))
    for review_id, verdict in (("0190ffff-0000-7000-8000-000000000000", "unsure"),
                               ("0190aaaa-0000-7000-8000-000000000000", "confirmed")):  # the later one sorts first by id
        db.execute("INSERT INTO reviews VALUES (?, 'detection', ?, ?, ?, '', 'ana', ?)",
                   (review_id, alert["id"], alert["id"], verdict, NOW))
    db.execute("INSERT INTO audio_segments VALUES (?, ?, ?, ?, ?)", (alert["id"], alert["device"], NOW, "audio/wav", b"RIFF"))
    db.execute("INSERT INTO units VALUES ('unit-1', 'active', ?, ?, 'a1b2', '2028-08-01')", (NOW, NOW))


def page_rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in PAGE_TABLES}


def index_columns(db, name: str) -> tuple[str, ...]:
    return tuple(row[2] for row in db.execute(f"PRAGMA index_info({name})"))


def test_a_store_whose_page_made_its_own_tables_upgrades_in_place_keeping_every_row(tmp_path):
    path = tmp_path / "base.db"
    db, dialect = connect(path)
    migrate.migrate(db, dialect, str(path), upto=3)  # the store of the code before migration 4
    db.close()
    old = store_v0.Store(path)  # writes as that code did: an area record without a location
    records = detections("unit-1", 20) + [detection("unit-1", 30, alert=True)]
    area = area_detection("drone-1", 40)
    old.save(as_items(records + [area]))
    web_v0.create_tables(old.db)
    old_page_rows(old.db, records[-1])
    old.close()
    before = page_rows(path)
    assert all(before[t] for t in PAGE_TABLES)

    store = Store(path)
    assert store.migrated == list(range(4, migrate.latest() + 1))
    assert page_rows(path) == before  # nothing lost, nothing changed
    assert accounts.session(store, TOKEN).name == "ana"  # the open session still holds
    assert accounts.log_in(store, "ana", "ana-password", "127.0.0.1") is not None
    assert accounts.retry_after(store, "bob", "10.0.0.9") == 0  # one old failure, far under the limit
    assert reviews.latest(store, [records[-1]["id"]])[records[-1]["id"]].verdict == "confirmed"  # given last
    reviews.add_review(store, target_kind="detection", target=records[-1]["id"], verdict="false_alarm", note="",
                       reviewer="ana")
    assert reviews.latest(store, [records[-1]["id"]])[records[-1]["id"]].verdict == "false_alarm"
    assert index_columns(store.db, "detections_device_time") == ("device", "time", "id")
    centre = area_centre(area["area"])
    (row,) = store.query("SELECT lat, lon FROM detections WHERE id = ?", (area["id"],))
    assert (row["lat"], row["lon"]) == (centre["lat"], centre["lon"])
    located = store.execute("SELECT count(*) FROM detections WHERE lat IS NOT NULL").fetchone()[0]
    assert store.execute("SELECT count(*) FROM detections_place").fetchone()[0] == located  # the area is on the map
    assert area["id"] in [r["id"] for r in store.in_box(-59.70, -3.60, -59.68, -3.58)]
    store.close()


def test_a_pre_migration_store_where_the_page_ran_gets_the_event_lists_index(tmp_path):
    path = tmp_path / "base.db"
    old = store_v0.Store(path)
    records = detections("unit-1", 10)
    old.save(as_items(records))
    web_v0.create_tables(old.db)  # its detections_device_time is (device, time): migration 2 left it so
    assert index_columns(old.db, "detections_device_time") == ("device", "time")
    old_page_rows(old.db, records[-1])
    old.close()
    before = page_rows(path)

    store = Store(path)
    assert store.migrated == list(range(1, migrate.latest() + 1))
    assert index_columns(store.db, "detections_device_time") == ("device", "time", "id")
    assert page_rows(path) == before
    assert [r["id"] for r in store.events(device="unit-1", limit=3)] == [r["id"] for r in records[::-1][:3]]
    store.close()


def test_area_records_stored_without_a_place_get_their_centroid(database):
    db, dialect = connect(database)
    migrate.migrate(db, dialect, "test", upto=7)
    area = area_detection("drone-1", 40)
    db.execute(dialect.sql("INSERT INTO detections (id, device, time, received, kind, source, label, score, alert, "
                           "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
               (area["id"], "drone-1", area["time"], NOW, "image", area["source"], area["label"], area["score"], 1,
                json.dumps(area)))
    db.close()
    store = Store(database)
    assert store.migrated == list(range(8, migrate.latest() + 1))
    (row,) = store.in_box(-59.70, -3.60, -59.68, -3.58)
    assert row["id"] == area["id"]
    centre = area_centre(area["area"])
    assert abs(row["lat"] - centre["lat"]) < 1e-9 and abs(row["lon"] - centre["lon"]) < 1e-9
    assert store.in_box(-59.66, -3.60, -59.60, -3.50) == []  # east of the area
    store.close()


def test_area_records_stored_at_their_centroid_get_their_bounds(database):
    """Stored by migration 8's code (the centroid in lat/lon, on SQLite in the R*Tree as a point):
    after migration 9 a box over the area's corner, away from its centroid, finds it."""
    db, dialect = connect(database)
    migrate.migrate(db, dialect, "test", upto=8)
    area, point = area_detection("drone-1", 40), detection("unit-1", 41)  # the area: -59.70…-59.68, -3.60…-3.58
    centre = area_centre(area["area"])
    for r, (lat, lon) in ((area, (centre["lat"], centre["lon"])), (point, (point["geo"]["lat"], point["geo"]["lon"]))):
        db.execute(dialect.sql("INSERT INTO detections (id, device, time, received, kind, source, label, score, alert, "
                               "lat, lon, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                   (r["id"], r["device"], r["time"], NOW, "image", r["source"], r["label"], r["score"], int(r["alert"]),
                    lat, lon, json.dumps(r)))
    db.close()
    store = Store(database)
    assert store.migrated == list(range(9, migrate.latest() + 1))
    corner = (-59.75, -3.65, -59.699, -3.599)  # holds the area's south-west corner, not its centre (-59.69, -3.59)
    assert [r["id"] for r in store.in_box(*corner)] == [area["id"]]
    assert store.in_box(-59.75, -3.65, -59.7001, -3.6001) == []  # beside the corner
    row = store.query("SELECT south, north, west, east FROM detections WHERE id = ?", (area["id"],))[0]
    assert [row[k] for k in ("south", "north", "west", "east")] == [-3.60, -3.58, -59.70, -59.68]
    assert store.query("SELECT south FROM detections WHERE id = ?", (point["id"],))[0]["south"] is None
    store.close()
