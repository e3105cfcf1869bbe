"""Reviews: a person's verdict on an event or a detection (confirmed / false alarm / unsure), with a note.

Every verdict is a new row: the history is kept, and the newest row for a target is its verdict.
A target is either one detection (by its record id) or one event (by its `event.id`, shared by the
event's start, update and end records). A verdict on a detection overrides its event's verdict for
that record in the labelled export.

The table is migration 5's (basestation/migrations/); the statements go through the store, which
speaks SQLite or PostgreSQL.

The labelled export (`labelled_rows`) is what `nv-convert calibrate` reads: one row per reviewed
record; docs/web.md describes its columns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from basestation.store import Store
from edge.ids import uuid7

VERDICTS = ("confirmed", "false_alarm", "unsure")
KINDS = ("detection", "event")
PHASES = ("start", "update", "end")
MAX_NOTE = 2000  # characters

class ReviewError(Exception):
    """A review that cannot be kept; the message says why."""


@dataclass(frozen=True)
class Review:
    id: str
    target_kind: str
    target: str
    anchor: str
    verdict: str
    note: str
    reviewer: str
    time: float

    def as_json(self) -> dict:
        return {"id": self.id, "target_kind": self.target_kind, "target": self.target, "verdict": self.verdict,
                "note": self.note, "reviewer": self.reviewer, "time": _iso(self.time)}


def event_id(record: dict) -> str | None:
    event = record.get("event")
    return event.get("id") if isinstance(event, dict) else None


def add_review(store: Store, *, target_kind: str, target: str, verdict: str, note: str, reviewer: str,
               anchor: str | None = None) -> Review:
    """Keep one verdict. The target must exist: a detection id that is stored, or an event id one of
    whose records is (`anchor`, when given, names that record and spares a search)."""
    if target_kind not in KINDS:
        raise ReviewError(f"target_kind {target_kind!r}: one of {', '.join(KINDS)}")
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ReviewError(f"note: text of at most {MAX_NOTE} characters")
    anchor = _anchor(store, target_kind, target, anchor)
    review = Review(uuid7(), target_kind, target, anchor, verdict, note.strip(), reviewer, time.time())
    store.execute("INSERT INTO reviews (id, target_kind, target, anchor, verdict, note, reviewer, time) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (review.id, review.target_kind, review.target, review.anchor, review.verdict, review.note,
                review.reviewer, review.time))
    return review


def _anchor(store: Store, target_kind: str, target: str, anchor: str | None) -> str:
    if not isinstance(target, str) or not target or len(target) > 64:
        raise ReviewError("target: a detection or event id")
    if target_kind == "event" and isinstance(anchor, str):
        row = store.execute("SELECT record FROM detections WHERE id = ?", (anchor,)).fetchone()
        if row is None or event_id(json.loads(row[0])) != target:
            raise ReviewError(f"anchor {anchor}: not a stored record of event {target}")
        return anchor
    if target_kind == "detection":
        if store.execute("SELECT 1 FROM detections WHERE id = ?", (target,)).fetchone() is None:
            raise ReviewError(f"detection {target}: not stored here")
        return target
    # An event id appears only inside its records' JSON; LIKE finds candidates, the JSON decides.
    for row_id, record in store.execute("SELECT id, record FROM detections WHERE record LIKE ? ORDER BY received DESC",
                                     (f'%"{_like(target)}"%',)):
        if event_id(json.loads(record)) == target:
            return row_id
    raise ReviewError(f"event {target}: none of its records is stored here")


def _like(text: str) -> str:
    return text.replace("%", "").replace("_", "").replace('"', "")


def history(store: Store, targets: list[str]) -> dict[str, list[Review]]:
    """Every verdict given on each target, oldest first."""
    found: dict[str, list[Review]] = {t: [] for t in targets}
    for i in range(0, len(targets), 500):
        chunk = targets[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.execute(f"SELECT id, target_kind, target, anchor, verdict, note, reviewer, time FROM reviews "
                              f"WHERE target IN ({marks}) ORDER BY time, rowid", chunk):
            found[row[2]].append(Review(*row))
    return found


def latest(store: Store, targets: list[str]) -> dict[str, Review]:
    return {t: reviews[-1] for t, reviews in history(store, targets).items() if reviews}


def event_records(store: Store, anchor: str) -> list:
    """Every stored record of the event that `anchor` (one of its records) belongs to, by time received;
    just the anchor when it is not an event record."""
    found = store.query("SELECT * FROM detections WHERE id = ?", (anchor,))
    if not found:
        return []
    row = found[0]
    eid = event_id(json.loads(row["record"]))
    if eid is None:
        return [row]
    rows = store.query("SELECT * FROM detections WHERE device = ? AND time = ? ORDER BY received, id",
                       (row["device"], row["time"]))
    found = [(r, json.loads(r["record"])["event"]) for r in rows if event_id(json.loads(r["record"])) == eid]
    found.sort(key=lambda pair: (PHASES.index(pair[1].get("phase")) if pair[1].get("phase") in PHASES else 1,
                                 pair[1].get("duration_s") or 0))  # received together, they still sort in order
    return [r for r, _ in found]


# -- the labelled export --------------------------------------------------------------------------

LABELLED_COLUMNS = ("record_id", "device", "time", "kind", "source", "label", "score", "scores", "alert", "threshold",
                    "model", "model_sha256", "lat", "lon", "event_id", "event_phase", "verdict", "note", "reviewer",
                    "reviewed_at", "verdict_on")


def labelled_rows(store: Store) -> list[dict]:
    """One row per reviewed record, oldest capture first: the record's figures and its verdict (its own,
    else its event's). `scores` is a label → score object."""
    newest: dict[str, Review] = {}
    # time, then rowid: verdicts given within one clock tick keep the order they were given in (two UUIDv7s
    # of one millisecond do not sort by time)
    for row in store.execute("SELECT id, target_kind, target, anchor, verdict, note, reviewer, time FROM reviews "
                          "ORDER BY time, rowid"):
        newest[row[2]] = Review(*row)
    rows: dict[str, dict] = {}
    own: set[str] = set()
    for review in sorted(newest.values(), key=lambda r: r.target_kind == "detection"):  # events first, then overrides
        for record_row in event_records(store, review.anchor):
            if review.target_kind == "detection" and record_row["id"] != review.target:
                continue
            if review.target_kind == "event" and record_row["id"] in own:
                continue
            rows[record_row["id"]] = _labelled(record_row, review)
            if review.target_kind == "detection":
                own.add(record_row["id"])
    order = {record_id: i for i, record_id in enumerate(rows)}  # an event's phases share its start time
    return sorted(rows.values(), key=lambda r: (r["time"], order[r["record_id"]]))


def _labelled(row, review: Review) -> dict:
    record = json.loads(row["record"])
    model = record.get("model") or {}
    event = record.get("event") if isinstance(record.get("event"), dict) else {}
    return {
        "record_id": row["id"], "device": row["device"], "time": row["time"], "kind": row["kind"],
        "source": row["source"], "label": row["label"], "score": row["score"], "scores": record.get("scores") or {},
        "alert": None if row["alert"] is None else bool(row["alert"]), "threshold": record.get("threshold"),
        "model": model.get("name"), "model_sha256": model.get("sha256"), "lat": row["lat"], "lon": row["lon"],
        "event_id": event.get("id"), "event_phase": event.get("phase"), "verdict": review.verdict,
        "note": review.note, "reviewer": review.reviewer, "reviewed_at": _iso(review.time),
        "verdict_on": review.target_kind,
    }


def _iso(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1000):03d}Z"
