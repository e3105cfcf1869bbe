"""`nv-base listen` against a real mosquitto: bad payloads, a SIGKILL mid-stream, shared subscriptions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from broker import wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detection, detections

from basestation.store import Store
from edge.delivery.outbox import Outbox


def stored_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as con:
        return [row[0] for row in con.execute("SELECT id FROM detections")]


def fill(path: Path, records: list[dict]) -> None:
    with Outbox(path, batch=500) as outbox:
        for record in records:
            outbox.put(record)


def test_malformed_payloads_are_logged_counted_never_stored(site, tmp_path):
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    good = detection("unit-1", 1)
    no_score = {k: v for k, v in detection("unit-1", 2).items() if k != "score"}
    spoofed = detection("unit-2", 3)  # unit-1 may not speak for unit-2
    bad = [
        ("naturevision/unit-1/detection", b"{not json"),
        ("naturevision/unit-1/detection", b"\xff\xfe\x00"),
        ("naturevision/unit-1/detection", json.dumps(no_score).encode()),
        ("naturevision/unit-1/detection", json.dumps(dict(detection("unit-1", 4), schema="2.0")).encode()),
        ("naturevision/unit-1/detection", json.dumps(spoofed).encode()),
        ("naturevision/unit-1/detection", b"[1, 2, 3]"),
        (f"naturevision/unit-1/thumbnail/{good['id']}", b"GIF89a not a jpeg"),
        ("naturevision/unit-1/status", b'{"state": "dancing"}'),
    ]
    client = site.mqtt_client("unit-1", "rogue-unit-1")
    client.loop_start()
    for topic, payload in bad + [("naturevision/unit-1/detection", json.dumps(good).encode())]:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    wait_for(lambda: stored_ids(db) == [good["id"]], 30, "the good record after the bad ones")
    text = listener.text()
    assert text.count("rejected a message") == len(bad)
    assert "not JSON" in text
    assert "does not match detection.schema.json at the top level: fits neither shape" in text
    assert "'score' is a required property" in text
    assert "at schema" in text  # the 2.0 record: the field that is wrong is named
    assert "payload says device 'unit-2', but only 'unit-1' may write here" in text
    assert "not a JPEG" in text
    assert listener.popen.poll() is None  # still listening
    listener.stop()
    store = Store(db)
    assert store.counters()["rejected"] == len(bad)
    assert store.db.execute("SELECT count(*) FROM thumbnails").fetchone()[0] == 0
    assert [d["state"] for d in store.devices()] in ([], [None])  # the bad status was not stored


def test_base_station_sigkilled_mid_stream_loses_nothing(site, tmp_path):
    """Only manual acks protect these: the unit deletes on the broker's PUBACK (--confirm puback),
    so a message the listener had acknowledged before committing it would be gone for good."""
    site.broker.start()
    db = tmp_path / "base.db"
    site.listener(db).wait_log("listening on")  # our persistent session exists from here on
    records = detections("unit-1", 4000)
    fill(tmp_path / "outbox.db", records)
    site.publisher(tmp_path / "outbox.db", extra=("--confirm", "puback"))
    wait_for(lambda: len(stored_ids(db)) >= 400, 60, "the stream to start")
    site.procs[0].kill()
    at_kill = len(stored_ids(db))
    assert at_kill < 4000
    wait_for(lambda: _outbox_depth(tmp_path / "outbox.db") == 0, 60,
             "the unit to hand everything to the broker while nv-base is down")
    site.listener(db).wait_log("session resumed")
    wait_for(lambda: len(stored_ids(db)) >= 4000, 60, "all 4000 after the restart")
    assert sorted(stored_ids(db)) == sorted(r["id"] for r in records)


def _outbox_depth(path: Path) -> int:
    with Outbox(path) as outbox:
        return outbox.depth()


def test_shared_subscription_splits_the_load_between_workers(site, tmp_path):
    site.broker.start()
    first = site.listener(tmp_path / "worker-a.db", extra=("--group", "stations"))
    second = site.listener(tmp_path / "worker-b.db", extra=("--group", "stations"))
    first.wait_log("shared group stations")
    second.wait_log("shared group stations")
    records = detections("unit-1", 2000)
    fill(tmp_path / "outbox.db", records)
    pub = site.publisher(tmp_path / "outbox.db", extra=("--until-empty",))
    assert pub.popen.wait(timeout=120) == 0  # every record receipted by one worker or the other
    a, b = set(stored_ids(tmp_path / "worker-a.db")), set(stored_ids(tmp_path / "worker-b.db"))
    assert a and b and not a & b
    assert a | b == {r["id"] for r in records}
    for db in ("worker-a.db", "worker-b.db"):  # status is not shared: every worker knows every unit
        wait_for(lambda: [d["device"] for d in Store(tmp_path / db).devices()] == ["unit-1"], 10, f"unit-1 in {db}")
