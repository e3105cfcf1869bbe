"""Where a record is, for the map's box query: its `geo` point, or else its `area`.

A drone scan's record (schema 1.4) has no `geo`: it has an `area`, the polygon of one mining area of
an orthomosaic. The store keeps the polygon's centroid in the lat/lon columns (the event list's map,
the units' positions, exports that want a point) and its bounding box in south/north/west/east, so
that the box query (Store.in_box) finds an area that reaches into the box even when its centroid lies
outside. The page draws the polygon itself from the record.
"""

from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple


class Bounds(NamedTuple):
    south: float
    north: float
    west: float
    east: float


def area_ring(area) -> list[tuple[float, float]] | None:
    """`area`'s exterior ring as (lon, lat) pairs, closed, or None when there is no usable polygon."""
    ring = area.get("polygon") if isinstance(area, dict) else None
    if not isinstance(ring, list) or len(ring) < 3:
        return None
    try:
        points = [(float(p[0]), float(p[1])) for p in ring]
    except (TypeError, ValueError, IndexError):
        return None
    if points[0] != points[-1]:
        points.append(points[0])
    return points


def area_centre(area) -> dict | None:
    """{"lat", "lon"} of the centroid of `area`'s polygon ([lon, lat] pairs, closed ring), or None when
    there is no usable polygon. Planar in degrees: an area is a few hectares, far from the poles."""
    points = area_ring(area)
    if points is None:
        return None
    twice, cx, cy = 0.0, 0.0, 0.0
    for (x0, y0), (x1, y1) in pairwise(points):
        cross = x0 * y1 - x1 * y0
        twice += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(twice) < 1e-18:  # no extent (a line, a point): the mean of its corners
        corners = points[:-1]
        return {"lat": sum(y for _, y in corners) / len(corners), "lon": sum(x for x, _ in corners) / len(corners)}
    return {"lat": cy / (3 * twice), "lon": cx / (3 * twice)}


def area_bounds(area) -> Bounds | None:
    """The bounding box of `area`'s polygon, or None when there is no usable polygon."""
    points = area_ring(area)
    if points is None:
        return None
    lons, lats = [x for x, _ in points], [y for _, y in points]
    return Bounds(min(lats), max(lats), min(lons), max(lons))
