"""What the base station accepts, and what it refuses, before anything is stored."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timezone

import pytest
from detections import MODEL, detection, event_phases

from basestation import payloads
from basestation.payloads import DEAD_LETTER_PREFIX, MAX_BYTES, MAX_DEPTH, DeadLetter, Rejected, parse, too_deep
from edge.audio.records import audio_window_record
from edge.decisions.alerts import Decision
from edge.delivery import topics
from edge.records.record import SCHEMA_VERSION, error_record


def as_json(value) -> bytes:
    return json.dumps(value).encode()


def test_a_detection_is_accepted_with_its_id_and_device():
    record = dict(detection("unit-1", 1, tiled=True), queued_s=12.5)
    item = parse("naturevision/unit-1/detection", as_json(record))
    assert (item.kind, item.device, item.id, item.value) == ("detection", "unit-1", record["id"], record)


def test_error_records_and_version_1_0_records_are_still_valid():
    assert SCHEMA_VERSION == "1.6"
    err = error_record(source="card/x.jpg", error="card/x.jpg: empty file (0 bytes)", device="unit-1")
    assert parse("naturevision/unit-1/detection", as_json(err)).kind == "detection"
    old = dict(detection("unit-1", 2), schema="1.0")  # from a unit not yet updated: no queued_s
    assert parse("naturevision/unit-1/detection", as_json(old)).value["schema"] == "1.0"


def test_scale_fields_of_1_6_are_accepted_and_checked():
    """A drone photo the 10 m/px model cannot judge, as nv-edge classify writes it (tests/edge/image/test_scale.py
    makes the real one); a 1.5 record without the fields stays valid."""
    record = dict(detection("unit-1", 3), schema="1.6", alert=False,
                  ground_resolution={"metres": 0.1, "x_m": 0.1, "y_m": 0.1, "source": "exif-xmp",
                                     "detail": "80 m above ground (XMP drone-dji:RelativeAltitude), ..."},
                  scale={"trained_m_per_px": 10.0, "resampled": True, "tile_px": 4800, "tile_m": 480.0},
                  out_of_domain={"why": "0.1 m/px (exif-xmp): the frame covers 64 x 48 m of ground ...", "allowed": False})
    assert parse("naturevision/unit-1/detection", as_json(record)).value["out_of_domain"]["allowed"] is False
    with pytest.raises(Rejected, match="at out_of_domain"):
        parse("naturevision/unit-1/detection", as_json(dict(record, out_of_domain={"allowed": True})))
    with pytest.raises(Rejected, match="at ground_resolution/source"):
        parse("naturevision/unit-1/detection", as_json(dict(record, ground_resolution=dict(record["ground_resolution"],
                                                                                          source="guess"))))


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
    assert (value["schema"], value["label"], value["group_scores"]) == (SCHEMA_VERSION, "machinery", {"machinery": 0.95})
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
        parse(topic, b"\xff\xd8\xff" + b"x" * MAX_BYTES["thumbnail"])


# -- hostile payloads: bounded before they are parsed ---------------------------------------------

DETECTION_TOPIC = "naturevision/unit-1/detection"


@pytest.mark.parametrize("topic", [DETECTION_TOPIC, "naturevision/unit-1/status", "naturevision/unit-1/health"])
def test_deep_nesting_is_refused_without_recursing(topic):
    with pytest.raises(Rejected, match=f"nested deeper than {MAX_DEPTH} levels") as refused:
        parse(topic, ("[" * 1000 + "]" * 1000).encode())  # 2 KB that made json.loads raise RecursionError
    assert refused.value.cause == "depth"
    assert too_deep("[" * 500_000, MAX_DEPTH)  # the scan itself is a loop: no depth is too much for it


def test_depth_counts_brackets_outside_strings_only():
    deepest = detection("unit-1", 1, tiled=True)  # record > tiles > grid > label > row: 5 levels
    assert not too_deep(json.dumps(deepest), 5) and too_deep(json.dumps(deepest), 4)
    in_strings = dict(detection("unit-1", 2), source='card/[[[[{"[' * 20 + '\\\\".jpg')
    assert parse(DETECTION_TOPIC, as_json(in_strings)).value["source"] == in_strings["source"]
    assert not too_deep('["' + '\\"' * 100_000, MAX_DEPTH)  # an unterminated string is left for json.loads
    assert too_deep("[" * MAX_DEPTH + "{" + "}" + "]" * MAX_DEPTH, MAX_DEPTH)
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH, MAX_DEPTH)


def test_size_is_checked_before_anything_is_parsed():
    record = detection("unit-1", 1, tiled=True)
    record["tiles"]["grid"]["mining"] = [[0.5] * 2500 for _ in range(420)]  # valid, 5 MB
    payload = as_json(record)
    assert len(payload) > 5_000_000
    with pytest.raises(Rejected, match=f"{len(payload):,} bytes, above the 1,048,576 allowed on detection") as refused:
        parse(DETECTION_TOPIC, payload)
    assert refused.value.cause == "size"
    with pytest.raises(Rejected, match="above the 65,536 allowed on status"):
        parse("naturevision/unit-1/status", b" " * (MAX_BYTES["status"] + 1))


def test_the_largest_record_a_unit_makes_by_default_fits():
    """A 64 MP frame (edge's --max-pixels) in 48 px tiles with 25 % overlap: 222 x 222 scores."""
    record = detection("unit-1", 1, tiled=True)
    record["tiles"].update(rows=222, cols=222, grid={"mining": [[0.1234] * 222 for _ in range(222)]})
    payload = json.dumps(record, separators=(",", ":")).encode()  # as the outbox writes it
    assert 300_000 < len(payload) < MAX_BYTES["detection"]
    assert parse(DETECTION_TOPIC, payload).id == record["id"]


@pytest.mark.parametrize("text, reason", [
    ('"score": NaN', "NaN is not a number JSON allows"),
    ('"score": Infinity', "Infinity is not a number JSON allows"),
    ('"score": -Infinity', "-Infinity is not a number JSON allows"),
    ('"score": 1e999', "the number 1e999 is too large"),
    ('"queued_s": 100000000000000000000', "the integer 100000000000000000000 is out of range"),
    ('"queued_s": 1' + "0" * 5000, "the integer 1000000000000000000000000000000000000000… is out of range"),
])
def test_numbers_must_be_finite_and_fit_sqlite(text, reason):
    payload = (json.dumps(detection("unit-1", 1, alert=True))[:-1] + ", " + text + "}").encode()  # the last "score" wins
    with pytest.raises(Rejected, match=re.escape(reason)) as refused:
        parse(DETECTION_TOPIC, payload)
    assert refused.value.cause == "number"


def test_nan_in_score_and_latitude_is_refused():
    record = detection("unit-1", 1, alert=True)
    record["score"], record["geo"]["lat"] = float("nan"), float("nan")  # json.dumps writes NaN; json.loads reads it
    with pytest.raises(Rejected, match="NaN is not a number JSON allows"):
        parse(DETECTION_TOPIC, as_json(record))


@pytest.mark.parametrize("payload, cause", [
    (bytes(random.Random(7).randrange(256) for _ in range(3000)), "encoding"),
    (b'{"source": "caf\xe9"}', "encoding"),
    (b"\x00" * 100, "json"),
    (b'{"a": ' * 10, "json"),
])
def test_garbage_is_refused_with_its_cause(payload, cause):
    with pytest.raises(Rejected) as refused:
        parse(DETECTION_TOPIC, payload)
    assert refused.value.cause == cause


def test_a_schema_error_in_a_huge_grid_is_explained_from_the_first_errors_only(monkeypatch):
    """150,000 wrong scores: the reason is found among the first EXPLAINED_ERRORS the validator yields,
    never by walking them all (looking at every error took 1.6 s a message). Counted, not timed."""
    record = detection("unit-1", 1, tiled=True)
    record["tiles"]["grid"]["mining"] = [["x"] * 500 for _ in range(300)]  # 750 KB
    real = payloads.VALIDATORS[topics.DETECTION]
    looked_at = []

    class Counting:  # the real validator, counting the errors drawn from it
        def is_valid(self, value):
            return real.is_valid(value)

        def iter_errors(self, value):
            for error in real.iter_errors(value):
                looked_at.append(error)
                yield error

    monkeypatch.setitem(payloads.VALIDATORS, topics.DETECTION, Counting())
    with pytest.raises(Rejected, match=r"at tiles/grid/mining/0/\d+: 'x' is not of type 'number'"):
        parse(DETECTION_TOPIC, as_json(record))
    assert 0 < len(looked_at) <= payloads.EXPLAINED_ERRORS


def test_a_dead_letter_keeps_a_bounded_prefix_and_the_size():
    letter = DeadLetter.of(DETECTION_TOPIC, b"x" * 5_000_000, "size", "too big \ud800", retained=True)
    assert (letter.size, len(letter.prefix), letter.retained) == (5_000_000, DEAD_LETTER_PREFIX, True)
    assert letter.reason == "too big \\ud800"  # SQLite stores UTF-8: no lone surrogates
