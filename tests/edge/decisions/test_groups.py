"""Alert groups: group scores, decisions and thresholds on groups, and bundles without groups deciding
exactly as they did before groups existed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from build_models import tiny_audio_manifest

from edge.decisions.alerts import Decision, alert_margins, decide, resolve_thresholds
from edge.decisions.events import EventRules, EventTracker
from edge.decisions.groups import alert_groups, group_scores, plain
from edge.model.bundle import Manifest, manifest_checksum, parse_manifest

LABELS = ("background", "engine", "drilling", "chainsaw", "rain")
ALERTS = ("engine", "drilling", "chainsaw")
MACHINERY = {"machinery": ["engine", "drilling", "chainsaw"]}


def manifest(thresholds: dict, groups: dict | None = None, labels=LABELS, alerts=ALERTS) -> Manifest:
    """A manifest as loading a bundle makes it (checked by edge.model.bundle)."""
    m = replace(tiny_audio_manifest("m", "int8"), labels=labels, alert_labels=alerts, thresholds=thresholds,
                groups=groups, model_sha256="0" * 64)
    data = json.loads(m.to_json())
    data["manifest_sha256"] = manifest_checksum(data)  # as write_bundle seals it
    return parse_manifest(data, Path("m.nvm"))


PER_LABEL = manifest({"engine": 0.984, "drilling": 0.981, "chainsaw": 0.156})  # the thresholds of issue 12
GROUPED = manifest({"machinery": 0.9}, MACHINERY)


def old_decide(scores, m: Manifest, thresholds) -> Decision:
    """edge/decisions/alerts.py before groups (ad046d6), word for word."""
    passed = [(scores[m.labels.index(label)] - limit, label) for label, limit in thresholds.items()]
    passed = [item for item in passed if item[0] >= 0]
    if passed:
        label = max(passed)[1]
        return Decision(label, float(scores[m.labels.index(label)]), True, thresholds[label])
    top = int(np.argmax(scores))
    return Decision(m.labels[top], float(scores[top]), False, thresholds.get(m.labels[top]))


def old_margins(scores, m: Manifest, thresholds) -> np.ndarray:
    if not thresholds:
        return scores.max(axis=-1) - 1.0
    idx = [m.labels.index(label) for label in thresholds]
    return (scores[..., idx] - np.asarray(list(thresholds.values()), dtype=np.float32)).max(axis=-1)


def scores(**by_label: float) -> np.ndarray:
    return np.array([by_label.get(label, 0.0) for label in LABELS], dtype=np.float32)


def test_groups_from_the_manifest_or_one_per_alert_label():
    assert alert_groups(GROUPED) == {"machinery": ("engine", "drilling", "chainsaw")} and not plain(alert_groups(GROUPED))
    assert alert_groups(PER_LABEL) == {"engine": ("engine",), "drilling": ("drilling",), "chainsaw": ("chainsaw",)}
    assert plain(alert_groups(PER_LABEL))


def test_group_scores_add_up_their_labels():
    groups = {"machinery": ("engine", "drilling"), "saw": ("chainsaw",)}
    batch = np.array([[0.05, 0.5, 0.45, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4, 0.0]], dtype=np.float32)
    got = group_scores(batch, LABELS, groups)
    assert got.shape == (2, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, [[0.95, 0.0], [0.5, 0.4]], atol=1e-7)
    tiles = np.tile(batch[1], (3, 4, 1))  # (rows, cols, labels) -> (rows, cols, groups)
    assert group_scores(tiles, LABELS, groups).shape == (3, 4, 2)
    assert group_scores(batch[0], LABELS, {"engine": ("engine",)})[0] == batch[0][1], "a group of one is its label, exactly"
    over = np.array([0.0, 0.5, 0.5039, 0.0, 0.0], dtype=np.float32)  # int8 rounding: a sum a hair over 1
    assert group_scores(over, LABELS, {"m": ("engine", "drilling")})[0] == 1.0


def test_an_idling_engine_is_machinery_though_no_label_passes_alone():
    idling = scores(background=0.05, engine=0.5, drilling=0.45)
    per_label = decide(idling, PER_LABEL, resolve_thresholds(PER_LABEL))
    assert (per_label.label, per_label.alert, per_label.threshold, per_label.group_scores) == ("engine", False, 0.984, None)
    grouped = decide(idling, GROUPED, resolve_thresholds(GROUPED))
    assert (grouped.label, grouped.alert, grouped.threshold) == ("machinery", True, 0.9)
    assert grouped.score == pytest.approx(0.95) and grouped.group_scores == {"machinery": pytest.approx(0.95)}


def test_without_an_alert_the_label_is_the_top_group_or_ungrouped_label():
    thresholds = resolve_thresholds(GROUPED)
    shared = decide(scores(background=0.4, engine=0.3, drilling=0.3), GROUPED, thresholds)
    assert (shared.label, shared.alert, shared.threshold) == ("machinery", False, 0.9) and shared.score == pytest.approx(0.6)
    quiet = decide(scores(background=0.2, rain=0.7, engine=0.1), GROUPED, thresholds)
    assert (quiet.label, quiet.alert, quiet.threshold) == ("rain", False, None) and quiet.score == pytest.approx(0.7)


def test_two_groups_the_one_furthest_above_its_threshold_wins():
    m = manifest({"machinery": 0.6, "chainsaw": 0.2}, {"machinery": ["engine", "drilling"], "chainsaw": ["chainsaw"]})
    d = decide(scores(engine=0.3, drilling=0.35, chainsaw=0.3), m, resolve_thresholds(m))
    assert (d.label, d.alert, d.threshold) == ("chainsaw", True, 0.2), "0.1 above its threshold beats 0.05 above"
    assert d.score == pytest.approx(0.3)
    assert d.group_scores == {"machinery": pytest.approx(0.65), "chainsaw": pytest.approx(0.3)}


@pytest.mark.parametrize("seed", range(5))
def test_bundles_without_groups_decide_as_before(seed):
    """The same scores through today's code and through ad046d6's: the same decisions and margins."""
    rng = np.random.default_rng(seed)
    image = manifest({"mining": 0.6}, labels=("mining", "not_mining"), alerts=("mining",))
    for m in (PER_LABEL, image, manifest({"engine": 0.5, "chainsaw": 0.25}, alerts=("engine", "chainsaw"))):
        logits = rng.normal(0, 2, (300, len(m.labels)))
        batch = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
        batch[:20] = np.round(batch[:20] * 256) / 256  # int8 outputs: multiples of 1/256 ...
        limits = resolve_thresholds(m)
        batch[20:40, m.labels.index(m.alert_labels[0])] = limits[m.alert_labels[0]]  # ... and scores on a threshold
        for thresholds in (limits, resolve_thresholds(m, {"*": 0.3}), {}):
            for row in batch:
                assert decide(row, m, thresholds) == old_decide(row, m, thresholds)
            np.testing.assert_array_equal(alert_margins(batch, m, thresholds), old_margins(batch, m, thresholds))


def test_thresholds_are_keyed_by_group():
    assert resolve_thresholds(GROUPED) == {"machinery": 0.9}
    assert resolve_thresholds(GROUPED, {"machinery": 0.5}) == {"machinery": 0.5}
    assert resolve_thresholds(GROUPED, {"*": 0.7}) == {"machinery": 0.7}
    with pytest.raises(ValueError, match=r"'engine' is decided in its group, not alone: set the group's threshold "
                                         r"\(groups: machinery = engine \+ drilling \+ chainsaw\)"):
        resolve_thresholds(GROUPED, {"engine": 0.5})
    with pytest.raises(ValueError, match=r"'rain' is not an alert group of this model \(groups: machinery = "):
        resolve_thresholds(GROUPED, {"rain": 0.5})
    with pytest.raises(ValueError, match=r"'rain' is not an alert label of this model \(alert labels: engine, drilling, chainsaw\)"):
        resolve_thresholds(PER_LABEL, {"rain": 0.5})
    with pytest.raises(ValueError, match=r"threshold for 'machinery' must be in \[0, 1\]"):
        resolve_thresholds(GROUPED, {"machinery": 1.5})


def test_a_group_named_like_its_one_label_is_that_label():
    m = manifest({"mining": 0.6}, {"mining": ["mining"]}, labels=("mining", "not_mining"), alerts=("mining",))
    assert plain(alert_groups(m))
    d = decide(np.array([0.7, 0.3], dtype=np.float32), m, resolve_thresholds(m))
    assert d == Decision("mining", pytest.approx(0.7), True, 0.6) and d.group_scores is None


def test_events_track_groups():
    idling = [0.05, 0.5, 0.45, 0.0, 0.0]
    grouped = EventTracker(LABELS, resolve_thresholds(GROUPED), EventRules(), groups=alert_groups(GROUPED))
    per_label = EventTracker(LABELS, resolve_thresholds(PER_LABEL), EventRules(), groups=alert_groups(PER_LABEL))
    events = []
    for i in range(6):
        assert per_label.observe(i * 0.5, i * 0.5 + 1, idling) == []
        events += grouped.observe(i * 0.5, i * 0.5 + 1, idling)
    (start,) = events
    assert (start.label, start.phase, start.start, start.threshold) == ("machinery", "start", 0.0, 0.9)
    assert start.peak_score == pytest.approx(0.95) and start.peak_group_scores == {"machinery": pytest.approx(0.95)}
    assert start.peak_scores == pytest.approx(tuple(idling))
    with pytest.raises(ValueError, match=r"'engine', which is not an alert group \(machinery = engine \+ drilling"):
        EventTracker(LABELS, {"engine": 0.5}, groups=alert_groups(GROUPED))
    with pytest.raises(ValueError, match=r"groups name \['saw'\], which are not labels of this model"):
        EventTracker(LABELS, {"machinery": 0.5}, groups={"machinery": ("engine", "saw")})
