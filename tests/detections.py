"""Detection records as edge/records/record.py makes them, without running a model: for the delivery tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from edge.decisions.events import EventRules, EventTracker
from edge.records.record import SCHEMA_VERSION, event_record, iso_utc, uuid7

MODEL = {"name": "mining-s2", "version": "0.1.0-test", "sha256": "ab" * 32}


def detection(device: str, n: int, *, alert: bool | None = None, geo: bool = True, tiled: bool = False) -> dict:
    """The n-th record of a run: every 10th is an alert, every 3rd has no location."""
    rng = random.Random(n)
    alert = (n % 10 == 0) if alert is None else alert
    score = round(rng.uniform(0.5, 1.0) if alert else rng.uniform(0.0, 0.49), 4)
    record = {
        "id": uuid7(), "schema": SCHEMA_VERSION, "device": device,
        "time": iso_utc(datetime(2026, 5, 1, tzinfo=timezone.utc) + timedelta(seconds=n)),
        "time_source": "exif", "kind": "image", "source": f"card/frame_{n:06d}.jpg", "model": MODEL,
        "label": "mining" if alert else "not_mining", "score": score,
        "scores": {"mining": score if alert else round(1 - score, 4), "not_mining": round(1 - score, 4) if alert else score},
        "alert": alert, "frame": {"width": 576 if tiled else 48, "height": 576 if tiled else 48},
    }
    if alert:
        record["threshold"] = 0.5
    if tiled:
        record["tiles"] = {"size": 48, "overlap": 0.25, "rows": 16, "cols": 16,
                           "grid": {"mining": [[round(rng.random(), 4) for _ in range(16)] for _ in range(16)]},
                           "best": {"row": 3, "col": 4, "box": [144, 108, 192, 156]}}
    if geo and n % 3:
        record["geo"] = {"lat": round(-3.0 - rng.random(), 6), "lon": round(-60.0 + rng.random(), 6), "source": "exif"}
    return record


def detections(device: str, count: int, start: int = 0, **kwargs) -> list[dict]:
    return [detection(device, n, **kwargs) for n in range(start, start + count)]


def event_phases(device: str, *, minutes: float = 42.0) -> list[dict]:
    """The start, update and end records of one live excavator event of `minutes`, made by
    edge/decisions/events.py and edge/records/record.py from audio windows (1 s every 0.5 s)."""
    rules = EventRules()
    tracker = EventTracker(("background", "excavator"), {"excavator": 0.5}, rules)
    first = datetime(2026, 5, 1, 16, tzinfo=timezone.utc).timestamp()
    loud = int(minutes * 120)
    events = []
    for i in range(loud + rules.n):
        score = 0.9 if i < loud else 0.1
        events += tracker.observe(first + i / 2, first + i / 2 + 1, [1 - score, score])
    kept = [events[0], events[1], events[-1]]  # start, the first update, end
    return [event_record(e, kind="audio", source="mic0", device=device, model=MODEL, rules=rules, origin=None,
                         labels=("background", "excavator")) for e in kept]


def area_detection(device: str, n: int, *, west: float = -59.70, south: float = -3.60, size: float = 0.02) -> dict:
    """A drone scan's record of one mining area (schema 1.4 `area`, as edge/survey/records.py makes it):
    no `geo`, a square polygon `size` degrees wide from (west, south), counter-clockwise and closed."""
    record = detection(device, n, alert=True, geo=False)
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    record["area"] = {"polygon": [[round(x, 6), round(y, 6)] for x, y in ring], "hectares": 49.3, "tiles": 3,
                      "peak_score": record["score"]}
    return record
