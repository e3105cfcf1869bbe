"""`nv-base listen --config`: notifications fed after each commit, Home Assistant discovery, through a real
mosquitto and real processes; a dead webhook does not slow storing; a notification pending when the
listener stops is sent once when it starts again, and `nv-base notifications` says where each stands."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from broker import free_port, wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detections
from notifyservers import Webhook, dead_webhook, webhook  # noqa: F401  (fixtures)
from test_listener import fill, stored_ids

ROOT = Path(__file__).resolve().parents[2]


def test_dead_webhook_does_not_slow_storing_and_units_are_announced(site, tmp_path, webhook, dead_webhook):
    site.broker.start()
    config = tmp_path / "base.toml"
    config.write_text(f"""
[homeassistant]
enabled = true

[[rules]]
name = "dead"
webhook = "{dead_webhook.url}"
timeout_s = 30
retries = 5

[[rules]]
name = "alive"
labels = ["mining"]
webhook = "{webhook.url}"
max_per_hour = 1000
""")
    db = tmp_path / "base.db"
    listener = site.listener(db, extra=("--config", str(config)))
    listener.wait_log("listening on")
    assert "notifications: dead (webhook), alive (webhook)" in listener.text()
    records = detections("unit-1", 300)  # every 10th an alert
    fill(tmp_path / "outbox.db", records)
    began = time.monotonic()
    pub = site.publisher(tmp_path / "outbox.db", extra=("--until-empty",))
    assert pub.popen.wait(timeout=60) == 0  # every record stored and receipted
    took = time.monotonic() - began
    assert sorted(stored_ids(db)) == sorted(r["id"] for r in records)
    assert took < 25, f"storing 300 records took {took:.1f} s with a webhook that never answers (timeout 30 s)"
    wait_for(lambda: len(webhook.bodies) == 30, 20, "the live webhook's 30 alerts")
    assert {b["id"] for b in webhook.bodies} == {r["id"] for r in records if r["alert"]}
    state = site.retained("homeassistant/sensor/naturevision_unit-1/state/config")
    assert state["state_topic"] == "naturevision/unit-1/status" and state["unique_id"] == "naturevision_unit-1_state"
    assert state["device"]["identifiers"] == ["naturevision_unit-1"]
    last = site.retained("homeassistant/sensor/naturevision_unit-1/last_detection/config")
    assert last["state_topic"] == "naturevision/unit-1/detection"
    assert listener.stop() == 0


def notifications(db: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "basestation.cli", "notifications", "--db", str(db), *args],
                          check=True, capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return proc.stdout


def attempts(db: Path) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as con:
        return con.execute("SELECT record, state, attempts FROM notifications").fetchall()


def test_a_notification_pending_when_the_listener_stops_is_sent_once_after_it_starts_again(site, tmp_path):
    site.broker.start()
    port = free_port()  # the webhook is down: nothing listens there
    config = tmp_path / "base.toml"
    config.write_text(f"""
[[rules]]
name = "ops"
webhook = "http://127.0.0.1:{port}/hook"
retries = 30
""")
    db = tmp_path / "base.db"
    listener = site.listener(db, extra=("--config", str(config)))
    listener.wait_log("listening on")
    records = detections("unit-1", 10)  # the first is an alert
    (alert,) = [r for r in records if r["alert"]]
    fill(tmp_path / "outbox.db", records)
    assert site.publisher(tmp_path / "outbox.db", extra=("--until-empty",)).popen.wait(timeout=60) == 0
    wait_for(lambda: [a for a in attempts(db) if a[2] >= 1], 30, "a first attempt against the webhook that is down")
    assert listener.stop() == 0
    ((record, state, tried),) = attempts(db)
    assert (record, state) == (alert["id"], "pending") and tried >= 1
    shown = notifications(db)
    assert "ops" in shown.splitlines()[1] and shown.splitlines()[1].split()[1:4] == ["1", "0", "0"]  # pending, sent, failed
    assert "Connection refused" in shown

    hook = Webhook(port=port)  # the webhook is back
    try:
        listener = site.listener(db, extra=("--config", str(config)))
        wait_for(lambda: attempts(db)[0][1] == "sent", 30, "the pending notification to be sent after the restart")
        assert listener.stop() == 0
        assert [b["id"] for b in hook.bodies] == [alert["id"]] and hook.attempts == 1  # once
        assert notifications(db).splitlines()[1].split()[1:4] == ["0", "1", "0"]
    finally:
        hook.close()
