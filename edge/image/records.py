"""The detection record of one classified frame (the contract: edge/records/schema/detection.schema.json)."""

from __future__ import annotations

from pathlib import Path

from edge.image.classify import FrameResult
from edge.records.record import SCORE_DIGITS, add_decision, base_record, source_time


def image_record(
    result: FrameResult,
    *,
    model: dict,
    labels: tuple[str, ...],
    alert_labels: tuple[str, ...],
    source: str,
    path: Path | None,
    device: str,
) -> dict:
    moment, time_source = result.captured or source_time(path)
    record = base_record(device, source, "image", moment, time_source)
    add_decision(record, model=model, labels=labels, scores=result.scores, decision=result.decision,
                 frame={"width": result.width, "height": result.height})
    if result.tiles is not None:
        tiles = result.tiles
        record["tiles"] = {
            "size": tiles.tile_px,
            "overlap": tiles.grid.overlap,
            "rows": tiles.grid.rows,
            "cols": tiles.grid.cols,
            "xs": tiles.frame_xs,  # 1.6: where each tile is (frame pixels), so a reader never re-derives the tiling
            "ys": tiles.frame_ys,
            "grid": {  # per-tile scores of the alert labels (of every label when none alerts)
                label: [[round(float(v), SCORE_DIGITS) for v in row] for row in tiles.scores[:, :, labels.index(label)]]
                for label in (alert_labels or labels)
            },
            "best": {"row": tiles.best[0], "col": tiles.best[1], "box": list(tiles.best_box)},
        }
    if result.tta > 1:
        record["tta"] = result.tta
    if result.scale is not None:
        add_scale(record, result)
    if result.geo is not None:
        record["geo"] = result.geo
    return record


def add_scale(record: dict, result: FrameResult) -> None:
    """Schema 1.6, for a model with a scale: the frame's ground resolution (the shape of a scan's), the tiles
    as used, and why the model cannot judge the frame when it cannot."""
    scale = result.scale
    if scale.gsd is not None:
        record["ground_resolution"] = scale.gsd.to_dict()
    used = {"trained_m_per_px": scale.trained_m, "resampled": result.resampled}
    if result.tile:
        used["tile_px"] = result.tile
        if scale.gsd is not None:
            used["tile_m"] = round(scale.tile_ground_m if result.resampled else result.tile * scale.gsd.x_m, 3)
    record["scale"] = used
    if scale.out_of_domain is not None:
        record["out_of_domain"] = {"why": scale.out_of_domain, "allowed": result.allowed}
