"""`nv-edge publish` against a real mosquitto, with real faults: the broker SIGKILLed and restarted,
the publisher SIGKILLed, the broker down, wrong credentials, the ACL. Real processes, no mocks."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from broker import wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detections
from imagefiles import encode, scene_with_block
from PIL import Image

from basestation.store import Store
from edge.delivery.outbox import Outbox
from edge.model.bundle import read_bundle
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = {name: jsonschema.Draft202012Validator(load_schema(name))
           for name in ("detection", "status", "health")}


def fill(path: Path, records: list[dict], **kwargs) -> None:
    with Outbox(path, batch=500, **kwargs) as outbox:
        for record in records:
            outbox.put(record)


def depth(path: Path) -> int:
    with Outbox(path) as outbox:
        return outbox.depth()


def stored(db: Path) -> tuple[int, int]:
    """(rows, distinct ids) in the base station's database."""
    if not db.exists():
        return (0, 0)
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT count(*), count(DISTINCT id) FROM detections").fetchone()
    except sqlite3.OperationalError:  # no such table: nv-base is still migrating the new file
        return (0, 0)


def test_delivers_oldest_first_late_records_keep_their_time_and_status_is_retained(site, tmp_path):
    site.broker.start()
    base = site.listener(tmp_path / "base.db")
    base.wait_log("listening on")
    records = detections("unit-1", 300)
    fill(tmp_path / "outbox.db", records, clock=lambda: time.time() - 3600)  # queued an hour ago
    pub = site.publisher(tmp_path / "outbox.db")
    wait_for(lambda: stored(tmp_path / "base.db")[0] == 300, 60, "300 detections stored")
    with sqlite3.connect(tmp_path / "base.db") as con:
        rows = con.execute("SELECT id, time, queued_s, record FROM detections ORDER BY rowid").fetchall()
    assert [r[0] for r in rows] == [r["id"] for r in records]  # in the order they were written
    for (_, time_, queued_s, raw), record in zip(rows, records):
        assert time_ == record["time"]  # the capture time, not the delivery time
        assert 3600 <= queued_s < 3600 + 120  # and it says how long it waited
        SCHEMAS["detection"].validate(json.loads(raw))
    wait_for(lambda: depth(tmp_path / "outbox.db") == 0, 30, "receipts to empty the outbox")

    status = site.retained("naturevision/unit-1/status")
    SCHEMAS["status"].validate(status)
    assert status["state"] == "online" and status["device"] == "unit-1"
    health = site.retained("naturevision/unit-1/health")
    SCHEMAS["health"].validate(health)
    assert health["device"] == "unit-1" and health["outbox"]["evicted"] == {"thumbnail": 0, "routine": 0, "alert": 0}
    assert health["clock"]["synchronized"] in (True, False, "unknown")

    assert pub.stop() == 0
    assert site.retained("naturevision/unit-1/status")["state"] == "stopped"
    assert base.stop() == 0
    base_db = Store(tmp_path / "base.db")
    (device,) = base_db.devices()
    assert device["state"] == "stopped" and json.loads(device["health"])["device"] == "unit-1"


def test_ten_thousand_detections_through_five_broker_kills(site, tmp_path):
    """The broker is SIGKILLed (it loses whatever it had not saved) and restarted five times while
    10,000 detections flow: the base station ends with each of them exactly once."""
    site.broker.start()
    db = tmp_path / "base.db"
    site.listener(db).wait_log("listening on")
    records = detections("unit-1", 10_000)
    pub = site.publisher(tmp_path / "outbox.db")
    in_flight_at_kill = []
    with Outbox(tmp_path / "outbox.db", batch=500) as outbox:
        for k in range(5):
            for record in records[k * 2000:(k + 1) * 2000]:
                outbox.put(record)
            outbox.flush()
            wait_for(lambda: stored(db)[0] >= k * 2000 + 200, 90, f"chunk {k} to start arriving")
            site.broker.kill()
            in_flight_at_kill.append((k + 1) * 2000 - stored(db)[0])
            site.broker.start()
    assert site.broker.starts == 6
    assert all(n > 0 for n in in_flight_at_kill), in_flight_at_kill  # every kill hit mid-stream
    wait_for(lambda: stored(db)[0] >= 10_000, 120, "all 10,000 detections")
    assert stored(db) == (10_000, 10_000)
    assert set(Store(db).ids()) == {r["id"] for r in records}
    wait_for(lambda: depth(tmp_path / "outbox.db") == 0, 60, "receipts to empty the outbox")
    assert pub.popen.poll() is None  # it rode out every restart


def test_publisher_sigkilled_mid_stream_loses_nothing(site, tmp_path):
    site.broker.start()
    db = tmp_path / "base.db"
    site.listener(db).wait_log("listening on")
    records = detections("unit-1", 3000)
    fill(tmp_path / "outbox.db", records)
    pub = site.publisher(tmp_path / "outbox.db", extra=("--confirm", "puback"))
    wait_for(lambda: stored(db)[0] >= 300 and depth(tmp_path / "outbox.db") < 3000, 60,
             "the stream to start and the first PUBACKs to be committed")
    pub.kill()
    assert stored(db)[0] < 3000
    assert site.retained("naturevision/unit-1/status")["state"] == "offline"  # the Last Will
    left = depth(tmp_path / "outbox.db")
    assert 0 < left < 3000

    site.publisher(tmp_path / "outbox.db", extra=("--confirm", "puback", "--until-empty")).popen.wait(timeout=120)
    wait_for(lambda: stored(db)[0] >= 3000, 60, "all 3000")
    assert stored(db) == (3000, 3000)
    assert depth(tmp_path / "outbox.db") == 0


