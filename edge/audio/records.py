"""The detection record of one classified audio window (the contract: edge/records/schema/detection.schema.json)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from edge.decisions.alerts import Decision
from edge.records.record import RMS_FLOOR_DBFS, SECONDS_DIGITS, add_decision, base_record


def audio_window_record(
    *,
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    decision: Decision,
    model: dict,
    source: str,
    device: str,
    moment: datetime,
    time_source: str,
    offset_s: float,
    duration_s: float,
    rms_dbfs: float,
    sample_rate: int,
) -> dict:
    """One classified audio window. `moment` is when the window starts; `offset_s` is where it
    starts in its source (seconds from the clip's or stream's start)."""
    if len(scores) != len(labels):
        raise ValueError(f"{source}: {len(scores)} scores for {len(labels)} labels ({', '.join(labels)})")
    if math.isnan(rms_dbfs):
        raise ValueError(f"{source}: rms_dbfs is NaN at offset {offset_s} s: the window's samples are not finite")
    record = base_record(device, source, "audio", moment, time_source)
    add_decision(record, model=model, labels=labels, scores=scores, decision=decision)
    record["audio"] = {
        "offset_s": round(offset_s, SECONDS_DIGITS),
        "duration_s": round(duration_s, SECONDS_DIGITS),
        "rms_dbfs": round(max(rms_dbfs, RMS_FLOOR_DBFS), 1),
        "sample_rate": int(sample_rate),
    }
    return record
