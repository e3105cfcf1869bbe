"""A scan's tile scores -> decisions (the edge's own: edge.decisions, groups and thresholds from the
manifest, as `nv-edge classify` decides a frame) -> areas: alerting tiles that share an edge are one
area (their union, in ortho pixels, where tile edges meet exactly), measured geodesically, with the
score of its most alarming tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.decisions.alerts import Decision, alert_margins, decide
from edge.model.bundle import Manifest
from edge.survey.geo import Georeference, hectares
from edge.survey.grid import Tile


@dataclass(frozen=True)
class TileDecision:
    tile: Tile
    scores: np.ndarray  # (labels,)
    decision: Decision
    margin: float  # how far its best alert group is above its threshold


@dataclass(frozen=True)
class Area:
    number: int  # 1, 2, ... in scan order of its first tile
    pixel_polygon: object  # shapely Polygon in ortho pixels
    lonlat_polygon: object  # shapely Polygon in WGS84 lon/lat
    hectares: float
    tiles: tuple[TileDecision, ...]
    peak: TileDecision  # its most alarming tile

    @property
    def peak_score(self) -> float:
        return self.peak.decision.score


def decide_tiles(tiles: list[Tile], scores: np.ndarray, manifest: Manifest,
                 thresholds: dict[str, float]) -> list[TileDecision]:
    """Every classified tile (scores not NaN: empty tiles were not classified) with its decision."""
    done = ~np.isnan(scores).any(axis=1)
    margins = np.full(len(tiles), -np.inf, dtype=np.float64)
    if done.any():
        margins[done] = alert_margins(scores[done], manifest, thresholds)
    return [TileDecision(tile, scores[i], decide(scores[i], manifest, thresholds), float(margins[i]))
            for i, tile in enumerate(tiles) if done[i]]


def merge_areas(alerts: list[TileDecision], geo: Georeference) -> list[Area]:
    """Union of alerting tiles; tiles touching only at a corner stay apart."""
    from shapely import STRtree
    from shapely.geometry import Point, box
    from shapely.ops import unary_union

    if not alerts:
        return []
    union = unary_union([box(*t.tile.box) for t in alerts])
    polygons = [p.simplify(0) for p in getattr(union, "geoms", [union])]  # no vertices midway along an edge
    tree = STRtree(polygons)
    members: dict[int, list[TileDecision]] = {}
    for t in alerts:
        left, top, right, bottom = t.tile.box
        centre = Point((left + right) / 2.0, (top + bottom) / 2.0)
        members.setdefault(int(tree.query(centre, predicate="within")[0]), []).append(t)
    areas = []
    for i in sorted(members, key=lambda k: members[k][0].tile.index):
        inside = tuple(members[i])
        lonlat = geo.polygon(polygons[i])
        peak = max(inside, key=lambda t: (t.margin, -t.tile.index))
        measured = hectares(geo.polygon(polygons[i], digits=None))  # before rounding to ~1 cm
        areas.append(Area(len(areas) + 1, polygons[i], lonlat, measured, inside, peak))
    return areas