def test_broker_down_for_the_whole_run_then_everything_arrives(site, tmp_path):
    fill(tmp_path / "outbox.db", detections("unit-1", 1000))
    pub = site.publisher(tmp_path / "outbox.db", extra=("--until-empty",))
    pub.wait_log("connection refused")
    pub.wait_log("the outbox keeps 1000 record(s)")
    assert depth(tmp_path / "outbox.db") == 1000
    site.broker.start()
    site.listener(tmp_path / "base.db")
    assert pub.popen.wait(timeout=120) == 0  # --until-empty: exits once every record is receipted
    assert stored(tmp_path / "base.db") == (1000, 1000)


def test_no_subscriber_yet_means_the_records_wait(site, tmp_path):
    """A broker with nobody subscribed drops messages ("no matching subscribers"): the unit keeps them."""
    site.broker.start()
    fill(tmp_path / "outbox.db", detections("unit-1", 100))
    pub = site.publisher(tmp_path / "outbox.db", extra=("--confirm", "puback"))
    pub.wait_log("has no subscriber for naturevision/unit-1/detection")
    assert depth(tmp_path / "outbox.db") == 100
    site.listener(tmp_path / "base.db")
    wait_for(lambda: stored(tmp_path / "base.db")[0] == 100, 60, "the 100 after nv-base subscribed")
    wait_for(lambda: depth(tmp_path / "outbox.db") == 0, 30, "the outbox to empty")


@pytest.mark.parametrize("fault, expected", [
    ("password", "refused user 'unit-1': Not authorized; check --username/--password-file"),
    ("ca", "does not verify against --cafile"),
    ("acl", "Not authorized. The broker's ACL lets a unit write only under naturevision/<its user name>/"),
])
def test_refusals_are_explained_and_the_outbox_is_kept(site, tmp_path, fault, expected):
    site.broker.start()
    db = tmp_path / "base.db"
    site.listener(db).wait_log("listening on")
    fill(tmp_path / "outbox.db", detections("unit-2" if fault == "acl" else "unit-1", 50))
    kwargs = {"password": dict(password="not-the-password"), "ca": dict(cafile=site.pki.rogue_ca),
              "acl": dict(device="unit-2", user="unit-1")}[fault]
    pub = site.publisher(tmp_path / "outbox.db", **kwargs)
    pub.wait_log(expected)
    assert pub.popen.poll() is None  # it keeps trying: the broker side may be fixed
    assert pub.stop() == 0
    assert depth(tmp_path / "outbox.db") == 50
    assert stored(db)[0] == 0
    if fault == "ca":
        assert str(site.pki.rogue_ca) in pub.text()


def test_commands_take_known_verbs_only(site, tmp_path):
    site.broker.start()
    fill(tmp_path / "outbox.db", [])
    pub = site.publisher(tmp_path / "outbox.db", extra=("--heartbeat", "3600"))
    pub.wait_log("connected to")
    first = site.retained("naturevision/unit-1/health")["time"]
    base = site.mqtt_client("nv-base", "commander")
    base.loop_start()
    for payload in (b"rm -rf /", b"\xff\xfe", b"heartbeat"):
        base.publish("naturevision/unit-1/command", payload, qos=1).wait_for_publish(10)
    pub.wait_log("command 'heartbeat'")
    base.loop_stop()
    assert "ignored command 'rm -rf /'" in pub.text()
    assert pub.text().count("ignored command") == 2
    wait_for(lambda: site.retained("naturevision/unit-1/health")["time"] > first, 10, "a heartbeat on command")


def test_mqtt_3_1_1_is_selectable(site, tmp_path):
    site.broker.start()
    db = tmp_path / "base.db"
    site.listener(db, extra=("--mqtt", "3.1.1")).wait_log("listening on")
    fill(tmp_path / "outbox.db", detections("unit-1", 200))
    pub = site.publisher(tmp_path / "outbox.db", extra=("--mqtt", "3.1.1", "--until-empty"))
    assert pub.popen.wait(timeout=60) == 0
    assert stored(db) == (200, 200)
    assert "(MQTT 3.1.1" in pub.text()


def test_classify_into_the_outbox_then_publish_with_thumbnails(site, tmp_path, tiny_int8):
    """The whole path: nv-edge classify --outbox --thumbnails, nv-edge publish, nv-base listen."""
    frames = tmp_path / "card"
    frames.mkdir()
    (frames / "scene.png").write_bytes(encode(scene_with_block(), "PNG"))
    (frames / "broken.jpg").write_bytes(b"not a jpeg")
    cmd = [sys.executable, "-m", "edge.cli", "classify", str(frames), "--model", str(tiny_int8),
               "--device", "unit-1", "--outbox", str(tmp_path / "outbox.db"), "--thumbnails", "--threshold", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert depth(tmp_path / "outbox.db") == 3  # two records and the alert's thumbnail

    site.broker.start()
    site.listener(tmp_path / "base.db").wait_log("listening on")
    pub = site.publisher(tmp_path / "outbox.db", extra=("--until-empty", "--model", str(tiny_int8)))
    assert pub.popen.wait(timeout=60) == 0
    base = Store(tmp_path / "base.db")
    assert {r["id"] for r in base.detections()} == {r["id"] for r in printed}
    scene = next(r for r in printed if r["source"].endswith("scene.png"))
    (jpeg,) = base.db.execute("SELECT jpeg FROM thumbnails WHERE id = ?", (scene["id"],)).fetchone()
    thumb = Image.open(io.BytesIO(jpeg))
    assert thumb.format == "JPEG" and max(thumb.size) <= 128 and len(jpeg) <= 16 * 1024
    manifest = read_bundle(tiny_int8).manifest
    health = json.loads(base.devices()[0]["health"])
    assert health["models"] == [{"name": manifest.name, "version": manifest.version, "sha256": manifest.model_sha256}]
