"""Payloads that someone holding a unit's credentials could publish: for the base-station tests.
Each comes with the dead-letter cause the base station must give it."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import NamedTuple

from detections import detection

NESTING_BOMB = ("[" * 1000 + "]" * 1000).encode()  # 2 KB: json.loads raised RecursionError on it


class Hostile(NamedTuple):
    topic: str
    payload: bytes
    retain: bool
    cause: str


def big_valid_record(device: str, n: int = 0) -> bytes:
    """A detection that matches the schema and is 5 MB (a score grid of 1,050,000 tiles)."""
    record = detection(device, n, tiled=True)
    record["tiles"]["grid"]["mining"] = [[0.5] * 2500 for _ in range(420)]
    return json.dumps(record).encode()


def hostile_payloads(device: str) -> list[Hostile]:
    """100 of them: deep nesting, 5 MB records, NaN and infinities, numbers SQLite cannot hold,
    random bytes, invalid UTF-8, lone surrogates, and one retained on the status topic."""
    detection_topic, rng = f"naturevision/{device}/detection", random.Random(16)
    made: list[Hostile] = []

    def add(count: int, cause: str, make) -> None:
        made.extend(Hostile(detection_topic, make(i), False, cause) for i in range(count))

    def record_text(i: int, **change) -> str:
        return json.dumps(dict(detection(device, 100_000 + i, alert=True), **change))

    def nan_record(i: int) -> bytes:
        record = detection(device, 100_000 + i, alert=True)
        record["score"] = float("nan")
        record["geo"] = {"lat": float("nan"), "lon": -60.0, "source": "exif"}
        return json.dumps(record).encode()

    add(10, "depth", lambda i: NESTING_BOMB)
    add(10, "depth", lambda i: ('{"a": ' * 1000 + "1" + "}" * 1000).encode())
    add(5, "size", lambda i: big_valid_record(device, 200_000 + i))
    add(10, "number", nan_record)
    add(5, "number", lambda i: record_text(i, score=float("inf")).encode())
    add(5, "number", lambda i: record_text(i, score=float("-inf")).encode())
    add(5, "number", lambda i: record_text(i)[:-1].encode() + b', "queued_s": 1e999}')
    add(4, "number", lambda i: record_text(i)[:-1].encode() + b', "queued_s": 123456789012345678901234567890}')
    add(20, "encoding", lambda i: rng.randbytes(rng.randrange(1, 4096)))
    add(20, "encoding", lambda i: record_text(i, source="card/caf\u00e9.jpg").encode().replace(b"\\u00e9", b"\xe9"))
    add(5, "store", lambda i: record_text(i, source="card/\ud800.jpg").encode())  # valid JSON, not storable text
    made.append(Hostile(f"naturevision/{device}/status", NESTING_BOMB, True, "depth"))
    assert len(made) == 100
    return made


def causes(payloads: list[Hostile]) -> Counter:
    return Counter(h.cause for h in payloads)
