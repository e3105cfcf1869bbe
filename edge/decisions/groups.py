"""Alert groups: the alert labels that are decided together.

A model may share one sound between labels: an idling engine gets engine 0.5 and drilling 0.45,
and neither passes its own threshold, though the model is sure it hears machinery. A group's score
is the sum of its labels' probabilities, and thresholds, alerts and events work on groups. The
manifest declares them (`groups`, checked by edge.model.bundle); without it every alert label is a
group of one, named after it, so a bundle without groups decides exactly as it always has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.model.bundle import Manifest


def alert_groups(manifest: Manifest) -> dict[str, tuple[str, ...]]:
    """Group name -> its alert labels, in the manifest's order."""
    if manifest.groups is not None:
        return {name: tuple(members) for name, members in manifest.groups.items()}
    return {label: (label,) for label in manifest.alert_labels}


def group_scores(scores: np.ndarray, labels: Sequence[str], groups: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Scores (..., L) -> group scores (..., G), in the order of `groups`: the sum of each group's
    labels, at most 1 (rounding of int8 outputs can push a sum of probabilities a hair over). The
    dtype is kept, so a group of one label scores exactly what its label does."""
    scores = np.asarray(scores)
    columns = [scores[..., [labels.index(m) for m in members]].sum(axis=-1) for members in groups.values()]
    if not columns:
        return np.zeros(scores.shape[:-1] + (0,), dtype=scores.dtype)
    return np.minimum(np.stack(columns, axis=-1), scores.dtype.type(1))


def plain(groups: dict[str, tuple[str, ...]]) -> bool:
    """True when every group is one label of its own name: decisions are per label, and records need
    no `group_scores` (they would repeat `scores`)."""
    return all(members == (name,) for name, members in groups.items())


def describe(groups: dict[str, tuple[str, ...]]) -> str:
    """For error messages: "machinery = engine + drilling + chainsaw"."""
    return ", ".join(f"{name} = {' + '.join(members)}" for name, members in groups.items()) or "none"
