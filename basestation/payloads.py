"""What may arrive, and what is refused: every payload is checked against its JSON Schema
(edge/records/schema/) and against the topic it came on before anything is stored.

A unit can write only under naturevision/<its user name>/ (the broker's ACL), so the device in
the topic is authenticated; a payload that names another device is refused.

Anyone holding a unit's credentials can still send anything at all, so the checks run cheapest
first and nothing is parsed that could exhaust the listener: the size is checked before the bytes
are decoded, the nesting depth by a loop over the text before json.loads (whose C scanner recurses
once per level and raises RecursionError past ~1000), and numbers as they are parsed. These limits
are the only ones; docs/mqtt.md lists them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import islice

import jsonschema

from basestation.validator import load_validator
from edge.delivery import topics

# Bytes per payload, by topic. A detection is a few KB; the largest a unit makes with its default
# limits (a 64 MP frame cut into 48 px tiles, one alert label's score grid) is ~340 KB.
MAX_BYTES = {
    topics.DETECTION: 1024 * 1024,
    topics.THUMBNAIL: 64 * 1024,  # units cap theirs at 16 KiB; anything far larger is not ours
    topics.STATUS: 64 * 1024,  # units send ~150 bytes
    topics.HEALTH: 64 * 1024,  # units send ~1 KB
}
MAX_DEPTH = 32  # arrays and objects inside each other; a detection needs 5 (record, tiles, grid, rows, row)
MAX_INT = 2**63 - 1  # what SQLite's INTEGER holds
EXPLAINED_ERRORS = 100  # schema errors looked at to say why: a payload can hold hundreds of thousands
DEAD_LETTER_PREFIX = 256  # payload bytes kept with a dead letter
MAX_TEXT = 1000  # characters of a dead letter's topic and reason (a thumbnail topic may be 64 KB long)

JPEG_MAGIC = b"\xff\xd8\xff"
DETECTION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_STRUCTURE = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # after an opening quote, to its closing one
# Only a number with a 3-digit exponent or 19+ digits in a row can overflow a float or SQLite's
# INTEGER; the hooks that check each number cost 50 % more on a tiled record, so they run only then.
_BIG_NUMBER = re.compile(r"[eE][+-]?[0-9]{3}|[0-9]{19}")


class Rejected(Exception):
    """A payload that will not be stored; the message says why, `cause` says what kind of wrong
    (topic, size, encoding, depth, json, number, schema, device, thumbnail)."""

    def __init__(self, cause: str, reason: str):
        super().__init__(reason)
        self.cause = cause


class _BadNumber(ValueError):
    pass


@dataclass(frozen=True)
class Accepted:
    kind: str  # detection, thumbnail, status, health
    device: str
    value: dict | bytes
    id: str | None = None  # detection id (detections and thumbnails)
    raw: str | None = None  # the JSON text as received: stored as is, not serialised again


@dataclass(frozen=True)
class DeadLetter:
    """A message that was refused or could not be stored: kept (bounded) so that an operator can
    see what came, and acknowledged so that the broker does not send it again."""

    topic: str
    cause: str  # a Rejected cause, or store (valid, but the database would not take it) or error (checking it failed)
    reason: str
    size: int  # payload bytes
    prefix: bytes  # its first DEAD_LETTER_PREFIX bytes
    retained: bool = False  # it came as a retained message (a new subscription's copy of the topic's last one)

    @classmethod
    def of(cls, topic: str, payload: bytes, cause: str, reason: str, *, retained: bool = False) -> "DeadLetter":
        def text(s: str) -> str:  # no lone surrogates (both databases store UTF-8), no NUL (PostgreSQL refuses it)
            return s.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")

        return cls(text(topic)[:MAX_TEXT], cause, text(reason)[:MAX_TEXT], len(payload), bytes(payload[:DEAD_LETTER_PREFIX]),
                   retained)


VALIDATORS = {kind: load_validator(kind) for kind in (topics.DETECTION, topics.STATUS, topics.HEALTH)}


def parse(topic: str, payload: bytes) -> Accepted:
    """The stored form of one message, or Rejected naming what is wrong with it."""
    where = topics.split(topic)
    if where is None:
        raise Rejected("topic", f"topic {topic!r} is not under {topics.ROOT}/<device>/")
    device, leaf = where
    if leaf.startswith(topics.THUMBNAIL + "/"):
        kind = topics.THUMBNAIL
    elif leaf in VALIDATORS:
        kind = leaf
    else:
        raise Rejected("topic", f"topic {topic!r}: not a topic the base station stores")
    if len(payload) > MAX_BYTES[kind]:
        raise Rejected("size", f"{topic}: {len(payload):,} bytes, above the {MAX_BYTES[kind]:,} allowed on {kind}")
    if kind == topics.THUMBNAIL:
        return _thumbnail(device, leaf.split("/", 1)[1], payload)
    try:
        raw = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("encoding", f"{topic}: not UTF-8 text ({exc})") from None
    if too_deep(raw, MAX_DEPTH):
        raise Rejected("depth", f"{topic}: arrays and objects nested deeper than {MAX_DEPTH} levels")
    value = _json(topic, raw)
    validator = VALIDATORS[kind]
    if not validator.is_valid(value):
        raise Rejected("schema", f"{topic}: does not match {kind}.schema.json {_explain(validator, value)}")
    if value["device"] != device:
        raise Rejected("device", f"{topic}: payload says device {value['device']!r}, but only {device!r} may write here")
    return Accepted(kind, device, value, value.get("id"), raw)


def too_deep(text: str, limit: int) -> bool:
    """True when arrays and objects in the JSON `text` nest deeper than `limit`. A loop, linear in
    the length (strings are skipped whole, so brackets in them do not count), that stops at the
    first level too deep. Broken JSON is left for json.loads to name."""
    if text.count("[") + text.count("{") <= limit:
        return False  # most records: too few brackets to nest that deep
    depth, pos = 0, 0
    while (found := _STRUCTURE.search(text, pos)) is not None:
        char, pos = found.group(), found.end()
        if char == '"':
            string = _STRING_REST.match(text, pos)
            if string is None:
                return False  # an unterminated string
            pos = string.end()
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _json(topic: str, raw: str):
    """json.loads, but only finite numbers that SQLite can hold: Python reads NaN, Infinity and
    -Infinity (and 1e999 as infinity), which are not JSON and would be stored as empty values."""
    checks = {"parse_float": _finite, "parse_int": _bounded} if _BIG_NUMBER.search(raw) else {}
    try:
        return json.loads(raw, parse_constant=_not_a_number, **checks)
    except _BadNumber as exc:
        raise Rejected("number", f"{topic}: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, and more digits than int() reads
        raise Rejected("json", f"{topic}: not JSON ({exc})") from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {_start(text)} is too large")
    return value


def _bounded(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) > MAX_INT:
        raise _BadNumber(f"the integer {_start(text)} is out of range (at most {MAX_INT} either way)")
    return value


def _start(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def _not_a_number(name: str):
    raise _BadNumber(f"{name} is not a number JSON allows")


def _explain(validator, value) -> str:
    """Where the payload breaks the schema and how, in one line (never the whole payload)."""
    error = jsonschema.exceptions.best_match(islice(validator.iter_errors(value), EXPLAINED_ERRORS))
    at = "/".join(map(str, error.absolute_path)) or "the top level"
    if error.validator in ("oneOf", "anyOf") and error.context:
        # a detection is either a result or an error record: say what each shape lacks
        reasons = sorted({e.message[:120] for e in error.context})
        return f"at {at}: fits neither shape: {'; '.join(reasons)}"
    return f"at {at}: {error.message[:200]}"


def _thumbnail(device: str, detection_id: str, payload: bytes) -> Accepted:
    if not DETECTION_ID.match(detection_id):
        raise Rejected("thumbnail", f"thumbnail for {detection_id!r}: not a detection id")
    if not payload.startswith(JPEG_MAGIC):
        raise Rejected("thumbnail", f"thumbnail for {detection_id}: not a JPEG")
    return Accepted(topics.THUMBNAIL, device, bytes(payload), detection_id)
