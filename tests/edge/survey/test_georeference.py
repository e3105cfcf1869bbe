"""Every tile on the map: GeoTIFFs in a UTM zone (EPSG:32721) and in WGS84 (EPSG:4326) with known
geotransforms, whose ground resolution and tile polygons are checked against values worked out by hand."""

from __future__ import annotations

import json
import math

import pytest
from orthos import RED, UTM_21S, UTM_ORIGIN, WGS84, north_up, write_ortho

from edge.image.gsd import frame_gsd, read_geotiff_gsd
from edge.survey.scan import ScanOptions, scan

# WGS84 ellipsoid
A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(along a parallel, along a meridian) at `lat`: N cos(lat) and M, by the textbook formulas."""
    s = math.sin(math.radians(lat))
    n = A / math.sqrt(1 - E2 * s * s)
    m = A * (1 - E2) / (1 - E2 * s * s) ** 1.5
    return math.radians(1) * n * math.cos(math.radians(lat)), math.radians(1) * m


def test_ground_resolution_of_a_utm_geotiff(tmp_path):
    path = write_ortho(tmp_path / "utm.tif", 640, 480, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.05, 0.05))
    gsd = read_geotiff_gsd(path)
    assert (gsd.x_m, gsd.y_m, gsd.source) == (pytest.approx(0.05), pytest.approx(0.05), "geotiff")
    assert frame_gsd(path).source == "geotiff"  # frame_gsd reads GeoTIFF tags first


def test_ground_resolution_of_a_wgs84_geotiff_is_measured_on_the_ellipsoid(tmp_path):
    deg = 5e-6
    path = write_ortho(tmp_path / "geo.tif", 600, 400, crs=WGS84, transform=north_up(-56.0, -5.0, deg, deg))
    gsd = read_geotiff_gsd(path)
    centre_lat = -5.0 - 200 * deg
    along_parallel, along_meridian = metres_per_degree(centre_lat)
    assert gsd.x_m == pytest.approx(deg * along_parallel, rel=1e-4)  # 0.5540 m
    assert gsd.y_m == pytest.approx(deg * along_meridian, rel=1e-4)  # 0.5529 m
    assert "latitude -5.0010" in gsd.detail


def alert_tiles(geojson: dict) -> dict[tuple[int, int], list]:
    return {(f["properties"]["row"], f["properties"]["col"]): f["geometry"]["coordinates"][0]
            for f in geojson["features"] if f["properties"]["kind"] == "tile"}


def assert_same_ring(ring, corners):
    """The polygon's ring has exactly these corners (in any start and either direction)."""
    assert ring[0] == ring[-1] and len(ring) == 5
    got, want = sorted(map(tuple, ring[:-1])), sorted(corners)
    for (gx, gy), (wx, wy) in zip(got, want):
        assert (gx, gy) == (pytest.approx(wx, abs=1e-7), pytest.approx(wy, abs=1e-7))  # 1e-7 degrees: ~1 cm


def test_tile_polygons_in_a_utm_ortho(tmp_path, tiny_scan_model):
    from pyproj import Transformer

    # 0.5 m/px: the tiny model's 160 m tiles are 320 px; the ortho is 3 x 2 tiles, red at (0, 1) and (1, 2).
    path = write_ortho(tmp_path / "utm.tif", 960, 640, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.5, 0.5),
                       red_boxes=[(320, 0, 640, 320), (640, 320, 960, 640)])
    out = tmp_path / "utm.geojson"
    scan(path, ScanOptions(model=tiny_scan_model, out=out, device="t"))
    tiles = alert_tiles(json.loads(out.read_text()))
    assert set(tiles) == {(0, 1), (1, 2)}
    to_wgs84 = Transformer.from_crs(UTM_21S, WGS84, always_xy=True)
    x0, y0 = UTM_ORIGIN
    for (row, col), ring in tiles.items():
        west, east = x0 + 160 * col, x0 + 160 * (col + 1)  # metres: the geotransform by hand
        north, south = y0 - 160 * row, y0 - 160 * (row + 1)
        corners = [to_wgs84.transform(x, y) for x, y in ((west, north), (east, north), (east, south), (west, south))]
        assert_same_ring(ring, corners)


def test_tile_polygons_in_a_wgs84_ortho(tmp_path, tiny_scan_model):
    deg = 5e-6
    path = write_ortho(tmp_path / "geo.tif", 867, 578, crs=WGS84, transform=north_up(-56.0, -5.0, deg, deg),
                       red_boxes=[(0, 289, 289, 578)])
    out = tmp_path / "geo.geojson"
    scan(path, ScanOptions(model=tiny_scan_model, out=out, device="t"))
    data = json.loads(out.read_text())
    assert data["naturevision"]["tiles"]["ortho_px"] == [289, 289]  # 160 m / 0.554 m and / 0.553 m, rounded
    tiles = alert_tiles(data)
    assert set(tiles) == {(1, 0)}
    west, east, north, south = -56.0, -56.0 + 289 * deg, -5.0 - 289 * deg, -5.0 - 578 * deg
    assert_same_ring(tiles[1, 0], [(west, north), (east, north), (east, south), (west, south)])
    assert RED  # the red box is what made the tile alert
