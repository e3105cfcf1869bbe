"""The heartbeat's probes: they read what the board offers and say null / "unknown" otherwise."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from edge.delivery.health import clock_synchronised, cpu_temperature_c, health_payload, status_payload
from edge.delivery.outbox import OutboxStats
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]


def schema(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path):
    for n, (kind, milli) in enumerate([("battery", "31000"), ("cpu-thermal", "48312"), ("gpu", "50000")]):
        zone = tmp_path / f"thermal_zone{n}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert cpu_temperature_c(tmp_path) == 48.3


def test_cpu_temperature_is_none_where_unreadable(tmp_path):
    assert cpu_temperature_c(tmp_path / "absent") is None
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "temp").write_text("garbage")
    assert cpu_temperature_c(tmp_path) is None


def test_clock_answer_has_one_of_three_values():
    answer = clock_synchronised()
    assert answer["synchronized"] in (True, False, "unknown")
    assert answer["source"] in ("timedatectl", "adjtimex", None)
    assert (answer["source"] is None) == (answer["synchronized"] == "unknown")


def test_payloads_match_their_schemas(tmp_path):
    stats = OutboxStats(depth=3, unsent=1, bytes=4096, oldest_queued=time.time() - 90,
                        evicted={"thumbnail": 0, "routine": 2, "alert": 0}, commits=7)
    health = json.loads(health_payload("unit-1", started=time.monotonic() - 5, stats=stats, outbox_dir=tmp_path,
                                       models=({"name": "m", "version": "1", "sha256": "ab" * 32},), protocol="5"))
    schema("health").validate(health)
    assert health["outbox"]["depth"] == 3 and 89 <= health["outbox"]["oldest_age_s"] < 120
    assert health["uptime_s"] >= 5 and health["disk_free_bytes"] > 0
    assert "skipped_files" not in health  # nv-edge publish has no sources to count
    for state in ("online", "offline", "stopped"):
        schema("status").validate(json.loads(status_payload("unit-1", state)))


def test_the_count_of_skipped_files_is_an_optional_field(tmp_path):
    stats = OutboxStats(depth=0, unsent=0, bytes=0, oldest_queued=None, evicted={}, commits=0)
    health = json.loads(health_payload("unit-1", started=time.monotonic(), stats=stats, outbox_dir=tmp_path,
                                       models=(), protocol="5", skipped_files=3))
    schema("health").validate(health)
    assert health["skipped_files"] == 3
    assert not schema("health").is_valid(health | {"skipped_files": -1})
    assert not schema("health").is_valid(health | {"skipped_files": "3"})
