"""The smoothed score of the "mean" event rule (edge/decisions/events.py): the mean of a group's
score over the last `window` observations.

One definition for the unit and for choosing thresholds on recorded scores (a score log, validation
clips): `math.fsum` rounds the sum once, whatever the order, so both get the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def window_mean(values: Iterable[float]) -> float:
    """The mean of one averaging window."""
    values = list(values)
    if not values:
        raise ValueError("the mean of no observations is undefined")
    return math.fsum(values) / len(values)


def rolling_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """Scores (T, ...) of one unbroken sequence, oldest first -> (T, ...) float64: row t is the mean of
    rows t - window + 1 .. t; the first window - 1 rows are NaN, as the rule decides nothing before
    `window` observations have come. A tracker starts afresh after a gap longer than `max_gap_s` and
    at close(): give each unbroken run separately."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a whole number of observations >= 1, got {window!r}")
    scores = np.asarray(scores, dtype=np.float64)
    flat = scores.reshape(scores.shape[0], -1)
    out = np.full(flat.shape, np.nan)
    for t in range(window - 1, flat.shape[0]):
        for j in range(flat.shape[1]):
            out[t, j] = window_mean(flat[t - window + 1:t + 1, j].tolist())
    return out.reshape(scores.shape)
