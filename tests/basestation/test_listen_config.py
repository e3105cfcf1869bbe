"""`nv-base listen --config`: notifications fed after each commit, Home Assistant discovery, through a real
mosquitto and real processes; a dead webhook does not slow storing."""

from __future__ import annotations

import time

from broker import wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detections
from notifyservers import dead_webhook, webhook  # noqa: F401  (fixtures)
from test_listener import fill, stored_ids


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
