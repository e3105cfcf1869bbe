"""Detection records: the JSON every later part (outbox, MQTT, base station) passes on.

The contract is `edge/schema/detection.schema.json`. SCHEMA_VERSION is "MAJOR.MINOR": a minor
bump only adds optional fields; a major bump changes or removes one.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from edge.classify import FrameResult

SCHEMA_VERSION = "1.1"  # 1.1 added `queued_s` (set by the publisher)
SCORE_DIGITS = 4


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62  # variant
    value |= secrets.randbits(62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, milliseconds kept."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_device() -> str:
    return os.environ.get("NV_DEVICE") or socket.gethostname()


def _base(device: str, source: str, kind: str, moment: datetime, time_source: str) -> dict:
    return {
        "id": uuid7(),
        "schema": SCHEMA_VERSION,
        "device": device,
        "time": iso_utc(moment),
        "time_source": time_source,
        "kind": kind,
        "source": source,
    }


def source_time(source: str | Path | None) -> tuple[datetime, str]:
    """Best capture time without EXIF: the file's modification time, else now."""
    if source is not None:
        try:
            return datetime.fromtimestamp(Path(source).stat().st_mtime, timezone.utc), "file-mtime"
        except OSError:
            pass
    return datetime.now(timezone.utc), "received"


def image_record(
    result: FrameResult,
    *,
    model: dict,
    labels: tuple[str, ...],
    alert_labels: tuple[str, ...],
    source: str,
    path: Path | None,
    device: str,
) -> dict:
    moment, time_source = result.captured or source_time(path)
    record = _base(device, source, "image", moment, time_source)
    decision = result.decision
    record.update(
        model=model,
        label=decision.label,
        score=round(decision.score, SCORE_DIGITS),
        scores={label: round(float(v), SCORE_DIGITS) for label, v in zip(labels, result.scores)},
        alert=decision.alert,
        frame={"width": result.width, "height": result.height},
    )
    if decision.threshold is not None:
        record["threshold"] = decision.threshold
    if result.tiles is not None:
        tiles = result.tiles
        record["tiles"] = {
            "size": tiles.grid.tile,
            "overlap": tiles.grid.overlap,
            "rows": tiles.grid.rows,
            "cols": tiles.grid.cols,
            "grid": {  # per-tile scores of the alert labels (of every label when none alerts)
                label: [[round(float(v), SCORE_DIGITS) for v in row] for row in tiles.scores[:, :, labels.index(label)]]
                for label in (alert_labels or labels)
            },
            "best": {"row": tiles.best[0], "col": tiles.best[1], "box": list(tiles.best_box)},
        }
    if result.geo is not None:
        record["geo"] = result.geo
    return record


def error_record(*, source: str, error: str, device: str, kind: str = "image", model: dict | None = None) -> dict:
    record = _base(device, source, kind, datetime.now(timezone.utc), "received")
    if model is not None:
        record["model"] = model
    record["error"] = error
    return record
