"""Tiling geometry: tiles cover the frame, overlap as configured, edges handled."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.image.tiling import axis_starts, make_grid


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    list(itertools.product([1, 47, 48, 49, 95, 96, 100, 576, 1000, 1920], [16, 48, 224], [0.0, 0.1, 0.25, 0.5, 0.9])),
)
def test_tiles_cover_the_axis_with_at_least_the_overlap(length, tile, overlap):
    starts = axis_starts(length, tile, overlap)
    assert starts[0] == 0
    assert list(starts) == sorted(set(starts)), "starts strictly increase"
    if length <= tile:
        assert starts == (0,)
        return
    assert starts[-1] + tile == length, "last tile ends at the edge"
    assert all(s + tile <= length for s in starts), "no tile leaves the frame"
    gaps = np.diff(starts)
    min_overlap = tile - gaps.max()
    assert min_overlap >= np.floor(tile * overlap) - 1, "neighbours overlap at least as asked (±1 px rounding)"
    # Not wastefully many tiles: one fewer could not cover the axis at the requested step.
    step = max(1, int(np.floor(tile * (1 - overlap))))
    assert len(starts) == int(np.ceil((length - tile) / step)) + 1


def test_exact_grid_without_overlap():
    grid = make_grid(576, 576, 48, 0.0)
    assert (grid.rows, grid.cols) == (12, 12)
    assert grid.xs == tuple(range(0, 576, 48))
    assert grid.box(2, 3) == (144, 96, 192, 144)


def test_every_pixel_is_covered():
    grid = make_grid(203, 131, 48, 0.3)
    covered = np.zeros((131, 203), bool)
    for x0, y0, x1, y1 in grid.boxes():
        assert (x1 - x0, y1 - y0) == (48, 48)
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert len(grid.boxes()) == grid.rows * grid.cols


def test_frame_thinner_than_a_tile_gets_clipped_tiles():
    grid = make_grid(30, 200, 48, 0.0)
    assert grid.cols == 1 and grid.rows == 5
    assert all(box[2] == 30 for box in grid.boxes())


def test_frame_smaller_than_a_tile_is_one_tile():
    grid = make_grid(20, 20, 48, 0.5)
    assert grid.boxes() == [(0, 0, 20, 20)]


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0.0), (48, -0.1), (48, 0.95)])
def test_bad_parameters(tile, overlap):
    with pytest.raises(ValueError):
        make_grid(100, 100, tile, overlap)
