"""The tiles a unit was least sure about, from its detection records: what a person should label next.

"Least sure" is measured where the unit decides: a tile's alert-group score against that group's threshold
(`edge.decisions`), and the tiles whose score lies nearest a threshold are the ones whose decision a little
more knowledge would flip. Entropy over the labels was not taken: its peak is at even scores (0.5 for two
labels), not at the threshold the unit uses (0.4268 for mining-s2), and records keep per-tile scores of the
alert labels only, not of every label, so a tile's entropy cannot be computed from them.

Where a tile is: records of 1.6 carry the tile grid's column and row starts (`tiles.xs`, `tiles.ys`); for
older records the grid is rebuilt from `size`, `overlap` and the frame's size with the tiling they were
made with (edge.image.tiling.make_grid), and checked against their `rows` and `cols`. A record without
`tiles` was scored as one tile: the whole frame.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from edge.decisions.groups import alert_groups, group_scores
from edge.image.tiling import make_grid
from edge.model.bundle import Manifest


class NotATileRecord(ValueError):
    """A record whose tiles cannot be placed or scored; the message says why (for the skipped list)."""


@dataclass(frozen=True)
class UncertainTile:
    record: dict  # the record it came from
    row: int
    col: int
    box: tuple[int, int, int, int]  # left, top, right, bottom in frame pixels, right and bottom exclusive
    tile_px: int  # the tile's edge in frame pixels as it was classified (0: the whole frame)
    scores: dict[str, float]  # the record's per-tile scores at this tile (the alert labels')
    group: str  # the alert group whose score is nearest its threshold
    group_score: float
    threshold: float

    @property
    def margin(self) -> float:
        return abs(self.group_score - self.threshold)

    @property
    def source(self) -> str:
        return self.record["source"]


def skip_reason(record: dict, manifest: Manifest, sha256: str) -> str | None:
    """Why a record gives no tiles to label (None: it does): an error, another kind, another model."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if "error" in record:
        return "an error record"
    if record.get("kind") != "image" or "event" in record or "area" in record:
        return "not a frame (audio, an event or an ortho's area)"
    model = record.get("model") or {}
    if model.get("sha256") != sha256:
        return f"classified by another model ({model.get('name')} {model.get('version')})"
    if "frame" not in record or "source" not in record:
        return "no frame size or source"
    return None


def tile_boxes(record: dict) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """(row, col, box) of every tile of a record, row by row. Raises NotATileRecord."""
    width, height = record["frame"]["width"], record["frame"]["height"]
    tiles = record.get("tiles")
    if tiles is None:
        return [(0, 0, (0, 0, width, height))]
    size = tiles["size"]
    if "xs" in tiles and "ys" in tiles:
        xs, ys = tiles["xs"], tiles["ys"]
    else:
        try:
            grid = make_grid(width, height, size, tiles["overlap"])
        except ValueError as exc:
            raise NotATileRecord(f"its tiles cannot be placed: {exc}") from None
        xs, ys = grid.xs, grid.ys
    if (len(ys), len(xs)) != (tiles["rows"], tiles["cols"]):
        raise NotATileRecord(f"its {tiles['rows']} x {tiles['cols']} tiles do not match a grid of {size}-px tiles "
                             f"on a {width} x {height} frame (made with another tiling?)")
    return [(r, c, (x, y, min(x + size, width), min(y + size, height))) for r, y in enumerate(ys) for c, x in enumerate(xs)]


def record_tiles(record: dict, manifest: Manifest, thresholds: dict[str, float]) -> list[UncertainTile]:
    """Every tile of one record with the alert group nearest its threshold. Raises NotATileRecord."""
    groups = {name: members for name, members in alert_groups(manifest).items() if name in thresholds}
    if not groups:
        raise NotATileRecord("the model has no alert group with a threshold")
    tiles = record.get("tiles")
    per_label = tiles["grid"] if tiles is not None else {k: [[v]] for k, v in record["scores"].items()}
    needed = sorted({m for members in groups.values() for m in members})
    missing = [m for m in needed if m not in per_label]
    if missing:
        raise NotATileRecord(f"its per-tile scores lack {missing}")
    boxes = tile_boxes(record)
    rows, cols = (tiles["rows"], tiles["cols"]) if tiles is not None else (1, 1)
    try:
        scores = np.stack([np.asarray(per_label[m], np.float64).reshape(rows, cols) for m in needed], axis=-1)
    except ValueError:
        raise NotATileRecord(f"its per-tile scores are not {rows} x {cols}") from None
    group_values = group_scores(scores, needed, groups)  # (rows, cols, groups)
    limits = np.array([thresholds[name] for name in groups])
    names = list(groups)
    out = []
    for r, c, box in boxes:
        k = int(np.argmin(np.abs(group_values[r, c] - limits)))
        out.append(UncertainTile(
            record=record, row=r, col=c, box=box, tile_px=tiles["size"] if tiles is not None else 0,
            scores={label: float(per_label[label][r][c]) for label in per_label},
            group=names[k], group_score=float(group_values[r, c, k]), threshold=float(limits[k])))
    return out


def nearest(tiles: list[UncertainTile], count: int, per_frame: int | None = None) -> list[UncertainTile]:
    """The `count` tiles nearest a threshold (ties: in the order given), at most `per_frame` of one source:
    neighbouring tiles of one frame overlap and look alike, and a person's labelling time is better spent
    on more places."""
    order = sorted(range(len(tiles)), key=lambda i: (tiles[i].margin, i))
    taken: Counter = Counter()
    out = []
    for i in order:
        tile = tiles[i]
        if per_frame is not None and taken[tile.source] >= per_frame:
            continue
        taken[tile.source] += 1
        out.append(tile)
        if len(out) == count:
            break
    return out


def crop(image, tile: UncertainTile, model_tile_px: int | None):
    """The tile cut from its upright frame (a PIL image), brought to the model's tile size: a tile classified
    at `tile_px` frame pixels is scaled by model_tile_px / tile_px, so it is a training tile of the model's
    ground resolution whatever the frame's. A whole-frame tile is kept as it is."""
    from PIL import Image

    piece = image.crop(tile.box)
    if not tile.tile_px or not model_tile_px or tile.tile_px == model_tile_px:
        return piece
    factor = model_tile_px / tile.tile_px
    size = (max(1, round(piece.width * factor)), max(1, round(piece.height * factor)))
    return piece.resize(size, Image.Resampling.BILINEAR)
