"""Classify one frame: decode, cut into tiles at the training scale, run the tiles in batches,
and reduce the tile scores to one decision.

A frame is as alarming as its most alarming tile: the frame's scores are those of the tile whose
alert score stands highest above its threshold, and that tile is reported with its pixel box.

With test-time augmentation (the manifest's `input.tta`, or ClassifyOptions.tta) a tile's scores are the
mean of the model's scores for its orientations (edge.features.pixels.TTA_ORIENTATIONS), one invoke per
orientation of a batch. The converter scores its validation and test tiles through `predict_tiles` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from edge.decisions.alerts import Decision, alert_margins, decide
from edge.features.pixels import orientations, prepare_tile
from edge.image.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Frame, open_frame
from edge.image.exif import read_capture_time, read_geo
from edge.image.tiling import TileGrid, make_grid
from edge.model.loaded import Model

DEFAULT_OVERLAP = 0.25
DEFAULT_BATCH = 4  # tiles per invoke: as fast as 16 with XNNPACK, and the interpreter's arena is 3.6 MB smaller


@dataclass(frozen=True)
class ClassifyOptions:
    thresholds: dict[str, float]
    tile: int | None = None  # source pixels; None = the manifest's tile size, 0 = whole frame
    overlap: float = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    tta: int | None = None  # orientations averaged per tile; None = the manifest's input.tta


@dataclass
class TileScores:
    grid: TileGrid
    scores: np.ndarray  # (rows, cols, labels)
    best: tuple[int, int]  # (row, col) of the deciding tile

    @property
    def best_box(self) -> tuple[int, int, int, int]:
        return self.grid.box(*self.best)


@dataclass
class FrameResult:
    width: int
    height: int
    scores: np.ndarray  # (labels,)
    decision: Decision
    tiles: TileScores | None = None
    geo: dict | None = None
    captured: tuple[datetime, str] | None = None
    format: str = ""
    tta: int = 1  # orientations whose scores were averaged per tile


def tile_size_for(model: Model, options: ClassifyOptions) -> int:
    """Tile edge in source pixels; 0 means the whole frame is one input."""
    if options.tile is not None:
        return options.tile
    return model.manifest.trained_on.tile_px or 0


def tta_for(model: Model, options: ClassifyOptions) -> int:
    return model.manifest.input.tta if options.tta is None else options.tta


def predict_tiles(model: Model, pixels: np.ndarray, tta: int = 1) -> np.ndarray:
    """uint8 tiles (N, H, W, 3) -> scores (N, labels): with tta > 1, the mean over the tiles' orientations.

    One invoke per orientation, so the interpreter's arena is sized for N inputs, not tta x N (at TTA 4
    and 4 tiles, 3.6 MB less for as long as the model is loaded). An input's scores do not depend on
    the batch it is in (int8 arithmetic), so they are the same as in one invoke."""
    if tta == 1:
        return model.predict(pixels)
    n = len(pixels)
    oriented = orientations(pixels, tta)  # orientation-major: rows k * n .. k * n + n - 1 are orientation k
    scores = np.concatenate([model.predict(oriented[k * n:(k + 1) * n]) for k in range(tta)])
    return scores.reshape(tta, n, -1).mean(axis=0, dtype=np.float64).astype(np.float32)


def classify_frame(model: Model, source: str | Path | bytes, options: ClassifyOptions) -> FrameResult:
    """Raises edge.image.decode.ImageError for a frame that cannot be read."""
    spec = model.manifest.input
    tile = tile_size_for(model, options)
    if tile:
        frame = open_frame(
            source, min_scale=spec.size[0] / tile, max_pixels=options.max_pixels, max_bytes=options.max_bytes
        )
    else:
        frame = open_frame(
            source, min_scale=0.0, min_size=spec.size, max_pixels=options.max_pixels, max_bytes=options.max_bytes
        )
    tta = tta_for(model, options)
    tiles = _run_tiles(model, frame, tile, options, tta) if tile else None
    if tiles is None or tiles.grid.rows * tiles.grid.cols == 1:
        scores = tiles.scores[0, 0] if tiles is not None else predict_tiles(model, prepare_tile(frame.image, spec)[None], tta)[0]
        tiles = None
    else:
        scores = tiles.scores[tiles.best]
    return FrameResult(
        width=frame.width,
        height=frame.height,
        scores=scores,
        decision=decide(scores, model.manifest, options.thresholds),
        tiles=tiles,
        geo=read_geo(frame.exif),
        captured=read_capture_time(frame.exif),
        format=frame.format,
        tta=tta,
    )


def _run_tiles(model: Model, frame: Frame, tile: int, options: ClassifyOptions, tta: int) -> TileScores:
    grid = make_grid(frame.width, frame.height, tile, options.overlap)
    boxes = grid.boxes()
    spec = model.manifest.input
    out = np.empty((len(boxes), len(model.manifest.labels)), dtype=np.float32)
    for start in range(0, len(boxes), options.batch_size):
        chunk = boxes[start : start + options.batch_size]
        pixels = np.stack([prepare_tile(frame.image, spec, _scaled(box, frame.scale)) for box in chunk])
        out[start : start + len(chunk)] = predict_tiles(model, pixels, tta)
    scores = out.reshape(grid.rows, grid.cols, -1)
    margins = alert_margins(scores, model.manifest, options.thresholds)
    best = np.unravel_index(int(np.argmax(margins)), margins.shape)
    return TileScores(grid=grid, scores=scores, best=(int(best[0]), int(best[1])))


def _scaled(box: tuple[int, int, int, int], scale: float) -> tuple[float, ...]:
    return tuple(v * scale for v in box) if scale != 1.0 else box
