"""What an image or audio model learnt from (the manifest's `trained_on`), and the ground resolutions of
frames an image model can judge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainedOn:
    """What the model learnt from: used to tile frames at the training scale."""

    source: str
    tile_px: int | None = None  # tile edge in source pixels; None = whole frames
    ground_resolution_m: float | None = None  # metres per source pixel, when known
    licences: tuple[str, ...] = ()
    # (finest, coarsest) metres per pixel of the frames the model can judge, None on a side for no bound;
    # None = edge.image.scale's default (any finer frame, at most twice as coarse)
    ground_resolution_range_m: tuple[float | None, float | None] | None = None


def parse_trained_on(raw: dict, where: str) -> TrainedOn:
    """Raises ValueError (TypeError for a source that is no string) naming the key (`where` is the manifest's, e.g. "FILE: manifest.json: trained_on")."""
    tile = raw.get("tile_px")
    if tile is not None and not (isinstance(tile, int) and not isinstance(tile, bool) and tile > 0):
        raise ValueError(f"{where}.tile_px: expected a positive integer or null, got {tile!r}")
    gsd = raw.get("ground_resolution_m")
    if gsd is not None and not (isinstance(gsd, (int, float)) and gsd > 0):
        raise ValueError(f"{where}.ground_resolution_m: expected a positive number or null, got {gsd!r}")
    licences = raw.get("licences", [])
    if not (isinstance(licences, list) and all(isinstance(x, str) for x in licences)):
        raise ValueError(f"{where}.licences: expected a list of strings")
    source = raw.get("source")
    if not isinstance(source, str):
        raise TypeError(f"{where}: source: expected str, got {type(source).__name__} {source!r}")
    gsd = None if gsd is None else float(gsd)
    return TrainedOn(source=source, tile_px=tile, ground_resolution_m=gsd, licences=tuple(licences),
                     ground_resolution_range_m=_parse_range(raw.get("ground_resolution_range_m"), gsd,
                                                            f"{where}.ground_resolution_range_m"))


def _parse_range(raw: Any, gsd: float | None, where: str) -> tuple[float | None, float | None] | None:
    """[finest, coarsest] metres per pixel (null: no bound on that side), holding ground_resolution_m."""
    if raw is None:
        return None
    expected = "[finest, coarsest] metres per pixel, a positive number or null each, holding ground_resolution_m"
    if not (isinstance(raw, list) and len(raw) == 2
            and all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in raw)):
        raise ValueError(f"{where}: expected {expected}, got {raw!r}")
    if gsd is None:
        raise ValueError(f"{where}: given without ground_resolution_m; give both, or neither")
    finest, coarsest = (None if v is None else float(v) for v in raw)
    if (finest is not None and finest > gsd) or (coarsest is not None and coarsest < gsd):
        raise ValueError(f"{where}: {raw} does not hold ground_resolution_m {gsd:g}; expected {expected}")
    return finest, coarsest
