"""Scores -> a decision: which label a frame gets, and whether it raises an alert.

Alerts are decided per alert group (edge/decisions/groups.py: the sum of its labels' scores; a
bundle without groups makes every alert label its own group). Each group has a threshold (the
manifest recommends one; the user may override). A group score at or above its threshold makes an
alert, and `label` is that group (the one furthest above its threshold). Otherwise `label` is the
top-scoring of the groups and of the labels in no group: for a bundle without groups, the top label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.decisions.groups import alert_groups, describe, group_scores, plain
from edge.model.bundle import Manifest


@dataclass(frozen=True)
class Decision:
    label: str  # an alert group's name, or a label in no group
    score: float
    alert: bool
    threshold: float | None  # the threshold of `label` when it is an alert group
    group_scores: dict[str, float] | None = None  # every group's score; None when groups are plain labels


def resolve_thresholds(manifest: Manifest, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The manifest's thresholds, one per alert group, with overrides applied; the key '*' sets every group."""
    groups = alert_groups(manifest)
    thresholds = {name: manifest.thresholds[name] for name in groups}
    for key, value in (overrides or {}).items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold for {key!r} must be in [0, 1], got {value}")
        if key == "*":
            thresholds = {name: value for name in thresholds}
        elif key in thresholds:
            thresholds[key] = value
        elif any(key in members for members in groups.values()):
            raise ValueError(f"{key!r} is decided in its group, not alone: set the group's threshold "
                             f"(groups: {describe(groups)})")
        elif plain(groups):
            raise ValueError(f"{key!r} is not an alert label of this model (alert labels: {', '.join(thresholds) or 'none'})")
        else:
            raise ValueError(f"{key!r} is not an alert group of this model (groups: {describe(groups)})")
    return thresholds


def takes_threshold(manifest: Manifest, key: str) -> bool:
    """Whether an override keyed `key` names an alert group of this model ('*' names every model's): a unit
    with several image models gives each the overrides it has groups for."""
    try:
        resolve_thresholds(manifest, {key: 0.5})
    except ValueError:
        return False
    return True


def alert_margins(scores: np.ndarray, manifest: Manifest, thresholds: dict[str, float]) -> np.ndarray:
    """For scores (N, L): how far each row's best alert group is above (>= 0) or below its threshold."""
    if not thresholds:
        return scores.max(axis=-1) - 1.0
    groups = alert_groups(manifest)
    limits = np.asarray(list(thresholds.values()), dtype=np.float32)
    return (group_scores(scores, manifest.labels, {name: groups[name] for name in thresholds}) - limits).max(axis=-1)


def decide(scores: np.ndarray, manifest: Manifest, thresholds: dict[str, float]) -> Decision:
    """Decision for one score vector (L,)."""
    groups = alert_groups(manifest)
    values = dict(zip(groups, group_scores(scores, manifest.labels, groups)))
    detail = None if plain(groups) else {name: float(v) for name, v in values.items()}
    passed = [(values[name] - limit, name) for name, limit in thresholds.items()]
    passed = [item for item in passed if item[0] >= 0]
    if passed:
        name = max(passed)[1]
        return Decision(name, float(values[name]), True, thresholds[name], detail)
    name, score = _top(scores, manifest.labels, groups, values)
    return Decision(name, float(score), False, thresholds.get(name), detail)


def _top(scores: np.ndarray, labels: Sequence[str], groups: dict[str, tuple[str, ...]], values: dict) -> tuple:
    """The top of the groups and the labels in no group, each in the place of its first label (the
    first of equal scores wins, as np.argmax's does)."""
    group_of = {member: name for name, members in groups.items() for member in members}
    units: dict[str, float] = {}
    for label, score in zip(labels, scores):
        name = group_of.get(label, label)
        units.setdefault(name, values[name] if name in values else score)
    best = max(units, key=units.__getitem__)
    return best, units[best]
