"""What may arrive, and what is refused: every payload is checked against its JSON Schema
(edge/records/schema/) and against the topic it came on before anything is stored.

A unit can write only under naturevision/<its user name>/ (the broker's ACL), so the device in
the topic is authenticated; a payload that names another device is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import jsonschema

from basestation.validator import load_validator
from edge.delivery import topics

MAX_THUMBNAIL_BYTES = 64 * 1024  # units cap theirs at 16 KiB; anything far larger is not ours
JPEG_MAGIC = b"\xff\xd8\xff"
DETECTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Rejected(Exception):
    """A payload that will not be stored; the message says why."""


@dataclass(frozen=True)
class Accepted:
    kind: str  # detection, thumbnail, status, health
    device: str
    value: dict | bytes
    id: str | None = None  # detection id (detections and thumbnails)
    raw: str | None = None  # the JSON text as received: stored as is, not serialised again


VALIDATORS = {kind: load_validator(kind) for kind in (topics.DETECTION, topics.STATUS, topics.HEALTH)}


def parse(topic: str, payload: bytes) -> Accepted:
    """The stored form of one message, or Rejected naming what is wrong with it."""
    where = topics.split(topic)
    if where is None:
        raise Rejected(f"topic {topic!r} is not under {topics.ROOT}/<device>/")
    device, leaf = where
    if leaf.startswith(topics.THUMBNAIL + "/"):
        return _thumbnail(device, leaf.split("/", 1)[1], payload)
    if leaf not in VALIDATORS:
        raise Rejected(f"topic {topic!r}: not a topic the base station stores")
    try:
        raw = payload.decode("utf-8")
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"{topic}: not JSON ({exc})") from None
    validator = VALIDATORS[leaf]
    if not validator.is_valid(value):
        raise Rejected(f"{topic}: does not match {leaf}.schema.json {_explain(validator, value)}")
    if value["device"] != device:
        raise Rejected(f"{topic}: payload says device {value['device']!r}, but only {device!r} may write here")
    return Accepted(leaf, device, value, value.get("id"), raw)


def _explain(validator, value) -> str:
    """Where the payload breaks the schema and how, in one line (never the whole payload)."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    at = "/".join(map(str, error.absolute_path)) or "the top level"
    if error.validator in ("oneOf", "anyOf") and error.context:
        # a detection is either a result or an error record: say what each shape lacks
        reasons = sorted({e.message[:120] for e in error.context})
        return f"at {at}: fits neither shape: {'; '.join(reasons)}"
    return f"at {at}: {error.message[:200]}"


def _thumbnail(device: str, detection_id: str, payload: bytes) -> Accepted:
    if not DETECTION_ID.match(detection_id):
        raise Rejected(f"thumbnail for {detection_id!r}: not a detection id")
    if not payload.startswith(JPEG_MAGIC):
        raise Rejected(f"thumbnail for {detection_id}: not a JPEG")
    if len(payload) > MAX_THUMBNAIL_BYTES:
        raise Rejected(f"thumbnail for {detection_id}: {len(payload):,} bytes, above {MAX_THUMBNAIL_BYTES:,}")
    return Accepted(topics.THUMBNAIL, device, bytes(payload), detection_id)
