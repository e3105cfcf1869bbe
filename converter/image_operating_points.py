"""Operating points of an image model: what every threshold gives, per tile and per scene, and the one
chosen for a target.

Per tile: recall of the alert group, its false-alarm rate on the other tiles, precision, balanced
accuracy, and false alarms per 100 km² (a false tile is tile_km2 of ground). Per scene (converter.scenes):
recall = share of alert scenes where a tile over the alert block alerts; false alarms = background frames
that alert (a frame alerts when any tile does) per 100 km² of background frames, and the share of quiet
tiles (of every scene, off the block) that alert.

A target names what to reach, in the same words on the command line and in the manifest's provenance:
  max-balanced-accuracy        the tile balanced accuracy at its highest
  precision=P                  tile precision >= P, the most recall that allows (the rule before issue 12)
  scene-false-alarms=F         at most F false alarm frames per 100 km² of background, the most scene recall
Thresholds are chosen on validation figures only; test figures are computed at the chosen threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.scenes import SceneScores

TARGETS = ("max-balanced-accuracy", "precision", "scene-false-alarms")


@dataclass(frozen=True)
class Target:
    kind: str
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, value = text.partition("=")
        if kind not in TARGETS:
            raise ValueError(f"target {text!r}: expected max-balanced-accuracy, precision=P or scene-false-alarms=F")
        if kind == "max-balanced-accuracy":
            if value:
                raise ValueError(f"target {text!r}: max-balanced-accuracy takes no value")
            return cls(kind)
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"target {text!r}: {kind} needs a number, e.g. {kind}=0.9") from None
        if kind == "precision" and not 0.0 < number <= 1.0 or number < 0:
            raise ValueError(f"target {text!r}: out of range")
        return cls(kind, number)

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value:g}"


@dataclass
class Curve:
    """Figures at each threshold (ascending); every array has one entry per threshold."""

    thresholds: np.ndarray
    figures: dict[str, np.ndarray]

    def at(self, threshold: float) -> dict[str, float]:
        """The figures at any threshold in [0, 1]: those of the lowest candidate at or above it (the scores
        at or above `threshold` are exactly those at or above that candidate, as the candidates are the scores)."""
        k = min(len(self.thresholds) - 1, int(np.searchsorted(self.thresholds, threshold, side="left")))
        return {name: round(float(v[k]), 4) for name, v in self.figures.items()}

    def sampled(self, step: float = 0.01) -> dict[str, list[float]]:
        """The curve at thresholds 0, step, ..., 1 (for metrics.json and plots)."""
        grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
        points = [self.at(t) for t in grid]
        return {"threshold": grid.tolist(), **{name: [p[name] for p in points] for name in self.figures}}


def _at_least(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many of the scores are >= each threshold."""
    return len(sorted_scores) - np.searchsorted(sorted_scores, thresholds, side="left")


def candidates(*score_sets: np.ndarray) -> np.ndarray:
    """Every distinct score (an alert is score >= threshold, so these are the only thresholds that differ)."""
    return np.unique(np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in score_sets] + [np.array([0.0, 1.0])]))


def tile_curve(is_alert: np.ndarray, score: np.ndarray, thresholds: np.ndarray, tile_km2: float) -> Curve:
    """Per-tile figures for the alert group; `score` is the group's score of each tile."""
    is_alert = np.asarray(is_alert, dtype=bool)
    if is_alert.all() or not is_alert.any():
        raise ValueError("tile figures need tiles of the alert group and tiles without it")
    pos, neg = np.sort(score[is_alert]), np.sort(score[~is_alert])
    tp, fp = _at_least(pos, thresholds), _at_least(neg, thresholds)
    recall, fpr = tp / len(pos), fp / len(neg)
    precision = np.where(tp + fp > 0, tp / np.maximum(1, tp + fp), 1.0)
    return Curve(thresholds=thresholds, figures={
        "recall": recall, "false_alarm_rate": fpr, "precision": precision,
        "balanced_accuracy": 0.5 * (recall + 1.0 - fpr),
        "false_alarms_per_100km2": fpr * 100.0 / tile_km2,
    })


def scene_curve(scenes: SceneScores, thresholds: np.ndarray) -> Curve:
    """Per-scene figures (see the module's docstring)."""
    alert = [k for k, has in enumerate(scenes.has_alert) if has]
    quiet_scenes = [k for k, has in enumerate(scenes.has_alert) if not has]
    if not alert or not quiet_scenes:
        raise ValueError("scene figures need scenes with and without an alert block")
    found = np.sort([scenes.tile_scores[k][scenes.on_block[k]].max() for k in alert])
    frame_max = np.sort([scenes.tile_scores[k].max() for k in quiet_scenes])
    quiet_tiles = np.sort(np.concatenate([scenes.tile_scores[k][~scenes.on_block[k]] for k in range(len(scenes.has_alert))]))
    alerting = _at_least(frame_max, thresholds)
    return Curve(thresholds=thresholds, figures={
        "scene_recall": _at_least(found, thresholds) / len(found),
        "background_frames_alerting": alerting / len(frame_max),
        "false_alarms_per_100km2": alerting * 100.0 / (len(frame_max) * scenes.scene_km2),
        "quiet_tiles_alerting": _at_least(quiet_tiles, thresholds) / len(quiet_tiles),
    })


def choose(target: Target, tile: Curve, scene: Curve | None = None) -> tuple[float, bool]:
    """The threshold for `target` on validation curves, and whether the target was reached. Of thresholds
    that score alike, the one with the fewest false alarms; of those still alike (they count the same tiles
    and scenes), the middle one, furthest from where the figures change (as converter.operating_points of
    the audio side does). When a constraint cannot be met, the threshold that comes nearest (highest
    precision; fewest false alarm frames) and False. The threshold is one of the scores, exactly: keep it
    unrounded, as rounding up would pass over that score (alerts are score >= threshold)."""
    t, f = tile.thresholds, tile.figures
    if target.kind == "max-balanced-accuracy":
        return float(t[_best(f["balanced_accuracy"], f["false_alarm_rate"])]), True
    if target.kind == "precision":
        alerts = f["recall"] > 0  # a threshold above every score has precision 1 by convention
        ok = alerts & (f["precision"] >= target.value)
        if ok.any():
            return float(t[_best(np.where(ok, f["recall"], -1.0), f["false_alarm_rate"])]), True
        return float(t[_best(np.where(alerts, f["precision"], -1.0), f["false_alarm_rate"])]), False
    if scene is None:
        raise ValueError(f"target {target}: needs scene figures")
    if not np.array_equal(scene.thresholds, t):
        raise ValueError("tile and scene curves must share their thresholds")
    rate = scene.figures["false_alarms_per_100km2"]
    ok = rate <= target.value * (1 + 1e-9)
    if ok.any():
        return float(t[_best(np.where(ok, scene.figures["scene_recall"], -1.0), rate)]), True
    return float(t[_best(-rate, -scene.figures["scene_recall"])]), False


def _best(score: np.ndarray, false_alarms: np.ndarray) -> int:
    """Index of the highest `score`; ties -> the fewest `false_alarms` -> the middle of those left."""
    score, false_alarms = np.asarray(score), np.asarray(false_alarms)
    top = np.flatnonzero(score == score.max())
    top = top[false_alarms[top] == false_alarms[top].min()]
    return int(top[(len(top) - 1) // 2])
