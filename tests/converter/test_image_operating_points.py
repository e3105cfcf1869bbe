"""Thresholds chosen on score sets whose answers are known by hand; scene figures on scripted scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converter.image_operating_points import Curve, Target, candidates, choose, scene_curve, tile_curve
from converter.scenes import SceneScores

# Three alert tiles and four quiet ones. Alerting at >= t:
#   t=0.9: TP 1 FP 0 | 0.8: TP 2 FP 0 | 0.7: TP 2 FP 1 | 0.4: TP 3 FP 1 | 0.3: TP 3 FP 2 | ...
IS_ALERT = np.array([1, 1, 1, 0, 0, 0, 0], bool)
SCORE = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1])


def curve() -> Curve:
    return tile_curve(IS_ALERT, SCORE, candidates(SCORE), tile_km2=0.25)


def test_tile_figures_by_hand():
    c = curve()
    assert c.at(0.8) == {"recall": pytest.approx(0.6667), "false_alarm_rate": 0.0, "precision": 1.0,
                         "balanced_accuracy": pytest.approx(0.8333), "false_alarms_per_100km2": 0.0}
    at = c.at(0.4)
    assert at["recall"] == 1.0 and at["false_alarm_rate"] == 0.25 and at["precision"] == 0.75
    assert at["balanced_accuracy"] == 0.875
    assert at["false_alarms_per_100km2"] == 100.0  # a quarter of the quiet tiles, one per 0.25 km²: 1 per km²


def test_figures_between_candidates_are_those_of_the_next_score_up():
    c = curve()
    assert c.at(0.5) == c.at(0.7) and c.at(0.41) == c.at(0.7) and c.at(0.4) != c.at(0.41)
    assert c.at(1.0)["recall"] == 0.0 and c.at(0.0)["recall"] == 1.0 and c.at(0.0)["false_alarm_rate"] == 1.0


def test_max_balanced_accuracy():
    assert choose(Target.parse("max-balanced-accuracy"), curve()) == (0.4, True)


def test_precision_target_takes_the_most_recall_that_reaches_it():
    assert choose(Target.parse("precision=1"), curve()) == (0.8, True)
    assert choose(Target.parse("precision=0.75"), curve()) == (0.4, True)
    assert choose(Target.parse("precision=0.7"), curve()) == (0.4, True)  # 0.3 has precision 0.6


def test_a_precision_no_threshold_reaches_gives_the_best_there_is_and_says_so():
    is_alert = np.array([0, 1, 0, 1], bool)
    score = np.array([0.9, 0.8, 0.7, 0.6])  # the top tile is quiet: precision never reaches 1
    c = tile_curve(is_alert, score, candidates(score), 1.0)
    threshold, reached = choose(Target.parse("precision=1"), c)
    assert not reached and threshold == 0.8  # precision 1/2 at 0.8 and at 0.6; the higher threshold wins the tie


def test_ties_go_to_fewer_false_alarms_then_the_middle():
    is_alert = np.array([1, 1, 0, 0], bool)
    score = np.array([0.9, 0.3, 0.6, 0.1])
    # balanced accuracy: 0.75 at 0.9 (recall 1/2, no false alarm) and at 0.3 (recall 1, false alarms 1/2)
    c = tile_curve(is_alert, score, candidates(score), 1.0)
    assert c.at(0.3)["balanced_accuracy"] == c.at(0.9)["balanced_accuracy"] == 0.75
    assert choose(Target.parse("max-balanced-accuracy"), c) == (0.9, True)  # 0.9: no false alarm
    # thresholds that count the same tiles (here 0.5 and 0.55 between the scores) -> the middle one
    c = tile_curve(np.array([1, 0]), np.array([0.6, 0.4]), np.array([0.0, 0.4, 0.45, 0.5, 0.55, 0.6, 1.0]), 1.0)
    assert choose(Target.parse("max-balanced-accuracy"), c) == (0.5, True)  # 0.45 .. 0.6 all perfect


def scripted_scenes() -> SceneScores:
    """Two alert scenes and three background scenes of four grid tiles each, 10 km² a scene."""
    tiles = [np.array([0.9, 0.2, 0.1, 0.3]), np.array([0.6, 0.7, 0.2, 0.2]),  # block on tile 0; on tile 1
             np.array([0.1, 0.5, 0.2, 0.1]), np.array([0.8, 0.1, 0.1, 0.1]), np.array([0.3, 0.3, 0.2, 0.1])]
    on_block = [np.array([1, 0, 0, 0], bool), np.array([0, 1, 0, 0], bool)] + [np.zeros(4, bool)] * 3
    return SceneScores(tile_scores=tiles, on_block=on_block, has_alert=np.array([1, 1, 0, 0, 0], bool),
                       scene_km2=10.0, grid_tiles=4)


def test_scene_figures_by_hand():
    s = scripted_scenes()
    c = scene_curve(s, candidates(*s.tile_scores))
    # t = 0.7: both blocks found (0.9, 0.7); background frames alerting: the one with 0.8 -> 1 of 3 frames,
    # 1 per 30 km² = 3.3333 per 100 km²; quiet tiles (18 off the blocks) alerting: 0.8 -> 1/18
    assert c.at(0.7) == {"scene_recall": 1.0, "background_frames_alerting": pytest.approx(0.3333),
                         "false_alarms_per_100km2": pytest.approx(3.3333), "quiet_tiles_alerting": pytest.approx(0.0556)}
    # t = 0.85: one block found; no background frame alerts
    assert c.at(0.85)["scene_recall"] == 0.5 and c.at(0.85)["false_alarms_per_100km2"] == 0.0
    # t = 0.5: the quiet 0.6 of scene 1 and 0.8, 0.5 of the background scenes alert
    assert c.at(0.5)["quiet_tiles_alerting"] == pytest.approx(3 / 18, abs=1e-4)
    assert c.at(0.5)["background_frames_alerting"] == pytest.approx(2 / 3, abs=1e-4)


def test_scene_false_alarm_target():
    s = scripted_scenes()
    thresholds = candidates(*s.tile_scores)
    tile = tile_curve(np.array([1, 0]), np.array([0.9, 0.1]), thresholds, 1.0)
    scene = scene_curve(s, thresholds)
    # at most 0 per 100 km²: no background frame may alert -> above 0.8; the most recall there: 0.9 (one block)
    assert choose(Target.parse("scene-false-alarms=0"), tile, scene) == (0.9, True)
    # at most 4 per 100 km² (one frame of three): 0.6 and 0.7 both find both blocks with that one frame; the
    # middle of the two (the lower, of two)
    assert choose(Target.parse("scene-false-alarms=4"), tile, scene) == (0.6, True)
    # a background frame with a tile at 1.0 alerts at every threshold: the target cannot be met; of the
    # (equally bad) thresholds, those with the most recall (0.0 and 0.9), the middle: 0.0, and reached=False
    empty = scene_curve(SceneScores(tile_scores=[np.array([0.9]), np.array([1.0])], on_block=[np.array([True]), np.array([False])],
                                    has_alert=np.array([True, False]), scene_km2=1.0, grid_tiles=1), np.array([0.0, 0.9, 1.0]))
    empty_tile = tile_curve(np.array([1, 0]), np.array([0.9, 1.0]), np.array([0.0, 0.9, 1.0]), 1.0)
    assert choose(Target.parse("scene-false-alarms=0"), empty_tile, empty) == (0.0, False)
    with pytest.raises(ValueError, match="needs scene figures"):
        choose(Target.parse("scene-false-alarms=4"), tile)


def test_sampled_curve_is_json():
    sampled = curve().sampled(0.1)
    assert sampled["threshold"][:3] == [0.0, 0.1, 0.2] and len(sampled["recall"]) == 11
    json.dumps(sampled, allow_nan=False)


@pytest.mark.parametrize("text, message", [("precision", "needs a number"), ("precision=1.5", "out of range"),
                                           ("max-balanced-accuracy=1", "takes no value"), ("recall=0.9", "expected")])
def test_bad_targets_say_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        Target.parse(text)


def test_targets_print_as_they_parse():
    for text in ("max-balanced-accuracy", "precision=0.9", "scene-false-alarms=2.5"):
        assert str(Target.parse(text)) == text
