"""Scores -> a decision: which label a frame gets, and whether it raises an alert.

Each alert label has a threshold (the manifest recommends one; the user may override). A score at
or above its threshold makes an alert. `label` is the alert label that passed (the one furthest
above its threshold), otherwise the top-scoring label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.model.bundle import Manifest


@dataclass(frozen=True)
class Decision:
    label: str
    score: float
    alert: bool
    threshold: float | None  # the threshold of `label` when it is an alert label


def resolve_thresholds(manifest: Manifest, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The manifest's thresholds with overrides applied; the key '*' sets every alert label."""
    thresholds = {label: manifest.thresholds[label] for label in manifest.alert_labels}
    for key, value in (overrides or {}).items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold for {key!r} must be in [0, 1], got {value}")
        if key == "*":
            thresholds = {label: value for label in thresholds}
        elif key in thresholds:
            thresholds[key] = value
        else:
            raise ValueError(f"{key!r} is not an alert label of this model (alert labels: {', '.join(thresholds) or 'none'})")
    return thresholds


def alert_margins(scores: np.ndarray, manifest: Manifest, thresholds: dict[str, float]) -> np.ndarray:
    """For scores (N, L): how far each row's best alert label is above (>= 0) or below its threshold."""
    if not thresholds:
        return scores.max(axis=-1) - 1.0
    idx = [manifest.labels.index(label) for label in thresholds]
    limits = np.asarray(list(thresholds.values()), dtype=np.float32)
    return (scores[..., idx] - limits).max(axis=-1)


def decide(scores: np.ndarray, manifest: Manifest, thresholds: dict[str, float]) -> Decision:
    """Decision for one score vector (L,)."""
    passed = [(scores[manifest.labels.index(label)] - limit, label) for label, limit in thresholds.items()]
    passed = [item for item in passed if item[0] >= 0]
    if passed:
        label = max(passed)[1]
        return Decision(label, float(scores[manifest.labels.index(label)]), True, thresholds[label])
    top = int(np.argmax(scores))
    label = manifest.labels[top]
    return Decision(label, float(scores[top]), False, thresholds.get(label))
