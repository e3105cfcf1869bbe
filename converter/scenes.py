"""Synthetic scenes: frames the unit might see, made of the labelled tiles of ONE split.

A frame alerts when any of its tiles does, so a per-tile false-alarm rate says little about how often
a whole frame of quiet ground raises an alert. A scene here is `rows` x `cols` tiles of one split (8 x 8
tiles of 48 px at 10 m/px: 3.84 km a side, 14.7 km²), drawn at random without repeats inside a scene:
background scenes hold only tiles without the alert group's labels, alert scenes a square block of k x k
alert tiles (k from `block_sizes`) at a random place among background tiles. Validation scenes are for
choosing, test scenes for reporting; never mix splits in one scene.

Scenes are classified with the unit's own code (`edge.image.classify.classify_frame`: its tiling with
overlap, its batches, its TTA), so the tiles that straddle the seams between unrelated tiles are seen as
the unit would see them: a seam is harder than real ground, where neighbouring tiles match.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edge.decisions.groups import group_scores
from edge.image.classify import ClassifyOptions, classify_frame


@dataclass(frozen=True)
class SceneSpec:
    rows: int = 8
    cols: int = 8
    background: int = 150  # scenes without any alert tile
    with_alert: int = 150  # scenes with one block of alert tiles
    block_sizes: tuple[int, ...] = (1, 2, 3)  # the block's edge in tiles, drawn evenly
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1 or self.background < 0 or self.with_alert < 0:
            raise ValueError(f"scenes: rows, cols >= 1 and scene counts >= 0, got {self}")
        if self.with_alert and (not self.block_sizes or min(self.block_sizes) < 1
                                or max(self.block_sizes) > min(self.rows, self.cols)):
            raise ValueError(f"scenes: block sizes {self.block_sizes} must fit in {self.rows} x {self.cols} tiles")


@dataclass(frozen=True)
class Scene:
    cells: np.ndarray  # (rows, cols) indices into the split's tiles
    block: tuple[int, int, int, int] | None  # (row0, col0, row1, col1) of the alert block, in cells, ends exclusive


def build_scenes(is_alert: np.ndarray, spec: SceneSpec) -> list[Scene]:
    """Scenes over one split's tiles; `is_alert[i]` says whether tile i holds an alert label. Seeded."""
    is_alert = np.asarray(is_alert, dtype=bool)
    alert, quiet = np.flatnonzero(is_alert), np.flatnonzero(~is_alert)
    n = spec.rows * spec.cols
    biggest = max(spec.block_sizes) ** 2 if spec.with_alert else 0
    if len(quiet) < n or (spec.with_alert and len(alert) < biggest):
        raise ValueError(f"scenes of {spec.rows} x {spec.cols} tiles need {n} background tiles and {biggest} alert "
                         f"tiles in the split; it has {len(quiet)} and {len(alert)}")
    rng = np.random.default_rng(spec.seed)
    scenes = []
    for k in range(spec.background + spec.with_alert):
        cells = rng.choice(quiet, n, replace=False).reshape(spec.rows, spec.cols)
        block = None
        if k >= spec.background:
            size = int(rng.choice(spec.block_sizes))
            r0, c0 = int(rng.integers(0, spec.rows - size + 1)), int(rng.integers(0, spec.cols - size + 1))
            block = (r0, c0, r0 + size, c0 + size)
            cells[r0:r0 + size, c0:c0 + size] = rng.choice(alert, size * size, replace=False).reshape(size, size)
        scenes.append(Scene(cells=cells, block=block))
    return scenes


def render(scene: Scene, tile: Callable[[int], Image.Image], tile_px: int) -> Image.Image:
    """The scene as one RGB picture, each cell `tile_px` square (tiles of another size are resized)."""
    rows, cols = scene.cells.shape
    out = Image.new("RGB", (cols * tile_px, rows * tile_px))
    for (r, c), i in np.ndenumerate(scene.cells):
        img = tile(int(i)).convert("RGB")
        if img.size != (tile_px, tile_px):
            img = img.resize((tile_px, tile_px), Image.Resampling.BILINEAR)
        out.paste(img, (c * tile_px, r * tile_px))
    return out


@dataclass
class SceneScores:
    """What the unit said about each scene: the alert group's score of every tile of its grid."""

    tile_scores: list[np.ndarray]  # per scene, (grid tiles,) group scores
    on_block: list[np.ndarray]  # per scene, (grid tiles,) bool: the grid tile overlaps the alert block
    has_alert: np.ndarray  # (scenes,) bool
    scene_km2: float  # ground one scene covers
    grid_tiles: int  # tiles per scene in the unit's grid (with overlap: more than rows x cols)


def score_scenes(model, scenes: list[Scene], tile: Callable[[int], Image.Image], group: str,
                 options: ClassifyOptions, ground_m: float) -> SceneScores:
    """Classify every scene as a PNG frame, as `nv-edge classify` would; `ground_m` is one cell's edge on the
    ground in metres (tile_px x metres per pixel)."""
    tile_px = model.manifest.trained_on.tile_px
    if not tile_px:
        raise ValueError(f"{model.path}: the model has no training tile size (trained_on.tile_px): scenes need one")
    members = _members(model.manifest, group)
    scores, on_block = [], []
    for scene in scenes:
        buf = io.BytesIO()
        render(scene, tile, tile_px).save(buf, format="PNG")
        result = classify_frame(model, buf.getvalue(), options)
        grid = result.tiles.grid
        per_tile = result.tiles.scores.reshape(grid.rows * grid.cols, -1)
        scores.append(group_scores(per_tile, model.manifest.labels, {group: members})[:, 0])
        on_block.append(_overlaps(grid.boxes(), scene.block, tile_px))
    rows, cols = scenes[0].cells.shape if scenes else (0, 0)
    return SceneScores(tile_scores=scores, on_block=on_block,
                       has_alert=np.array([s.block is not None for s in scenes], dtype=bool),
                       scene_km2=rows * cols * (ground_m / 1000.0) ** 2,
                       grid_tiles=len(scores[0]) if scores else 0)


def _members(manifest, group: str) -> tuple[str, ...]:
    if manifest.groups is not None and group in manifest.groups:
        return tuple(manifest.groups[group])
    if group in manifest.alert_labels:
        return (group,)
    raise ValueError(f"{group!r} is not an alert group of model {manifest.name}")


def _overlaps(boxes, block, tile_px: int) -> np.ndarray:
    if block is None:
        return np.zeros(len(boxes), dtype=bool)
    r0, c0, r1, c1 = block
    x0, y0, x1, y1 = c0 * tile_px, r0 * tile_px, c1 * tile_px, r1 * tile_px
    return np.array([b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0 for b in boxes], dtype=bool)
