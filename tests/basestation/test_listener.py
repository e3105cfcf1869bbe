"""`nv-base listen` against a real mosquitto: bad and hostile payloads, a SIGKILL mid-stream, shared subscriptions."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from broker import ROOT, wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detection, detections
from hostile import NESTING_BOMB, big_valid_record, causes, hostile_payloads

from basestation.store import Store
from edge.delivery.outbox import Outbox


def stored_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return [row[0] for row in con.execute("SELECT id FROM detections")]
    except sqlite3.OperationalError:  # no such table: nv-base is still migrating the new file
        return []


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


# -- hostile payloads: survive, keep as dead letters, acknowledge --------------------------------

def dead_letters(db: Path) -> list[tuple]:
    """(topic, cause, size, retained) of every dead letter, oldest first; [] before there is a table."""
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT topic, cause, size, retained FROM dead_letters ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # no such table (or no database yet)
        return []


def publish_all(client, messages: list[tuple[str, bytes, bool]]) -> None:
    """QoS 1 from a plain paho client; returns once the broker has acknowledged every one."""
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()


def as_message(record: dict) -> tuple[str, bytes, bool]:
    return f"naturevision/{record['device']}/detection", json.dumps(record).encode(), False


def wait_stored(listener, db: Path, count: int, dead: int, timeout: float = 30) -> None:
    def done():
        if listener.popen.poll() is not None:
            raise AssertionError(f"nv-base listen exited with {listener.popen.returncode}:\n{listener.text()[-3000:]}")
        return len(stored_ids(db)) >= count and len(dead_letters(db)) >= dead
    wait_for(done, timeout, f"{count} stored and {dead} dead letters in {db}")


def test_a_2kb_nesting_bomb_becomes_a_dead_letter_and_is_not_redelivered(site, tmp_path):
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    good = detections("unit-1", 20)
    publish_all(site.mqtt_client("unit-1", "rogue-unit-1"),
                [("naturevision/unit-1/detection", NESTING_BOMB, False)] + [as_message(r) for r in good])
    wait_stored(listener, db, 20, 1)
    assert sorted(stored_ids(db)) == sorted(r["id"] for r in good)
    assert dead_letters(db) == [("naturevision/unit-1/detection", "depth", 2000, 0)]
    assert "arrays and objects nested deeper than 32 levels" in listener.text()
    assert listener.stop() == 0
    again = site.listener(db)  # same client id: the broker resumes the session, with nothing left in it
    again.wait_log("session resumed")
    sentinel = detection("unit-1", 99)
    publish_all(site.mqtt_client("unit-1", "unit-1"), [as_message(sentinel)])
    wait_stored(again, db, 21, 1)
    assert len(dead_letters(db)) == 1 and "rejected a message" not in again.text()


def test_a_retained_bomb_on_status_does_not_stop_a_brand_new_listener(site, tmp_path):
    site.broker.start()
    publish_all(site.mqtt_client("unit-1", "rogue-unit-1"), [("naturevision/unit-1/status", NESTING_BOMB, True)])
    db = tmp_path / "fresh.db"  # a new database and a new client id: a new session
    listener = site.listener(db)
    listener.wait_log("session new")
    good = detections("unit-1", 20)
    publish_all(site.mqtt_client("unit-1", "unit-1"), [as_message(r) for r in good])
    wait_stored(listener, db, 20, 1)
    assert dead_letters(db) == [("naturevision/unit-1/status", "depth", 2000, 1)]
    assert listener.popen.poll() is None


def test_a_listener_survives_100_hostile_payloads_among_1000_good_records(site, tmp_path):
    """Interleaved, one stream: every hostile payload is refused, kept, counted and acknowledged;
    every good record is stored; a restart is not fed any of them again."""
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    good = detections("unit-1", 1000)
    hostile = hostile_payloads("unit-1")
    stream = [as_message(r) for r in good]
    for i, h in enumerate(hostile):
        stream.insert(i * 11 + 5, (h.topic, h.payload, h.retain))
    publish_all(site.mqtt_client("unit-1", "rogue-unit-1"), stream)
    wait_stored(listener, db, 1000, 100, timeout=45)
    assert sorted(stored_ids(db)) == sorted(r["id"] for r in good)
    letters = dead_letters(db)
    assert len(letters) == 100
    counters = Store(db).counters()
    assert (counters["stored"], counters["rejected"]) == (1000, 100)
    assert {cause: counters[f"rejected.{cause}"] for cause in causes(hostile)} == causes(hostile)
    assert max(size for _, _, size, _ in letters) > 5_000_000  # its size is kept, not its payload
    assert listener.popen.poll() is None and "Traceback" not in listener.text()
    assert listener.stop() == 0
    again = site.listener(db)
    again.wait_log("session resumed")
    sentinel = detection("unit-1", 5000)
    publish_all(site.mqtt_client("unit-1", "unit-1"), [as_message(sentinel)])
    wait_stored(again, db, 1001, 100)
    assert len(dead_letters(db)) == 100  # acknowledged: nothing redelivered, the retained status not resent
    assert "rejected a message" not in again.text()


def test_a_valid_5mb_record_and_nan_scores_are_refused_not_stored_nor_exported(site, tmp_path):
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    nan = detection("unit-1", 1, alert=True)
    nan["score"], nan["geo"]["lat"] = float("nan"), float("nan")  # json.dumps writes NaN, and json.loads read it
    good = detections("unit-1", 20, start=2)
    publish_all(site.mqtt_client("unit-1", "rogue-unit-1"),
                [("naturevision/unit-1/detection", big_valid_record("unit-1"), False), as_message(nan)]
                + [as_message(r) for r in good])
    wait_stored(listener, db, 20, 0)  # the two came first: their dead letters are committed by now
    assert sorted(stored_ids(db)) == sorted(r["id"] for r in good)
    assert [(cause, size > 5_000_000) for _, cause, size, _ in dead_letters(db)] == [("size", True), ("number", False)]
    csv = subprocess.run([sys.executable, "-m", "basestation.cli", "export", "--db", str(db), "--format", "csv"],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert csv.returncode == 0 and len(csv.stdout.splitlines()) == 1 + 20
