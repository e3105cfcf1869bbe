"""Build samples/scenes/mosaic_a.tif, the GeoTIFF `make demo` scans with `nv-edge scan`: mosaic_a.png
(a 12 x 12 mosaic of real Sentinel-2 tiles, 10 m/px) georeferenced in UTM zone 21S (EPSG:32721) with its
top-left corner at easting 620,000 m, northing 9,340,000 m: about 5.97 S, 55.92 W, in the Tapajos basin
of Para, Brazil, a region of artisanal gold mining.

It is NOT a real place: neighbouring tiles come from different places (samples/README.md), and the
position is only there so that the scan has a map to put its tiles on.

    .venv/bin/python samples/mosaic_geotiff.py        (needs the survey extra: rasterio)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCENES = Path(__file__).resolve().parent / "scenes"
CRS = "EPSG:32721"
ORIGIN = (620_000.0, 9_340_000.0)  # top-left corner, metres (UTM 21S)
PIXEL_M = 10.0  # Sentinel-2's 10 m bands


def main(src: Path = SCENES / "mosaic_a.png", dst: Path = SCENES / "mosaic_a.tif") -> Path:
    import rasterio
    from affine import Affine

    pixels = np.asarray(Image.open(src).convert("RGB"))
    height, width = pixels.shape[:2]
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8", "crs": CRS,
               "transform": Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1]), "compress": "deflate", "predictor": 2,
               "tiled": True, "blockxsize": 256, "blockysize": 256, "photometric": "RGB"}
    with rasterio.open(dst, "w", **profile) as out:
        out.write(np.moveaxis(pixels, -1, 0))
        out.update_tags(TIFFTAG_IMAGEDESCRIPTION="mosaic_a: a mosaic of real Sentinel-2 tiles (Amazon Mining "
                        "Watch, MIT; contains modified Copernicus Sentinel data), placed in the Tapajos basin; "
                        "not a real place")
    return dst


if __name__ == "__main__":
    print(main(*(Path(a) for a in sys.argv[1:])))
