"""Event and audio-window records (schema 1.3) against the JSON Schema, and older records still valid."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from detections import MODEL, detection

from edge.audio.records import audio_window_record
from edge.decisions.alerts import Decision
from edge.decisions.events import EventRules, EventTracker
from edge.records.record import SCHEMA_VERSION, error_record, event_record
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"),
                                            format_checker=jsonschema.FormatChecker())
LABELS = ("background", "excavator")
RULES = EventRules(k=2, n=3, hysteresis=0.1, cooldown_s=30.0, update_s=5.0, max_gap_s=5.0)
CLIP_START = datetime(2026, 5, 1, 16, 0, 0, tzinfo=timezone.utc)


def phases(first: float = 0.0):
    """start, update, end of one event: 12 windows of an excavator from `first` seconds on."""
    tracker = EventTracker(LABELS, {"excavator": 0.5}, RULES)
    events = []
    for i, score in enumerate([0.2, 0.8, 0.9, 0.95] + [0.85] * 10 + [0.1] * 3):
        t = first + i * 0.5
        events += tracker.observe(t, t + 1.0, np.array([1 - score, score]))
    return events


def test_event_phases_become_valid_records_linked_by_the_event_id():
    start, update, end = phases()
    records = [event_record(e, kind="audio", source="clips/river.wav", device="unit-7", model=MODEL, rules=RULES, labels=LABELS,
                            origin=CLIP_START, time_source="file-mtime") for e in (start, update, end)]
    for record in records:
        VALIDATOR.validate(record)
        assert record["schema"] == SCHEMA_VERSION == "1.6"
        assert (record["kind"], record["label"], record["alert"], record["threshold"]) == ("audio", "excavator", True, 0.5)
        assert record["time"] == "2026-05-01T16:00:00.500Z" == record["event"]["start"]  # the event's start, not the phase's
        assert record["event"]["offset_s"] == 0.5
        assert record["scores"]["excavator"] == record["score"]  # the peak window's scores
    assert len({r["id"] for r in records}) == 3 and {r["event"]["id"] for r in records} == {start.id}
    assert [r["event"]["phase"] for r in records] == ["start", "update", "end"]
    first, _, last = (r["event"] for r in records)
    assert first["end"] is None and first["duration_s"] == 1.5
    assert last == {
        "id": start.id, "phase": "end", "start": "2026-05-01T16:00:00.500Z", "end": "2026-05-01T16:00:07.500Z",
        "duration_s": 7.0, "offset_s": 0.5, "peak_score": 0.95, "peak_time": "2026-05-01T16:00:01.500Z",
        "windows": 13, "hot_windows": 13, "mean_score": round((0.8 + 0.9 + 0.95 + 0.85 * 10) / 13, 4), "suppressed": 0,
        "rules": {"k": 2, "n": 3, "hysteresis": 0.1, "cooldown_s": 30.0},
    }
    assert records[2]["score"] == 0.95


def test_events_of_a_group_on_the_mean_rule():
    labels = ("background", "engine", "drilling")
    rules = EventRules(rule="mean", window=2, cooldown_s=0.0)
    tracker = EventTracker(labels, {"machinery": 0.9}, rules, groups={"machinery": ("engine", "drilling")})
    events = []
    for i, (engine, drilling) in enumerate([(0.5, 0.45)] * 4 + [(0.1, 0.0)] * 2):
        events += tracker.observe(i * 0.5, i * 0.5 + 1.0, [1 - engine - drilling, engine, drilling])
    start, end = (event_record(e, kind="audio", source="mic0", device="unit-7", model=MODEL, rules=rules, labels=labels,
                               origin=None) for e in events)
    for record in (start, end):
        VALIDATOR.validate(record)
        assert (record["label"], record["score"], record["threshold"]) == ("machinery", 0.95, 0.9)
        assert record["group_scores"] == {"machinery": 0.95} and record["scores"] == {"background": 0.05, "engine": 0.5,
                                                                                       "drilling": 0.45}
    assert end["event"]["rules"] == {"k": 2, "n": 3, "hysteresis": 0.1, "cooldown_s": 0.0, "rule": "mean", "window": 2}
    assert (end["event"]["windows"], end["event"]["duration_s"]) == (4, 2.5)
    assert not VALIDATOR.is_valid(dict(end, group_scores={"machinery": 1.2}))


def test_live_events_carry_unix_times():
    unix = CLIP_START.timestamp()
    (record,) = [event_record(e, kind="image", source="camera/north", device="unit-7", model=MODEL, rules=RULES, labels=LABELS,
                              origin=None) for e in phases(first=unix) if e.phase == "end"]
    VALIDATOR.validate(record)
    assert (record["time"], record["time_source"], record["kind"]) == ("2026-05-01T16:00:00.500Z", "received", "image")
    assert record["event"]["end"] == "2026-05-01T16:00:07.500Z" and "offset_s" not in record["event"]


def test_event_records_refuse_what_they_cannot_say():
    (start, *_) = phases()
    with pytest.raises(ValueError, match="kind must be 'audio' or 'image'"):
        event_record(start, kind="video", source="x", device="u", model=MODEL, rules=RULES, labels=LABELS, origin=None)
    with pytest.raises(ValueError, match="has no time zone"):
        event_record(start, kind="audio", source="x", device="u", model=MODEL, rules=RULES, labels=LABELS, origin=datetime(2026, 5, 1))


def test_the_schema_catches_broken_event_records():
    start, _, end = (event_record(e, kind="audio", source="clips/river.wav", device="unit-7", model=MODEL, rules=RULES, labels=LABELS,
                                  origin=CLIP_START) for e in phases())
    broken = [
        dict(end, event=dict(end["event"], end=None)),  # an end without an end time
        dict(start, event=dict(start["event"], end=end["event"]["end"])),  # a start that claims one
        dict(start, event=dict(start["event"], phase="stop")),
        dict(start, error="clips/river.wav: unreadable"),
        {k: v for k, v in start.items() if k != "scores"},  # scores are required of every detection
    ]
    for record in broken:
        assert not VALIDATOR.is_valid(record), record


def window_record(**changes):
    args = dict(scores=np.array([0.12, 0.88]), labels=LABELS, decision=Decision("excavator", 0.88, True, 0.5), model=MODEL,
                source="clips/river.wav", device="unit-7", moment=datetime(2026, 5, 1, 16, 0, 12, 500000, timezone.utc),
                time_source="file-mtime", offset_s=12.5, duration_s=0.975, rms_dbfs=-23.456, sample_rate=16000)
    return audio_window_record(**(args | changes))


def test_audio_window_records_are_valid():
    record = window_record()
    VALIDATOR.validate(record)
    assert (record["kind"], record["label"], record["score"], record["alert"], record["threshold"]) == ("audio", "excavator", 0.88, True, 0.5)
    assert record["scores"] == {"background": 0.12, "excavator": 0.88}
    assert record["time"] == "2026-05-01T16:00:12.500Z"
    assert record["audio"] == {"offset_s": 12.5, "duration_s": 0.975, "rms_dbfs": -23.5, "sample_rate": 16000}
    quiet = window_record(decision=Decision("background", 0.9, False, None), scores=[0.9, 0.1])
    VALIDATOR.validate(quiet)
    assert "threshold" not in quiet and quiet["alert"] is False


def test_digital_silence_has_a_finite_loudness_and_nan_is_refused():
    silent = window_record(rms_dbfs=float("-inf"))
    VALIDATOR.validate(silent)
    assert silent["audio"]["rms_dbfs"] == -200.0
    json.dumps(silent, allow_nan=False)
    with pytest.raises(ValueError, match="clips/river.wav: rms_dbfs is NaN at offset 12.5 s"):
        window_record(rms_dbfs=float("nan"))
    with pytest.raises(ValueError, match="1 scores for 2 labels"):
        window_record(scores=[0.5])


def test_records_of_earlier_versions_are_still_valid():
    for version in ("1.0", "1.1"):
        VALIDATOR.validate(dict(detection("unit-1", 10, tiled=True), schema=version))
        VALIDATOR.validate(dict(error_record(source="a.jpg", error="a.jpg: empty file (0 bytes)", device="unit-1"), schema=version))
    VALIDATOR.validate(dict(detection("unit-1", 11), schema="1.1", queued_s=12.0))
    no_scores = copy.deepcopy(detection("unit-1", 12))
    del no_scores["scores"]
    assert not VALIDATOR.is_valid(no_scores)  # a frame's record still needs its scores
