"""Classify one frame: decode, cut into tiles at the training scale, run the tiles in batches,
and reduce the tile scores to one decision.

A frame is as alarming as its most alarming tile: the frame's scores are those of the tile whose
alert score stands highest above its threshold, and that tile is reported with its pixel box.

With test-time augmentation (the manifest's `input.tta`, or ClassifyOptions.tta) a tile's scores are the
mean of the model's scores for its orientations (edge.features.pixels.TTA_ORIENTATIONS), one invoke per
orientation of a batch. The converter scores its validation and test tiles through `predict_tiles` too.

A model with a scale (edge/image/scale.py) sees every frame at its training resolution: the frame is
resampled by its ground resolution over the model's (a JPEG decoded at a reduced scale first, then
Image.resize with a reduce step for big downscales) and cut into the model's own tiles; boxes in results
stay in pixels of the frame. A frame out of the model's domain is scored but raises no alert unless
ClassifyOptions.allow_out_of_domain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from edge.decisions.alerts import Decision, alert_margins, decide
from edge.features.pixels import orientations, prepare_tile
from edge.image.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Frame, open_frame
from edge.image.exif import read_capture_time, read_geo
from edge.image.scale import Ground, Scale, has_scale, plan_scale, read_ground
from edge.image.tiling import TileGrid, make_grid
from edge.model.loaded import Model

DEFAULT_OVERLAP = 0.25
DEFAULT_BATCH = 4  # tiles per invoke: as fast as 16 with XNNPACK, and the interpreter's arena is 3.6 MB smaller
REDUCING_GAP = 3.0  # Image.resize: box-reduce by a whole factor first while the rest is at least this (Pillow: as good)


@dataclass(frozen=True)
class ClassifyOptions:
    thresholds: dict[str, float]
    tile: int | None = None  # source pixels; None = the manifest's tile size, 0 = whole frame
    overlap: float = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    tta: int | None = None  # orientations averaged per tile; None = the manifest's input.tta
    gsd: float | None = None  # metres per pixel the operator states (--gsd), over what the file says
    default_gsd: float | None = None  # metres per pixel when the file says nothing (the config's)
    allow_out_of_domain: bool = False  # frames a model cannot judge may alert all the same


@dataclass
class TileScores:
    grid: TileGrid
    scores: np.ndarray  # (rows, cols, labels)
    best: tuple[int, int]  # (row, col) of the deciding tile
    to_frame: tuple[float, float] = (1.0, 1.0)  # frame pixels per grid pixel (x, y): the grid is at the model's scale
    frame_size: tuple[int, int] | None = None  # (width, height) of the frame when the grid is resampled

    @property
    def tile_px(self) -> int:
        """Tile edge in frame pixels."""
        return max(1, round(self.grid.tile * self.to_frame[0]))

    def frame_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """A tile's (left, top, right, bottom) in frame pixels, right/bottom exclusive."""
        box = self.grid.box(row, col)
        if self.frame_size is None:
            return box
        (sx, sy), (w, h) = self.to_frame, self.frame_size
        return (round(box[0] * sx), round(box[1] * sy), min(w, round(box[2] * sx)), min(h, round(box[3] * sy)))

    @property
    def frame_xs(self) -> list[int]:
        """Each column's left edge in frame pixels (the record's `tiles.xs`)."""
        return [self.frame_box(0, c)[0] for c in range(self.grid.cols)]

    @property
    def frame_ys(self) -> list[int]:
        return [self.frame_box(r, 0)[1] for r in range(self.grid.rows)]

    @property
    def best_box(self) -> tuple[int, int, int, int]:
        return self.frame_box(*self.best)


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
    scale: Scale | None = None  # how the frame met the model's scale; None for a model without one
    tile: int = 0  # tile edge in frame pixels (0: the whole frame was one input)
    allowed: bool = False  # out of the model's domain, and allowed to alert all the same
    resampled: bool = False  # brought to the model's metres per pixel before tiling

    @property
    def out_of_domain(self) -> str | None:
        return None if self.scale is None else self.scale.out_of_domain


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


