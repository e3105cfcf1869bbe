"""From ortho pixels to the map: a pixel corner goes through the ortho's geotransform into its own CRS
first, then to WGS84 longitude/latitude with pyproj (always x = longitude, y = latitude, as GeoJSON
wants). Areas are measured on the WGS84 ellipsoid (pyproj's Geod), not in a projected plane.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.survey.raster import Ortho

COORD_DIGITS = 7  # ~1 cm of longitude or latitude
SQUARE_METRES_PER_HECTARE = 10_000.0


class Georeference:
    """Pixel (col, row) -> WGS84 (lon, lat) for one ortho."""

    def __init__(self, ortho: Ortho):
        from pyproj import CRS, Transformer

        self.a, self.b, self.c, self.d, self.e, self.f = ortho.transform
        self._to_wgs84 = Transformer.from_crs(CRS.from_wkt(ortho.crs_wkt), CRS.from_epsg(4326), always_xy=True)

    def to_crs(self, col: float, row: float) -> tuple[float, float]:
        """A pixel corner in the ortho's own CRS."""
        return (self.a * col + self.b * row + self.c, self.d * col + self.e * row + self.f)

    def to_lonlat(self, points: Iterable[tuple[float, float]], digits: int | None = COORD_DIGITS) -> list[list[float]]:
        """Pixel corners -> [[lon, lat], ...], rounded to `digits` (None: not rounded, for measuring)."""
        xs, ys = zip(*(self.to_crs(col, row) for col, row in points))
        lons, lats = self._to_wgs84.transform(xs, ys)
        if digits is None:
            return [[lon, lat] for lon, lat in zip(lons, lats)]
        return [[round(lon, digits), round(lat, digits)] for lon, lat in zip(lons, lats)]

    def polygon(self, pixel_polygon, digits: int | None = COORD_DIGITS):
        """A shapely polygon in ortho pixels -> the same in lon/lat, exterior counter-clockwise (RFC 7946)."""
        from shapely.geometry import Polygon
        from shapely.geometry.polygon import orient

        shell = self.to_lonlat(pixel_polygon.exterior.coords, digits)
        holes = [self.to_lonlat(ring.coords, digits) for ring in pixel_polygon.interiors]
        return orient(Polygon(shell, holes), sign=1.0)

    def box(self, left: int, top: int, right: int, bottom: int):
        from shapely.geometry import box

        return self.polygon(box(left, top, right, bottom))


def hectares(lonlat_polygon) -> float:
    """Geodesic area of a lon/lat polygon (holes subtracted), in hectares."""
    from pyproj import Geod

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(lonlat_polygon)
    return abs(area) / SQUARE_METRES_PER_HECTARE


def rings(lonlat_polygon) -> list[list[list[float]]]:
    """GeoJSON coordinates of a polygon: exterior ring then holes, each closed."""
    return [[list(p) for p in lonlat_polygon.exterior.coords]] + \
        [[list(p) for p in ring.coords] for ring in lonlat_polygon.interiors]
