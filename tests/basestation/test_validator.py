"""The listener's validator must agree with plain jsonschema, verdict and message, on anything."""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timezone

import jsonschema
import pytest
from detections import MODEL, detection, event_phases

from basestation.validator import load_validator
from edge.audio.records import audio_window_record
from edge.decisions.alerts import Decision
from edge.delivery.health import status_payload
from edge.records.record import error_record
from edge.records.schemas import load_schema

VALUES = [None, True, False, 0, 1, -1, 0.5, 1.5, 2, 1e9, -200, "", "x", "1.1", "2.0", "exif", "online", "image",
          "2026-05-01T00:00:00Z", "01a21411-ad67-7fd2-9f89-eae9ed1a430b", "ab" * 32, [], [1, "x"], {}, {"lat": 1}]


def paths(value, prefix=()):
    """Every (container, key) in a JSON value, for mutation."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield prefix + (key,)
            yield from paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield prefix + (index,)
            yield from paths(child, prefix + (index,))


def mutate(value, rng: random.Random):
    value = copy.deepcopy(value)
    path = rng.choice(list(paths(value)))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, list) and rng.random() < 0.3:
        if rng.random() < 0.5:
            parent.append(copy.deepcopy(rng.choice(VALUES)))
        else:
            parent.pop()
    elif isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    elif isinstance(parent, dict) and rng.random() < 0.1:
        parent["extra"] = rng.choice(VALUES)
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(VALUES))
    return value


def samples():
    yield "detection", detection("unit-1", 10, tiled=True)
    yield "detection", dict(detection("unit-1", 11), queued_s=3.5)
    yield "detection", error_record(source="a.jpg", error="a.jpg: empty file (0 bytes)", device="unit-1")
    yield "detection", event_phases("unit-1")[0]
    yield "detection", event_phases("unit-1")[-1]
    yield "detection", audio_window_record(scores=[0.2, 0.8], labels=("background", "excavator"),
                                           decision=Decision("excavator", 0.8, True, 0.5), model=MODEL, source="mic0",
                                           device="unit-1", moment=datetime(2026, 5, 1, tzinfo=timezone.utc),
                                           time_source="received", offset_s=30.5, duration_s=1.0, rms_dbfs=-31.0,
                                           sample_rate=16000)
    yield "status", json.loads(status_payload("unit-1", "online"))


@pytest.mark.parametrize("name, original", list(samples()))
def test_fast_paths_agree_with_jsonschema(name, original):
    schema = load_schema(name)
    plain, fast = jsonschema.Draft202012Validator(schema), load_validator(name)
    assert fast.is_valid(original) and plain.is_valid(original)
    rng = random.Random(name + str(len(original)))
    invalid = 0
    for _ in range(1500):
        value = mutate(original, rng)
        verdict = plain.is_valid(value)
        assert fast.is_valid(value) == verdict, value
        if not verdict:
            invalid += 1
            expected = jsonschema.exceptions.best_match(plain.iter_errors(value))
            got = jsonschema.exceptions.best_match(fast.iter_errors(value))
            assert (list(got.absolute_path), got.message) == (list(expected.absolute_path), expected.message)
    assert invalid > 300  # the mutations do break things
