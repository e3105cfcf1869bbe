"""Synthetic scenes: how they are built from one split's tiles, and what the unit's own code says of them
(the tiny model: red is mining, green is not)."""

from __future__ import annotations

import numpy as np
import pytest
from build_models import TILE
from imagefiles import GREEN, RED, solid
from PIL import Image

from converter.image_operating_points import candidates, scene_curve
from converter.scenes import Scene, SceneSpec, build_scenes, render, score_scenes
from edge.decisions.alerts import resolve_thresholds
from edge.image.classify import ClassifyOptions
from edge.model.loaded import load_model


def test_scenes_are_built_as_specified():
    is_alert = np.array([True] * 30 + [False] * 100)
    spec = SceneSpec(rows=4, cols=5, background=7, with_alert=9, block_sizes=(1, 2, 3), seed=3)
    scenes = build_scenes(is_alert, spec)
    assert len(scenes) == 16 and [s.block is None for s in scenes] == [True] * 7 + [False] * 9
    for s in scenes:
        assert s.cells.shape == (4, 5) and len(set(s.cells.ravel().tolist())) == 20  # no tile twice in a scene
        mask = np.zeros((4, 5), bool)
        if s.block is not None:
            r0, c0, r1, c1 = s.block
            assert r1 - r0 == c1 - c0 and r1 - r0 in (1, 2, 3) and 0 <= r0 and r1 <= 4 and 0 <= c0 and c1 <= 5
            mask[r0:r1, c0:c1] = True
        assert is_alert[s.cells[mask]].all() and not is_alert[s.cells[~mask]].any()
    again = build_scenes(is_alert, spec)
    assert all(np.array_equal(a.cells, b.cells) and a.block == b.block for a, b in zip(scenes, again))
    assert sorted({s.block[2] - s.block[0] for s in scenes if s.block}) != [1]  # the sizes are drawn


def test_too_few_tiles_is_a_clear_error():
    with pytest.raises(ValueError, match="need 64 background tiles and 9 alert tiles"):
        build_scenes(np.array([True] * 20 + [False] * 40), SceneSpec())
    with pytest.raises(ValueError, match="must fit"):
        SceneSpec(rows=2, cols=2, block_sizes=(3,))


def test_render_puts_each_tile_in_its_cell():
    colours = [(10 * i, 0, 0) for i in range(6)]
    scene = Scene(cells=np.array([[5, 0, 3], [1, 2, 4]]), block=None)
    img = np.asarray(render(scene, lambda i: solid(colours[i], (8, 8)), tile_px=4))  # resized to 4 px cells
    assert img.shape == (8, 12, 3)
    for (r, c), i in np.ndenumerate(scene.cells):
        assert tuple(img[r * 4 + 2, c * 4 + 2]) == colours[i]


@pytest.fixture(scope="module")
def scored(tiny_models):
    model = load_model(tiny_models["int8"])
    is_alert = np.array([True] * 12 + [False] * 40)
    tiles = [solid(RED) if a else solid(GREEN) for a in is_alert]
    scenes = build_scenes(is_alert, SceneSpec(rows=4, cols=4, background=3, with_alert=4, block_sizes=(2,), seed=1))
    options = ClassifyOptions(thresholds=resolve_thresholds(model.manifest))
    return scenes, score_scenes(model, scenes, tiles.__getitem__, "mining", options, ground_m=TILE * 10.0)


def test_the_unit_finds_the_blocks_and_nothing_else(scored):
    scenes, s = scored
    assert s.has_alert.tolist() == [False] * 3 + [True] * 4
    assert s.scene_km2 == pytest.approx(16 * 0.16 ** 2) and s.grid_tiles == 25  # 64 px at overlap 0.25: 5 x 5 tiles
    for k, scene in enumerate(scenes):
        if scene.block is None:
            assert not s.on_block[k].any() and s.tile_scores[k].max() < 0.2
        else:
            assert s.tile_scores[k][s.on_block[k]].max() > 0.9  # a grid tile over the 2 x 2 block is all red
            assert s.tile_scores[k][~s.on_block[k]].max() < 0.2
    curve = scene_curve(s, candidates(*s.tile_scores))
    assert curve.at(0.5) == {"scene_recall": 1.0, "background_frames_alerting": 0.0, "false_alarms_per_100km2": 0.0,
                             "quiet_tiles_alerting": 0.0}


def test_a_grid_tile_over_the_block_edge_counts_as_on_it(scored):
    scenes, s = scored
    k = next(i for i, sc in enumerate(scenes) if sc.block is not None)
    r0, c0, r1, c1 = scenes[k].block
    # the 2 x 2 block covers cells r0..r1, c0..c1 (16 px each); grid tiles start every 12 px
    starts = [0, 12, 24, 36, 48]
    expected = [(x < c1 * TILE and x + TILE > c0 * TILE and y < r1 * TILE and y + TILE > r0 * TILE)
                for y in starts for x in starts]
    assert s.on_block[k].tolist() == expected


def test_frames_of_other_sizes_are_resized_to_the_training_tile():
    scene = Scene(cells=np.array([[0]]), block=None)
    assert render(scene, lambda i: Image.new("RGB", (48, 30), RED), tile_px=16).size == (16, 16)
