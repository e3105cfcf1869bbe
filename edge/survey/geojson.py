"""A scan's results as GeoJSON (RFC 7946: WGS84 longitude/latitude, exterior rings counter-clockwise)
that QGIS opens as it is: one feature per mining area (the union of adjacent alerting tiles) and one
per alerting tile. Nothing in it depends on when or how often the scan ran, so a resumed scan writes the
same file as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edge.records.record import SCORE_DIGITS
from edge.survey.areas import Area, TileDecision
from edge.survey.geo import Georeference, rings

HECTARE_DIGITS = 4


def feature_collection(*, name: str, about: dict, areas: list[Area], alerts: list[TileDecision],
                       labels: tuple[str, ...], geo: Georeference) -> dict:
    area_of = {t.tile.index: area.number for area in areas for t in area.tiles}
    features = [{
        "type": "Feature",
        "id": f"area-{area.number}",
        "properties": {"kind": "area", "area": area.number, "label": area.peak.decision.label,
                       "hectares": round(area.hectares, HECTARE_DIGITS), "tiles": len(area.tiles),
                       "peak_score": round(area.peak_score, SCORE_DIGITS), "threshold": area.peak.decision.threshold},
        "geometry": {"type": "Polygon", "coordinates": rings(area.lonlat_polygon)},
    } for area in areas]
    for t in alerts:
        features.append({
            "type": "Feature",
            "id": f"tile-{t.tile.row}-{t.tile.col}",
            "properties": {"kind": "tile", "area": area_of[t.tile.index], "row": t.tile.row, "col": t.tile.col,
                           "label": t.decision.label, "score": round(t.decision.score, SCORE_DIGITS),
                           "threshold": t.decision.threshold,
                           "scores": {k: round(float(v), SCORE_DIGITS) for k, v in zip(labels, t.scores)},
                           "window": [t.tile.x, t.tile.y, t.tile.width, t.tile.height]},
            "geometry": {"type": "Polygon", "coordinates": rings(geo.box(*t.tile.box))},
        })
    return {"type": "FeatureCollection", "name": name, "naturevision": about, "features": features}


def write_json(path: Path, data: dict) -> None:
    """Whole or not at all: a crash while writing leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)
