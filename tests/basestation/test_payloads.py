"""What the base station accepts, and what it refuses, before anything is stored."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from detections import MODEL, detection, event_phases

from basestation.payloads import MAX_THUMBNAIL_BYTES, Rejected, parse
from edge.audio.records import audio_window_record
from edge.decisions.alerts import Decision
from edge.records.record import SCHEMA_VERSION, error_record


def as_json(value) -> bytes:
    import json

    return json.dumps(value).encode()


def test_a_detection_is_accepted_with_its_id_and_device():
    record = dict(detection("unit-1", 1, tiled=True), queued_s=12.5)
    item = parse("naturevision/unit-1/detection", as_json(record))
    assert (item.kind, item.device, item.id, item.value) == ("detection", "unit-1", record["id"], record)


def test_error_records_and_version_1_0_records_are_still_valid():
    assert SCHEMA_VERSION == "1.3"
    err = error_record(source="card/x.jpg", error="card/x.jpg: empty file (0 bytes)", device="unit-1")
    assert parse("naturevision/unit-1/detection", as_json(err)).kind == "detection"
    old = dict(detection("unit-1", 2), schema="1.0")  # from a unit not yet updated: no queued_s
    assert parse("naturevision/unit-1/detection", as_json(old)).value["schema"] == "1.0"


def test_event_and_audio_window_records_of_1_2_are_accepted():
    for record in event_phases("unit-1"):
        assert parse("naturevision/unit-1/detection", as_json(record)).value["event"]["phase"] == record["event"]["phase"]
    window = audio_window_record(scores=[0.2, 0.8], labels=("background", "excavator"),
                                 decision=Decision("excavator", 0.8, True, 0.5), model=MODEL, source="mic0",
                                 device="unit-1", moment=datetime(2026, 5, 1, tzinfo=timezone.utc), time_source="received",
                                 offset_s=30.5, duration_s=1.0, rms_dbfs=-31.0, sample_rate=16000)
    assert parse("naturevision/unit-1/detection", as_json(window)).value["audio"]["offset_s"] == 30.5
    start = event_phases("unit-1")[0]
    with pytest.raises(Rejected, match="at event/windows"):
        parse("naturevision/unit-1/detection", as_json(dict(start, event=dict(start["event"], windows=0))))


def test_group_scores_and_mean_rules_of_1_3_are_accepted_and_checked():
    window = audio_window_record(scores=[0.05, 0.5, 0.45], labels=("background", "engine", "drilling"),
                                 decision=Decision("machinery", 0.95, True, 0.9, {"machinery": 0.95}), model=MODEL,
                                 source="mic0", device="unit-1", moment=datetime(2026, 5, 1, tzinfo=timezone.utc),
                                 time_source="received", offset_s=30.5, duration_s=1.0, rms_dbfs=-31.0, sample_rate=16000)
    value = parse("naturevision/unit-1/detection", as_json(window)).value
    assert (value["schema"], value["label"], value["group_scores"]) == ("1.3", "machinery", {"machinery": 0.95})
    with pytest.raises(Rejected, match="at group_scores/machinery"):
        parse("naturevision/unit-1/detection", as_json(dict(window, group_scores={"machinery": 1.5})))
    start = event_phases("unit-1")[0]
    mean = dict(start, event=dict(start["event"], rules=dict(start["event"]["rules"], rule="mean", window=4)))
    assert parse("naturevision/unit-1/detection", as_json(mean)).value["event"]["rules"]["rule"] == "mean"
    with pytest.raises(Rejected, match="at event/rules/rule"):
        parse("naturevision/unit-1/detection",
              as_json(dict(start, event=dict(start["event"], rules=dict(start["event"]["rules"], rule="median")))))


@pytest.mark.parametrize("change, reason", [
    ({"queued_s": -1}, "at queued_s"),
    ({"schema": "2.0"}, "at schema"),
    ({"device": "unit-9"}, "payload says device 'unit-9'"),
    ({"score": "high"}, "at score"),
])
def test_bad_detections_are_refused_naming_the_field(change, reason):
    with pytest.raises(Rejected, match=reason):
        parse("naturevision/unit-1/detection", as_json(dict(detection("unit-1", 1), **change)))


def test_a_bad_score_deep_in_a_tile_grid_is_found():
    record = detection("unit-1", 1, tiled=True)
    record["tiles"]["grid"]["mining"][5][7] = "x"
    with pytest.raises(Rejected, match="at tiles/grid/mining/5/7: 'x' is not of type 'number'"):
        parse("naturevision/unit-1/detection", as_json(record))
    record["tiles"]["grid"]["mining"][5][7] = True  # JSON true is not a number either
    with pytest.raises(Rejected, match="tiles/grid/mining/5/7"):
        parse("naturevision/unit-1/detection", as_json(record))


@pytest.mark.parametrize("topic, payload, reason", [
    ("elsewhere/unit-1/detection", b"{}", "not under naturevision/<device>/"),
    ("naturevision/unit-1/receipt", b"{}", "not a topic the base station stores"),
    ("naturevision/unit-1/detection", b"\x00\x01", "not JSON"),
    ("naturevision/unit-1/thumbnail/not-an-id", b"\xff\xd8\xff", "not a detection id"),
    ("naturevision/unit-1/status", b'{"schema": "1.0", "device": "unit-1", "state": "asleep", "time": "2026-05-01T00:00:00Z"}', "at state"),
])
def test_other_refusals(topic, payload, reason):
    with pytest.raises(Rejected, match=reason):
        parse(topic, payload)


def test_thumbnails_must_be_small_jpegs():
    record_id = detection("unit-1", 1)["id"]
    topic = f"naturevision/unit-1/thumbnail/{record_id}"
    assert parse(topic, b"\xff\xd8\xff" + b"x" * 100).id == record_id
    with pytest.raises(Rejected, match="above"):
        parse(topic, b"\xff\xd8\xff" + b"x" * MAX_THUMBNAIL_BYTES)
