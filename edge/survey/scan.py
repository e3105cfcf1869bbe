"""`nv-edge scan`'s work: an orthomosaic -> tiles at the model's training scale, classified in
parallel, resumable -> decisions, areas, GeoJSON, an overview PNG and one record per area.

    ortho header -> ground resolution (edge/image/gsd.py) -> grid (edge/survey/grid.py, out-of-domain check)
    -> chunks of tiles not yet in the state file (edge/survey/state.py) -> workers (edge/survey/workers.py)
    -> every chunk's scores committed -> decisions and areas (edge/survey/areas.py) -> outputs
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.decisions.alerts import resolve_thresholds
from edge.delivery.outbox import Outbox
from edge.model.bundle import BundleError, read_bundle
from edge.survey.areas import Area, decide_tiles, merge_areas
from edge.survey.geo import Georeference
from edge.survey.geojson import feature_collection, write_json
from edge.survey.grid import plan_grid
from edge.survey.overview import draw_overview, thumb_scale
from edge.survey.raster import open_ortho
from edge.survey.records import area_record
from edge.survey.state import ScanState, state_path
from edge.survey.workers import Job, classify_chunks

DEFAULT_BATCH = 16


@dataclass(frozen=True)
class ScanOptions:
    model: Path
    out: Path  # the GeoJSON; the state file and (by default) the overview go beside it
    device: str
    overview: Path | None = None
    thresholds: dict[str, float] = field(default_factory=dict)  # overrides of the manifest's, as --threshold gives them
    gsd: float | None = None  # metres per pixel, over the geotransform's
    overlap: float = 0.0
    workers: int = 1
    threads: int | None = None
    backend: str | None = None
    batch: int = DEFAULT_BATCH
    fresh: bool = False


@dataclass
class ScanSummary:
    tiles: int
    classified: int = 0  # tiles classified by this run
    from_state: int = 0  # tiles whose scores a stopped run had already saved
    empty: int = 0  # tiles with no ortho under them (nodata, transparent)
    alerting: int = 0
    areas: int = 0
    km2: float = 0.0
    read_s: float = 0.0  # summed over workers: reading and resampling windows
    invoke_s: float = 0.0  # summed over workers: the interpreter
    wall_s: float = 0.0
    records: list[dict] = field(default_factory=list)


def default_outputs(ortho: Path) -> tuple[Path, Path]:
    stem = ortho.with_suffix("")
    return Path(f"{stem}.mining.geojson"), Path(f"{stem}.mining.png")


def scan(ortho_path: str | Path, options: ScanOptions, *, outbox: Outbox | None = None,
         on_tiles: Callable[[int], None] = lambda n: None, on_plan: Callable[[int], None] = lambda n: None) -> ScanSummary:
    """Raises SurveyError (and OutOfDomain) for an ortho or state file that cannot be used, BundleError for
    the model, ValueError for a threshold that names no alert group."""
    started = time.perf_counter()
    ortho = open_ortho(ortho_path, options.gsd)
    bundle = read_bundle(options.model)  # the workers load it on their interpreters
    manifest = bundle.manifest
    if manifest.task != "image":
        raise BundleError(f"{bundle.path}: is an {manifest.task} model, not an image model; pass an image model bundle")
    thresholds = resolve_thresholds(manifest, options.thresholds)
    grid = plan_grid(str(ortho.path), ortho.width, ortho.height, ortho.gsd, manifest.trained_on, str(bundle.path),
                     options.overlap)
    tiles = grid.tiles()
    chunks = {k: tiles[start : start + options.batch] for k, start in enumerate(range(0, len(tiles), options.batch))}
    scale = thumb_scale(ortho.width, ortho.height, grid.tile_w, grid.out_px)
    identity = {"ortho": ortho.fingerprint, "model": manifest.model_sha256, "tile": [grid.tile_w, grid.tile_h],
                "overlap": options.overlap, "batch": options.batch, "overview_scale": scale, "tta": manifest.input.tta}
    summary = ScanSummary(tiles=len(tiles), km2=ortho.width * ortho.gsd.x_m * ortho.height * ortho.gsd.y_m / 1e6)
    on_plan(len(tiles))
    state = ScanState(state_path(options.out), identity, fresh=options.fresh)
    try:
        done = state.done_chunks()
        todo = {k: v for k, v in chunks.items() if k not in done}
        summary.from_state = sum(len(v) for k, v in chunks.items() if k in done)
        on_tiles(summary.from_state)
        workers = max(1, min(options.workers, len(todo)))
        threads = options.threads if options.threads is not None or workers == 1 else 1  # one core per worker
        job = Job(ortho, Path(options.model), options.backend, threads, grid.out_px, grid.tile_w, grid.tile_h, scale)
        for result in classify_chunks(job, todo, workers):
            state.save_chunk(result.chunk, result.scores, result.thumbs)
            summary.classified += len(result.thumbs)
            summary.read_s += result.read_s
            summary.invoke_s += result.invoke_s
            on_tiles(len(result.thumbs))
        saved, thumbs = state.load(len(chunks), len(manifest.labels))
        scores = np.concatenate([saved[k] for k in range(len(chunks))])
        thumbs = [t for k in range(len(chunks)) for t in thumbs[k]]
        decisions = decide_tiles(tiles, scores, manifest, thresholds)
        alerts = [d for d in decisions if d.decision.alert]
        geo = Georeference(ortho)
        areas = merge_areas(alerts, geo)
        identity_of_model = {"name": manifest.name, "version": manifest.version, "sha256": manifest.model_sha256}
        about = {
            "ortho": ortho.path.name, "model": identity_of_model,
            "ground_resolution": ortho.gsd.to_dict(),
            "trained_ground_resolution_m": manifest.trained_on.ground_resolution_m,
            "tiles": {"ground_m": grid.ground_m, "ortho_px": [grid.tile_w, grid.tile_h], "read_to_px": grid.out_px,
                      "rows": grid.rows, "cols": grid.cols, "overlap": options.overlap, "total": len(tiles),
                      "classified": len(decisions), "alerting": len(alerts)},
            "thresholds": thresholds, "tta": manifest.input.tta,
        }
        write_json(options.out, feature_collection(name=f"{ortho.path.stem} mining", about=about, areas=areas,
                                                   alerts=alerts, labels=manifest.labels, geo=geo))
        draw_overview(options.overview or default_outputs(options.out)[1], ortho.width, ortho.height, scale, tiles,
                      thumbs, alerts, areas)
        summary.records = _records(state, areas, thresholds, options, ortho, identity_of_model, manifest.labels,
                                   manifest.input.tta)
        if outbox is not None:
            for record in summary.records:
                outbox.put(record)  # the same ids on a rerun: the outbox keeps one of each
            outbox.flush()
    finally:
        state.close()
    summary.empty = len(tiles) - len(decisions)
    summary.alerting, summary.areas = len(alerts), len(areas)
    summary.wall_s = time.perf_counter() - started
    return summary


def _records(state: ScanState, areas: list[Area], thresholds: dict, options: ScanOptions, ortho, model: dict,
             labels: tuple[str, ...], tta: int) -> list[dict]:
    """The area records, made once per thresholds and device and kept in the state file."""
    key = json.dumps({"thresholds": thresholds, "device": options.device}, sort_keys=True)
    records = state.records(key)
    if records is None:
        records = [area_record(area, model=model, labels=labels, source=ortho.path, device=options.device,
                               width=ortho.width, height=ortho.height, tta=tta) for area in areas]
        state.save_records(key, records)
    return records


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
