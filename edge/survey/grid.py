"""Where the tiles of a scan fall: each covers the ground one training tile covered
(trained_on.ground_resolution_m x tile_px metres), so a 10 m/px, 48-px model sees 480 m squares of a
5 cm ortho (9,600 ortho px, read down to 48 px) exactly as it saw Sentinel-2.

An ortho coarser than the model's resolution cannot be resampled to what the model learnt: its tiles would
hold less detail than training tiles. Up to DOMAIN[1] times coarser is accepted (upsampled); beyond that,
and whenever a tile's ground would be off by more than DOMAIN, the scan is refused (OutOfDomain).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.image.gsd import GroundResolution
from edge.image.tiling import axis_starts
from edge.model.bundle import TrainedOn
from edge.survey.raster import OutOfDomain, SurveyError

DOMAIN = (0.5, 2.0)  # accepted ratio of a resampled tile's metres per pixel to the training's


@dataclass(frozen=True)
class Tile:
    index: int  # position in the scan's order (row by row)
    row: int
    col: int
    x: int  # window in ortho pixels: left, top, width, height (clipped to the ortho)
    y: int
    width: int
    height: int
    out_w: int  # what it is read to (the training tile size; less for a tile clipped at the ortho's edge)
    out_h: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.width, self.y + self.height)


@dataclass(frozen=True)
class ScanGrid:
    tile_w: int  # ortho pixels per tile, across and down
    tile_h: int
    out_px: int  # the training tile size in pixels
    ground_m: float  # ground a tile covers, metres (the training's)
    detail_ratio: float  # metres per pixel of a resampled tile / the training's (1.0 unless the ortho is coarser)
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    width: int
    height: int

    @property
    def rows(self) -> int:
        return len(self.ys)

    @property
    def cols(self) -> int:
        return len(self.xs)

    def tiles(self) -> list[Tile]:
        out = []
        for r, y in enumerate(self.ys):
            for c, x in enumerate(self.xs):
                w, h = min(self.tile_w, self.width - x), min(self.tile_h, self.height - y)
                out_w = max(1, round(self.out_px * w / self.tile_w))
                out_h = max(1, round(self.out_px * h / self.tile_h))
                out.append(Tile(len(out), r, c, x, y, w, h, out_w, out_h))
        return out


def plan_grid(path: str, width: int, height: int, gsd: GroundResolution, trained: TrainedOn, model: str,
              overlap: float = 0.0) -> ScanGrid:
    if trained.ground_resolution_m is None or trained.tile_px is None:
        raise SurveyError(f"{model}: the model does not say the ground resolution and tile size it learnt "
                          "(manifest trained_on.ground_resolution_m, tile_px), so a scan cannot match its scale; "
                          "convert it with nv-convert --gsd")
    trained_m = trained.ground_resolution_m
    ground = trained_m * trained.tile_px
    tile_w, tile_h = max(1, round(ground / gsd.x_m)), max(1, round(ground / gsd.y_m))
    detail = max(1.0, max(gsd.x_m, gsd.y_m) / trained_m)
    ratios = [detail, tile_w * gsd.x_m / ground, tile_h * gsd.y_m / ground]
    if not all(DOMAIN[0] <= r <= DOMAIN[1] for r in ratios):
        raise OutOfDomain(
            f"{path}: out of the model's domain: the ortho's ground resolution is {gsd.metres:g} m/px ({gsd.source}: "
            f"{gsd.detail}), the model learnt {trained_m:g} m/px ({trained.tile_px}-px tiles of {ground:g} m); a "
            f"tile would be {tile_w} x {tile_h} ortho px, {max(ratios):.2g}x coarser than the model's tiles "
            f"(at most {DOMAIN[1]:g}x is accepted). Use an ortho of {trained_m * DOMAIN[1]:g} m/px or finer, or a model "
            "trained at this resolution")
    return ScanGrid(tile_w=tile_w, tile_h=tile_h, out_px=trained.tile_px, ground_m=ground, detail_ratio=detail,
                    xs=axis_starts(width, tile_w, overlap), ys=axis_starts(height, tile_h, overlap),
                    width=width, height=height)
