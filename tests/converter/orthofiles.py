"""A labelled orthomosaic as an operator brings one: a GeoTIFF in a UTM zone (EPSG:32721, written with
rasterio) of noisy green ground with noisy red "mine" blocks, and a GeoJSON of their polygons in WGS84
(RFC 7946), converted from UTM with pyproj. The noise makes every tile a different picture, so the
dataset's copy checks keep them apart as they would real tiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RED, GREEN = (210, 40, 40), (50, 150, 50)
UTM_21S = "EPSG:32721"
UTM_ORIGIN = (620_000.0, 9_340_000.0)  # top-left corner, metres


def write_ortho(path: Path, width: int, height: int, red_boxes=(), *, gsd: float = 0.5, seed: int = 0,
                noise: float = 18.0) -> np.ndarray:
    """Write the ortho; return its pixels (height, width, 3) as written. Boxes: (left, top, right, bottom) px."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    pixels = np.empty((height, width, 3), np.float64)
    pixels[:] = GREEN
    for left, top, right, bottom in red_boxes:
        pixels[top:bottom, left:right] = RED
    pixels = np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)
    west, north = UTM_ORIGIN
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8", "crs": UTM_21S,
               "transform": Affine(gsd, 0.0, west, 0.0, -gsd, north), "photometric": "RGB"}
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.moveaxis(pixels, -1, 0))
    return pixels


def utm_corner(col: float, row: float, gsd: float = 0.5) -> tuple[float, float]:
    return UTM_ORIGIN[0] + gsd * col, UTM_ORIGIN[1] - gsd * row


def lonlat_ring(box, gsd: float = 0.5) -> list[list[float]]:
    """A pixel box's outline in WGS84 [lon, lat], closed, counter-clockwise."""
    from pyproj import Transformer

    left, top, right, bottom = box
    corners = [(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)]
    to_wgs84 = Transformer.from_crs(UTM_21S, "EPSG:4326", always_xy=True)
    return [list(to_wgs84.transform(*utm_corner(c, r, gsd))) for c, r in corners]


def write_labels(path: Path, features: list[tuple[tuple[int, int, int, int], dict]], gsd: float = 0.5, **extra) -> Path:
    """features: (pixel box, properties) pairs; ids are 'pit-1', 'pit-2', ... in order."""
    collection = {"type": "FeatureCollection", **extra, "features": [
        {"type": "Feature", "id": f"pit-{k}", "properties": props,
         "geometry": {"type": "Polygon", "coordinates": [lonlat_ring(box, gsd)]}}
        for k, (box, props) in enumerate(features, start=1)]}
    path.write_text(json.dumps(collection))
    return path
