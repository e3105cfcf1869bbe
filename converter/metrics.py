"""Classification metrics, written out so that tools can read them (`metrics.json`)."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """rows: true label, columns: predicted label."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def summary(y_true: np.ndarray, scores: np.ndarray, labels: tuple[str, ...]) -> dict:
    """accuracy, balanced accuracy, per-class precision/recall/F1 and the confusion matrix (argmax)."""
    y_pred = scores.argmax(axis=1)
    m = confusion(y_true, y_pred, len(labels))
    per_class = {}
    recalls = []
    for k, label in enumerate(labels):
        tp = m[k, k]
        precision = tp / m[:, k].sum() if m[:, k].sum() else 0.0
        recall = tp / m[k, :].sum() if m[k, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                            "f1": round(float(f1), 4), "support": int(m[k, :].sum())}
        if m[k, :].sum():
            recalls.append(recall)
    return {
        "accuracy": round(float(np.mean(y_pred == y_true)), 4),
        "balanced_accuracy": round(float(np.mean(recalls)), 4),
        "per_class": per_class,
        "confusion": m.tolist(),
    }


def precision_recall_curve(is_positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall) for 'score >= threshold', thresholds descending."""
    order = np.argsort(-score, kind="stable")
    s, pos = score[order], is_positive[order].astype(np.int64)
    tp = np.cumsum(pos)
    fp = np.cumsum(1 - pos)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each distinct score
    thresholds = s[last]
    precision = tp[last] / (tp[last] + fp[last])
    recall = tp[last] / max(1, pos.sum())
    return thresholds, precision, recall


def threshold_for_precision(is_positive: np.ndarray, score: np.ndarray, target: float) -> tuple[float, float, float, bool]:
    """The lowest threshold whose precision reaches `target` (most recall at that precision).
    Returns (threshold, precision, recall, reached); when no threshold reaches it, the one with
    the highest precision, and reached=False."""
    thresholds, precision, recall = precision_recall_curve(is_positive, score)
    ok = np.flatnonzero(precision >= target)
    if len(ok):
        k = ok[np.argmax(recall[ok])]
        return float(thresholds[k]), float(precision[k]), float(recall[k]), True
    k = int(np.argmax(precision))
    return float(thresholds[k]), float(precision[k]), float(recall[k]), False
