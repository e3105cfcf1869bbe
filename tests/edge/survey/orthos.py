"""Orthomosaic GeoTIFFs for the survey tests, written with rasterio: tiled, compressed, written one
strip of blocks at a time, so that even a 20,000 x 20,000 px ortho (1.2 GB of pixels) costs little
memory to write and little disk to keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RED, GREEN = (230, 20, 20), (40, 160, 40)  # the tiny model's mining and not_mining
UTM_21S = "EPSG:32721"
UTM_ORIGIN = (620_000.0, 9_340_000.0)  # top-left corner, metres
WGS84 = "EPSG:4326"
BLOCK = 512


def north_up(west: float, north: float, dx: float, dy: float):
    """The geotransform of a north-up ortho: top-left corner, pixel size across and down."""
    from affine import Affine

    return Affine(dx, 0.0, west, 0.0, -dy, north)


def write_ortho(path: Path, width: int, height: int, *, crs: str, transform, red_boxes=(), alpha_boxes=(),
                strip: int = BLOCK) -> Path:
    """A green ortho with red boxes ((left, top, right, bottom) in pixels); `alpha_boxes` are transparent
    (an RGBA ortho, as OpenDroneMap writes them), outside the flight."""
    import rasterio

    bands = 4 if alpha_boxes else 3
    profile = {"driver": "GTiff", "width": width, "height": height, "count": bands, "dtype": "uint8", "crs": crs,
               "transform": transform, "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK,
               "compress": "deflate", "zlevel": 1, "BIGTIFF": "IF_SAFER"}
    if bands == 4:
        profile["photometric"] = "RGB"
        profile["alpha"] = "YES"
    with rasterio.open(path, "w", **profile) as out:
        for top in range(0, height, strip):
            rows = min(strip, height - top)
            block = np.empty((bands, rows, width), np.uint8)
            block[:3] = np.asarray(GREEN, np.uint8)[:, None, None]
            if bands == 4:
                block[3] = 255
            for boxes, paint in ((red_boxes, "red"), (alpha_boxes, "alpha")):
                for left, btop, right, bottom in boxes:
                    y0, y1 = max(btop, top) - top, min(bottom, top + rows) - top
                    if y0 < y1:
                        if paint == "red":
                            block[:3, y0:y1, left:right] = np.asarray(RED, np.uint8)[:, None, None]
                        else:
                            block[3, y0:y1, left:right] = 0
            from rasterio.windows import Window

            out.write(block, window=Window(0, top, width, rows))
    return path
