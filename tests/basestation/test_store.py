"""The base station's database: idempotent by detection id, latest status per unit, counters."""

from __future__ import annotations

import json

from detections import detection

from basestation.payloads import Accepted
from basestation.store import Store


def as_item(record: dict) -> Accepted:
    return Accepted("detection", record["device"], record, record["id"])


def test_a_redelivered_detection_is_stored_once_and_receipted_again(tmp_path):
    store = Store(tmp_path / "b.db")
    records = [detection("unit-1", n) for n in range(5)] + [detection("unit-2", 9)]
    first = store.save([as_item(r) for r in records])
    assert (first.stored, first.duplicates) == (6, 0)
    again = store.save([as_item(r) for r in records[:3]])
    assert (again.stored, again.duplicates) == (0, 3)
    assert again.receipts["unit-1"] == ([r["id"] for r in records[:3]], [])  # a duplicate is confirmed too
    assert store.count() == 6
    assert store.counters() == {"stored": 6, "duplicates": 3}


def test_columns_hold_what_list_and_export_need(tmp_path):
    store = Store(tmp_path / "b.db")
    record = dict(detection("unit-1", 1, alert=True), queued_s=7200.0)
    store.save([as_item(record)])
    (row,) = store.recent(10)
    assert (row["label"], row["alert"], row["queued_s"], row["time"]) == ("mining", 1, 7200.0, record["time"])
    assert (row["lat"], row["lon"]) == (record["geo"]["lat"], record["geo"]["lon"])
    assert json.loads(row["record"]) == record


def test_status_and_health_keep_the_latest(tmp_path):
    store = Store(tmp_path / "b.db")
    status = {"schema": "1.0", "device": "unit-1", "state": "online", "time": "2026-05-01T10:00:00.000Z"}
    store.save([Accepted("status", "unit-1", status)])
    store.save([Accepted("status", "unit-1", dict(status, state="offline", time="2026-05-01T09:59:59.000Z"))])
    store.save([Accepted("health", "unit-1", {"device": "unit-1", "time": "2026-05-01T10:00:01.000Z", "outbox": {"depth": 4}})])
    (device,) = store.devices()
    assert device["state"] == "offline"  # the Last Will's time is its connection's start: arrival order wins
    assert json.loads(device["health"])["outbox"]["depth"] == 4
