"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from converter.metrics import confusion, precision_recall_curve, summary, threshold_for_precision


def test_summary_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    s = summary(y, scores, ("mining", "not_mining"))
    # predicted: 0 0 1 0 1 0 -> mining recall 3/4, not_mining recall 1/2
    assert s["confusion"] == [[3, 1], [1, 1]]
    assert s["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert s["balanced_accuracy"] == pytest.approx((0.75 + 0.5) / 2, abs=1e-4)
    assert s["per_class"]["mining"] == {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert s["per_class"]["not_mining"]["precision"] == 0.5


def test_confusion_counts_every_sample():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    m = confusion(y, p, 3)
    assert m.sum() == 200 and np.trace(m) == np.sum(y == p)


def test_precision_recall_curve_by_hand():
    positive = np.array([1, 1, 0, 1, 0, 0], bool)
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.6, 0.1])
    t, p, r = precision_recall_curve(positive, score)
    assert t.tolist() == [0.9, 0.8, 0.7, 0.6, 0.1]
    assert p.tolist() == pytest.approx([1, 1, 2 / 3, 3 / 5, 3 / 6])
    assert r.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1, 1])


def test_threshold_for_precision():
    positive = np.array([1, 1, 0, 1, 0, 0], bool)
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.6, 0.1])
    assert threshold_for_precision(positive, score, 0.95) == (0.8, 1.0, pytest.approx(2 / 3), True)
    assert threshold_for_precision(positive, score, 0.6)[0] == 0.6
    t, p, _, reached = threshold_for_precision(np.array([0, 0, 1], bool), np.array([0.9, 0.8, 0.1]), 0.9)
    assert not reached and p == pytest.approx(1 / 3)