def frame_scale(model: Model, source: str | Path | bytes, options: ClassifyOptions, ground: Ground | None = None) -> Scale | None:
    """How a frame must be resampled for a model with a ground resolution (None: a camera model)."""
    if not has_scale(model.manifest.trained_on):
        return None
    if ground is None:
        ground = read_ground(source, option=options.gsd, config=options.default_gsd)
    return plan_scale(model.manifest.trained_on, ground)


def decode_wish(model: Model, options: ClassifyOptions, scale: Scale | None = None) -> tuple[float, tuple[int, int]]:
    """(min_scale, min_size) a frame may be decoded at: the fewest pixels the model's tiles need."""
    spec = model.manifest.input
    if _resamples(scale, options):
        return min(1.0, max(scale.factor)), (1, 1)
    tile = tile_size_for(model, options)
    return (spec.size[0] / tile, (1, 1)) if tile else (0.0, spec.size)


def classify_frame(model: Model, source: str | Path | bytes, options: ClassifyOptions,
                   ground: Ground | None = None) -> FrameResult:
    """Raises edge.image.decode.ImageError for a frame that cannot be read. `ground`: the frame's, when the
    caller has read it already (edge.image.scale.read_ground)."""
    scale = frame_scale(model, source, options, ground)
    min_scale, min_size = decode_wish(model, options, scale)
    frame = open_frame(source, min_scale=min_scale, min_size=min_size, max_pixels=options.max_pixels,
                       max_bytes=options.max_bytes)
    return classify_decoded(model, frame, options, scale)


def classify_decoded(model: Model, frame: Frame, options: ClassifyOptions, scale: Scale | None = None) -> FrameResult:
    """A frame already decoded (a video's, by edge/image/video.py), at no less than `decode_wish`'s scale;
    `scale` from plan_scale for the frame's ground (None for a camera model)."""
    spec = model.manifest.input
    resample = _resamples(scale, options)
    tile = model.manifest.trained_on.tile_px if resample else tile_size_for(model, options)
    picture = _at_model_scale(frame, scale) if resample else frame
    tta = tta_for(model, options)
    tiles = _run_tiles(model, picture, tile, options, tta) if tile else None
    if tiles is not None and resample:
        tiles.to_frame = (1.0 / scale.factor[0], 1.0 / scale.factor[1])
        tiles.frame_size = (frame.width, frame.height)
    used = tiles.tile_px if tiles is not None else 0
    if tiles is None or tiles.grid.rows * tiles.grid.cols == 1:
        scores = tiles.scores[0, 0] if tiles is not None else predict_tiles(model, prepare_tile(picture.image, spec)[None], tta)[0]
        tiles = None
    else:
        scores = tiles.scores[tiles.best]
    decision = decide(scores, model.manifest, options.thresholds)
    outside = scale is not None and scale.out_of_domain is not None
    if outside and decision.alert and not options.allow_out_of_domain:
        decision = replace(decision, alert=False)
    return FrameResult(
        width=frame.width,
        height=frame.height,
        scores=scores,
        decision=decision,
        tiles=tiles,
        geo=read_geo(frame.exif),
        captured=read_capture_time(frame.exif),
        format=frame.format,
        tta=tta,
        scale=scale,
        tile=used,
        allowed=outside and options.allow_out_of_domain,
        resampled=resample,
    )


def _resamples(scale: Scale | None, options: ClassifyOptions) -> bool:
    return scale is not None and scale.resample and options.tile is None


def _at_model_scale(frame: Frame, scale: Scale) -> Frame:
    """The frame resampled to the model's metres per pixel (Pillow's bilinear widens to the reduction, so a
    big downscale averages every frame pixel in)."""
    size = (max(1, round(frame.width * scale.factor[0])), max(1, round(frame.height * scale.factor[1])))
    smaller = size[0] < frame.image.width
    image = frame.image.resize(size, Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP if smaller else None)
    return replace(frame, image=image, width=size[0], height=size[1], scale=1.0)


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
