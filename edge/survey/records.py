"""One detection record per mining area of a scan (schema 1.4 `area`): the decision of its most
alarming tile, and the area's polygon (WGS84 [lon, lat], exterior ring), hectares, tiles and peak score."""

from __future__ import annotations

from pathlib import Path

from edge.records.record import SCORE_DIGITS, add_decision, base_record, source_time
from edge.survey.areas import Area
from edge.survey.geojson import HECTARE_DIGITS


def area_record(area: Area, *, model: dict, labels: tuple[str, ...], source: Path, device: str,
                width: int, height: int, tta: int = 1) -> dict:
    moment, time_source = source_time(source)
    record = base_record(device, str(source), "image", moment, time_source)
    add_decision(record, model=model, labels=labels, scores=area.peak.scores, decision=area.peak.decision,
                 frame={"width": width, "height": height})
    if tta > 1:
        record["tta"] = tta
    record["area"] = {
        "polygon": [list(p) for p in area.lonlat_polygon.exterior.coords],
        "hectares": round(area.hectares, HECTARE_DIGITS),
        "tiles": len(area.tiles),
        "peak_score": round(area.peak_score, SCORE_DIGITS),
    }
    return record
