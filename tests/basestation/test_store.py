"""The base station's database: idempotent by detection id, latest status per unit, counters."""

from __future__ import annotations

import json

from detections import detection

from basestation.payloads import DEAD_LETTER_PREFIX, Accepted, DeadLetter, parse
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


def test_dead_letters_are_kept_and_counted_by_cause_in_the_same_transaction(tmp_path, monkeypatch):
    monkeypatch.setattr("basestation.store.MAX_DEAD_LETTERS", 3)
    store = Store(tmp_path / "b.db")
    letters = [DeadLetter.of("naturevision/unit-1/detection", b"[" * 2000, "depth", f"too deep {n}") for n in range(4)]
    letters.append(DeadLetter.of("naturevision/unit-1/status", b"\xff", "encoding", "not UTF-8", retained=True))
    store.save([as_item(detection("unit-1", 1))], letters)
    assert store.counters() == {"stored": 1, "rejected": 5, "rejected.depth": 4, "rejected.encoding": 1}
    rows = store.dead_letters(10)
    assert [r["reason"] for r in rows] == ["not UTF-8", "too deep 3", "too deep 2"]  # the newest 3 are kept
    assert (rows[0]["retained"], rows[1]["size"], bytes(rows[1]["prefix"])) == (1, 2000, b"[" * DEAD_LETTER_PREFIX)


def test_an_item_the_database_will_not_take_is_left_out_and_named(tmp_path):
    store = Store(tmp_path / "b.db")
    good = detection("unit-1", 1)
    surrogate = parse("naturevision/unit-1/detection", json.dumps(dict(detection("unit-1", 2), source="\ud800")).encode())
    saved = store.save([as_item(good), surrogate])
    assert store.ids() == [good["id"]] and saved.stored == 1
    ((index, why),) = saved.unstorable
    assert index == 1 and why.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800'")
    assert saved.receipts["unit-1"] == ([good["id"]], [])  # not confirmed: it is not stored
