"""Training tiles from a labelled orthomosaic (`nv-convert tiles-from-ortho`): the ortho is cut into a grid
of square tiles of `tile_px` pixels at `gsd_m` metres per pixel, each read in one window with the reader
`nv-edge scan` uses (edge.survey.raster.WindowReader: GDAL's bilinear kernel widened to the reduction),
so a tile is what the unit will see of that ground.

A tile takes a polygon's label when that label's polygons cover at least `min_cover` of it; a tile
touched by polygons but covered less is left out (it is neither class); a tile no polygon touches is
background, written only when `background` names its label. Tiles go to OUT/<label>/ as PNG, and every
tile is a row of OUT/index.csv (path,label,group,...), which `nv-convert image OUT` reads.

Groups keep a place's tiles on one side of the train/validation/test split. A labelled tile's group is
its polygon's (the feature's `group` or `id`): the tiles of one pit overlap or touch and look alike, so a
split that put some in training and others in test would measure memory, not skill. Background has no
polygon, so its group is a spatial block of `block_tiles` x `block_tiles` tiles, for the same reason:
neighbouring tiles of one field or river bend are near copies.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from converter.ortho_labels import LabelledPolygon, LabelsError, read_labels
from edge.survey.raster import Ortho, WindowReader, open_ortho

INDEX_COLUMNS = ("path", "label", "group", "ortho", "left", "top", "right", "bottom", "cover")
FINER_TOLERANCE = 1.01  # a --gsd finer than the ortho's by more than this would invent detail


@dataclass(frozen=True)
class CutOptions:
    gsd_m: float | None = None  # the tiles' ground resolution, m/px; None: the ortho's own (no resampling)
    tile_px: int = 96  # tile edge in pixels, as written
    min_cover: float = 0.5
    overlap: float = 0.0  # fraction of a tile shared with its neighbour
    background: str | None = None  # label of tiles outside every polygon; None: not written
    max_background: int | None = None  # at most this many background tiles, spread evenly over the ortho
    block_tiles: int = 8  # background groups: blocks of this many tiles across and down
    append: bool = False  # add to an existing OUT/index.csv (tiles of another ortho)


@dataclass(frozen=True)
class Window:
    """One tile: its place in ortho pixels (right, bottom exclusive) and what it became."""

    row: int
    col: int
    left: int
    top: int
    right: int
    bottom: int
    label: str | None = None
    group: str | None = None
    cover: float = 0.0


@dataclass
class CutResult:
    out: Path
    gsd_m: float
    tile_px: int
    window_px: tuple[int, int]  # ortho pixels per tile, across and down
    tiles: list[Window] = field(default_factory=list)  # written
    skipped: Counter = field(default_factory=Counter)  # reason -> tiles

    @property
    def counts(self) -> Counter:
        return Counter(w.label for w in self.tiles)


def tile_windows(ortho: Ortho, options: CutOptions) -> tuple[float, int, int, list[tuple[int, int, int, int]]]:
    """(gsd_m, window width, window height, [(row, col, left, top), ...]): whole tiles only, from the
    ortho's top-left corner, `step` = window x (1 - overlap) apart."""
    if options.gsd_m is None:
        gsd, tile_w, tile_h = ortho.gsd.metres, options.tile_px, options.tile_px
    else:
        gsd = options.gsd_m
        if gsd * FINER_TOLERANCE < max(ortho.gsd.x_m, ortho.gsd.y_m):
            raise LabelsError(f"{ortho.path}: its ground resolution is {ortho.gsd.metres:g} m/px; tiles of --gsd {gsd:g} "
                              "would be blown up, with less detail than they claim. Give --gsd of at least the ortho's")
        ground = gsd * options.tile_px
        tile_w, tile_h = max(1, round(ground / ortho.gsd.x_m)), max(1, round(ground / ortho.gsd.y_m))
    if tile_w > ortho.width or tile_h > ortho.height:
        raise LabelsError(f"{ortho.path}: a tile of {options.tile_px} px at {gsd:g} m/px is {tile_w} x {tile_h} ortho "
                          f"px, larger than the ortho ({ortho.width} x {ortho.height} px); give a smaller --tile-px")
    step_x = max(1, math.floor(tile_w * (1.0 - options.overlap)))
    step_y = max(1, math.floor(tile_h * (1.0 - options.overlap)))
    starts = [(r, c, x, y) for r, y in enumerate(range(0, ortho.height - tile_h + 1, step_y))
              for c, x in enumerate(range(0, ortho.width - tile_w + 1, step_x))]
    return gsd, tile_w, tile_h, starts


