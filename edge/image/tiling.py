"""Tiling geometry: cut a frame into overlapping square tiles of the size the model was trained on.

Tiles are spread evenly so that together they cover the frame exactly: the first tile starts at the
left/top edge, the last ends at the right/bottom edge, and neighbours overlap by at least the
requested fraction. A frame narrower than a tile along an axis gets one tile clipped to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_OVERLAP = 0.9


@dataclass(frozen=True)
class TileGrid:
    tile: int  # requested tile edge, source pixels
    overlap: float
    xs: tuple[int, ...]  # left edges of the columns
    ys: tuple[int, ...]  # top edges of the rows
    width: int
    height: int

    @property
    def rows(self) -> int:
        return len(self.ys)

    @property
    def cols(self) -> int:
        return len(self.xs)

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in source pixels, right/bottom exclusive."""
        x, y = self.xs[col], self.ys[row]
        return (x, y, min(x + self.tile, self.width), min(y + self.tile, self.height))

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Every tile's box, row by row."""
        return [self.box(r, c) for r in range(self.rows) for c in range(self.cols)]


def axis_starts(length: int, tile: int, overlap: float) -> tuple[int, ...]:
    if length <= tile:
        return (0,)
    step = max(1, math.floor(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    span = length - tile
    return tuple(round(i * span / (count - 1)) for i in range(count))


def make_grid(width: int, height: int, tile: int, overlap: float) -> TileGrid:
    if tile < 1:
        raise ValueError(f"tile size must be at least 1 pixel, got {tile}")
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise ValueError(f"overlap must be a fraction from 0 to {MAX_OVERLAP}, got {overlap}")
    return TileGrid(
        tile=tile,
        overlap=overlap,
        xs=axis_starts(width, tile, overlap),
        ys=axis_starts(height, tile, overlap),
        width=width,
        height=height,
    )
