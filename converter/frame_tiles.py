"""Training tiles from labelled frames (`nv-convert tiles-from-frames`): class folders of drone photos or
GeoTIFF frames of any size and any ground resolution, each brought to one ground resolution and cut into
square tiles, so the model learns one scale and its manifest can say which.

A frame's ground resolution is what the unit would find (edge.image.gsd.frame_gsd: a GeoTIFF's
geotransform, a nadir photo's EXIF/XMP altitude and camera), else `frame_gsd_m` when given. The frame is
resampled by its resolution / the target's (never up: a frame coarser than the target would claim detail it
has not got, and is left out), then cut into whole tiles from its top-left corner. Every tile takes its
folder's label, and its group is its frame: the tiles of one frame overlap or touch and look alike, so
they stay on one side of the split.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from converter.dataset import DatasetError, class_folder_files
from edge.image.decode import IMAGE_SUFFIXES, ImageError, open_frame
from edge.image.gsd import NoGroundResolution, frame_gsd

COLUMNS = ("path", "label", "group", "frame", "frame_gsd_m", "left", "top", "right", "bottom")
FINER_TOLERANCE = 1.01  # as for orthos: a frame this much coarser than the target is still taken


@dataclass(frozen=True)
class FrameCutOptions:
    gsd_m: float  # the tiles' ground resolution, m/px
    tile_px: int = 96
    overlap: float = 0.0
    frame_gsd_m: float | None = None  # for frames that do not say their own


@dataclass
class FrameCutResult:
    out: Path
    tiles: dict[str, int] = field(default_factory=dict)  # label -> tiles
    frames: int = 0  # frames cut
    left_out: list[tuple[Path, str]] = field(default_factory=list)  # frame, why


def cut_frames(root: Path, out: Path, options: FrameCutOptions) -> FrameCutResult:
    """Raises DatasetError for a folder without class folders, an OUT that already holds index.csv, or
    an empty result; a frame that cannot be used is left out with the reason, and the others are cut."""
    from PIL import Image

    root, out = Path(root), Path(out)
    frames = class_folder_files(root, IMAGE_SUFFIXES) if root.is_dir() else []
    if not frames:
        raise DatasetError(f"{root}: no class sub-folders with {'/'.join(IMAGE_SUFFIXES)} frames "
                           "(one folder per label, e.g. mining/ and not_mining/)")
    index = out / "index.csv"
    if index.exists():
        raise DatasetError(f"{index}: already there; give an empty --out folder")
    result, rows = FrameCutResult(out=out), []
    for path, label in frames:
        try:
            gsd = frame_gsd(path, config=options.frame_gsd_m)
            frame = open_frame(path)
        except (NoGroundResolution, ImageError) as exc:
            result.left_out.append((path, str(exc)))
            continue
        if gsd.metres > options.gsd_m * FINER_TOLERANCE:
            result.left_out.append((path, f"{gsd.metres:g} m/px ({gsd.source}) is coarser than --gsd {options.gsd_m:g}"))
            continue
        factor = gsd.metres / options.gsd_m
        image = frame.image.convert("RGB")  # upright, at full size
        size = (round(image.width * factor), round(image.height * factor))
        if min(size) < options.tile_px:
            result.left_out.append((path, f"{size[0]} x {size[1]} px at {options.gsd_m:g} m/px: smaller than one tile"))
            continue
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        relative = path.relative_to(root).as_posix()
        step = max(1, math.floor(options.tile_px * (1.0 - options.overlap)))
        (out / label).mkdir(parents=True, exist_ok=True)
        for y in range(0, size[1] - options.tile_px + 1, step):
            for x in range(0, size[0] - options.tile_px + 1, step):
                name = Path(label) / f"{path.stem}_x{x}_y{y}.png"
                image.crop((x, y, x + options.tile_px, y + options.tile_px)).save(out / name)
                left, top = round(x / factor), round(y / factor)  # in the frame's own pixels
                rows.append({"path": name.as_posix(), "label": label, "group": relative, "frame": relative,
                             "frame_gsd_m": round(gsd.metres, 6), "left": left, "top": top,
                             "right": round((x + options.tile_px) / factor), "bottom": round((y + options.tile_px) / factor)})
                result.tiles[label] = result.tiles.get(label, 0) + 1
        result.frames += 1
    if not rows:
        why = "; ".join(f"{p}: {w}" for p, w in result.left_out[:3])
        raise DatasetError(f"{root}: no frame gave a tile of {options.tile_px} px at {options.gsd_m:g} m/px ({why})")
    with open(index, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return result
