"""Detection records: the JSON every later part (outbox, MQTT, base station) passes on.

The contract is `edge/records/schema/detection.schema.json`; image and audio records are made by
`edge/image/records.py` and `edge/audio/records.py` from the pieces here. SCHEMA_VERSION is "MAJOR.MINOR": a minor
bump only adds optional fields; a major bump changes or removes one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.decisions.alerts import Decision
from edge.decisions.events import Event, EventRules
from edge.ids import uuid7  # in edge/ids.py so that edge/decisions/events.py need not import records; still importable from here

SCHEMA_VERSION = "1.6"  # 1.1 added `queued_s` (set by the publisher); 1.2 `event` and `audio`; 1.3 `group_scores`; 1.4 `area`;
# 1.5 `tta`; 1.6 `ground_resolution`, `scale`, `out_of_domain`, video frames (`video`, time_source video-metadata,
# geo source srt with rel_alt), `tiles.xs`, `tiles.ys`
SCORE_DIGITS = 4
SECONDS_DIGITS = 3
RMS_FLOOR_DBFS = -200.0  # digital silence is -inf dBFS, which JSON cannot carry


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, milliseconds kept."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_device() -> str:
    return os.environ.get("NV_DEVICE") or socket.gethostname()


def base_record(device: str, source: str, kind: str, moment: datetime, time_source: str) -> dict:
    return {
        "id": uuid7(),
        "schema": SCHEMA_VERSION,
        "device": device,
        "time": iso_utc(moment),
        "time_source": time_source,
        "kind": kind,
        "source": source,
    }


def add_decision(record: dict, *, model: dict, labels: Sequence[str], scores, decision: Decision, **fields) -> dict:
    """The fields every classified record carries: the model, the decision and every label's score
    (then `fields`, then the threshold: the order records have always had), and every alert group's
    score when the model has groups of more than one label."""
    record.update(
        model=model,
        label=decision.label,
        score=round(decision.score, SCORE_DIGITS),
        scores={label: round(float(v), SCORE_DIGITS) for label, v in zip(labels, scores)},
        alert=decision.alert,
        **fields,
    )
    if decision.threshold is not None:
        record["threshold"] = decision.threshold
    add_group_scores(record, decision.group_scores)
    return record


def add_group_scores(record: dict, group_scores: dict[str, float] | None) -> None:
    if group_scores is not None:
        record["group_scores"] = {name: round(v, SCORE_DIGITS) for name, v in group_scores.items()}


def source_time(source: str | Path | None) -> tuple[datetime, str]:
    """Best capture time without EXIF: the file's modification time, else now."""
    if source is not None:
        try:
            return datetime.fromtimestamp(Path(source).stat().st_mtime, timezone.utc), "file-mtime"
        except OSError:
            pass
    return datetime.now(timezone.utc), "received"


def error_record(*, source: str, error: str, device: str, kind: str = "image", model: dict | None = None) -> dict:
    record = base_record(device, source, kind, datetime.now(timezone.utc), "received")
    if model is not None:
        record["model"] = model
    record["error"] = error
    return record


def event_record(
    event: Event,
    *,
    kind: str,
    source: str,
    device: str,
    model: dict,
    rules: EventRules,
    origin: datetime | None,
    labels: Sequence[str],
    time_source: str = "received",
) -> dict:
    """One phase of an event as a record. `origin` is the clip's start when the event's times are
    offsets into a clip; None when they are Unix times. `time_source` says how that time base is
    known (a live stream's times are "received"). Every record gets its own id: `event.id` links
    the phases."""
    if kind not in ("audio", "image"):
        raise ValueError(f"event record kind must be 'audio' or 'image', got {kind!r}")
    if origin is not None and origin.tzinfo is None:
        raise ValueError(f"{source}: the event origin {origin} has no time zone; pass an aware datetime (UTC)")

    def moment(seconds: float) -> datetime:
        return origin + timedelta(seconds=seconds) if origin is not None else datetime.fromtimestamp(seconds, timezone.utc)

    def at(seconds: float) -> str:
        return iso_utc(moment(seconds))

    record = base_record(device, source, kind, moment(event.start), time_source)
    record.update(model=model, label=event.label, score=round(event.peak_score, SCORE_DIGITS), alert=True,
                  threshold=event.threshold)
    # The peak window's scores: `scores` is required of every detection since 1.0.
    record["scores"] = {name: round(v, SCORE_DIGITS) for name, v in zip(labels, event.peak_scores)}
    add_group_scores(record, event.peak_group_scores)
    body = {
        "id": event.id,
        "phase": event.phase,
        "start": at(event.start),
        "end": None if event.end is None else at(event.end),
        "duration_s": round(event.duration_s, SECONDS_DIGITS),
        "peak_score": round(event.peak_score, SCORE_DIGITS),
        "peak_time": at(event.peak_time),
        "windows": event.windows,
        "hot_windows": event.hot_windows,
        "mean_score": round(event.mean_score, SCORE_DIGITS),
        "suppressed": event.suppressed,
        "rules": {"k": rules.k, "n": rules.n, "hysteresis": rules.hysteresis, "cooldown_s": rules.cooldown_s},
    }
    if rules.rule != "k_of_n":  # 1.3; absent: k_of_n, as every event before it
        body["rules"] |= {"rule": rules.rule, "window": rules.window}
    if origin is not None:
        body["offset_s"] = round(event.start, SECONDS_DIGITS)
    record["event"] = body
    return record