def label_windows(polygons: list[LabelledPolygon], starts, tile_w: int, tile_h: int, options: CutOptions,
                  stem: str, skipped: Counter) -> list[Window]:
    """Each window's label and group by cover, as the module says; the left-out ones counted in `skipped`."""
    from shapely import STRtree
    from shapely.geometry import box
    from shapely.ops import unary_union

    tree = STRtree([p.pixels for p in polygons])
    labelled, background = [], []
    for row, col, x, y in starts:
        tile = box(x, y, x + tile_w, y + tile_h)
        parts: dict[str, list] = {}
        for i in tree.query(tile):
            piece = polygons[i].pixels.intersection(tile)
            if piece.area > 0:
                parts.setdefault(polygons[i].label, []).append((piece, polygons[i]))
        window = Window(row, col, x, y, x + tile_w, y + tile_h)
        if not parts:
            background.append(window)
            continue
        covers = {label: unary_union([p for p, _ in pieces]).area / tile.area for label, pieces in parts.items()}
        enough = [label for label, share in covers.items() if share >= options.min_cover]
        if len(enough) > 1:
            skipped[f"covered by polygons of {' and '.join(sorted(enough))}"] += 1
        elif not enough:
            skipped[f"covered less than {options.min_cover:g} by a polygon"] += 1
        else:
            label = enough[0]
            place = max(parts[label], key=lambda pair: pair[0].area)[1]
            labelled.append(Window(row, col, x, y, x + tile_w, y + tile_h, label, f"{stem}:{place.group}", covers[label]))
    if options.background is None:
        skipped["outside every polygon (no --background)"] += len(background)
        return labelled
    chosen = _spread(background, options.max_background)
    skipped[f"background past --max-background {options.max_background}"] += len(background) - len(chosen)
    b = options.block_tiles
    return labelled + [Window(w.row, w.col, w.left, w.top, w.right, w.bottom, options.background,
                              f"{stem}:background-{w.row // b}-{w.col // b}", 0.0) for w in chosen]


def cut_tiles(ortho_path: Path, labels_path: Path, out: Path, options: CutOptions) -> CutResult:
    """Cut, write the PNGs and OUT/index.csv; return what was written and what was left out.
    Raises LabelsError (naming the file) for labels that cannot be used or an empty result."""
    from PIL import Image

    ortho = open_ortho(ortho_path)
    index = Path(out) / "index.csv"
    kept = _existing_rows(index, ortho, options.append)
    polygons = read_labels(Path(labels_path), ortho)
    gsd, tile_w, tile_h, starts = tile_windows(ortho, options)
    result = CutResult(out=Path(out), gsd_m=gsd, tile_px=options.tile_px, window_px=(tile_w, tile_h))
    windows = label_windows(polygons, starts, tile_w, tile_h, options, ortho.path.stem, result.skipped)
    if not any(w.cover > 0 for w in windows):
        raise _nothing_labelled(labels_path, ortho, result, options)
    rows = []
    reader = WindowReader(ortho)
    try:
        for w in windows:
            pixels = reader.read(w.left, w.top, tile_w, tile_h, options.tile_px, options.tile_px)
            if pixels is None:
                result.skipped["less than half ortho (no data)"] += 1
                continue
            name = Path(w.label) / f"{ortho.path.stem}_x{w.left}_y{w.top}.png"
            (result.out / w.label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(result.out / name)
            result.tiles.append(w)
            rows.append({"path": name.as_posix(), "label": w.label, "group": w.group, "ortho": ortho.path.name,
                         "left": w.left, "top": w.top, "right": w.right, "bottom": w.bottom, "cover": round(w.cover, 4)})
    finally:
        reader.close()
    if not any(w.cover > 0 for w in result.tiles):
        raise _nothing_labelled(labels_path, ortho, result, options)
    with open(index, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(kept + rows)
    return result


def _existing_rows(index: Path, ortho: Ortho, append: bool) -> list[dict]:
    if not index.exists():
        return []
    if not append:
        raise LabelsError(f"{index}: already there; pass --append to add the tiles of {ortho.path.name} to it, "
                          "or give an empty --out folder")
    with open(index, newline="") as fh:
        reader = csv.DictReader(fh)
        if list(reader.fieldnames or []) != list(INDEX_COLUMNS):
            raise LabelsError(f"{index}: not written by tiles-from-ortho (columns {reader.fieldnames}); "
                              "give an empty --out folder")
        rows = list(reader)
    if any(r["ortho"] == ortho.path.name for r in rows):
        raise LabelsError(f"{index}: already holds tiles of {ortho.path.name}; remove them (and their rows) first, "
                          "or give an empty --out folder")
    return rows


def _spread(windows: list[Window], most: int | None) -> list[Window]:
    """At most `most` of `windows`, evenly spaced in their order (row by row): all of the ortho, not its top."""
    if most is None or len(windows) <= most:
        return windows
    return [windows[i * len(windows) // most] for i in range(most)]


def _nothing_labelled(labels_path: Path, ortho: Ortho, result: CutResult, options: CutOptions) -> LabelsError:
    (tile_w, tile_h), side = result.window_px, result.gsd_m * options.tile_px
    return LabelsError(f"{labels_path}: no tile of {ortho.path} was labelled ({tile_w} x {tile_h} ortho px, {side:g} m "
                       f"a side; left out: {_said(result.skipped) or 'nothing'}). Draw larger polygons, cut smaller "
                       "tiles (--tile-px, --gsd) or lower --min-cover")


def _said(skipped: Counter) -> str:
    return ", ".join(f"{n} {why}" for why, n in skipped.items() if n)
