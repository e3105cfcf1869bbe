"""`nv-edge scan ORTHO.tif`: an orthomosaic (GeoTIFF of a drone survey) scanned at the model's training
scale -> mining areas as GeoJSON (for QGIS), a PNG overview, one detection record per area on stdout
(and in `--outbox`). Resumable: a rerun after a crash skips the tiles already classified
(edge/survey/scan.py). Needs the `survey` extra."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.arguments import UsageError, ground_resolution, overlap, positive, threshold
from edge.cli.classify import DEFAULT_MODEL_NAME, default_model_path
from edge.cli.progress import Progress
from edge.delivery.outbox import Outbox
from edge.model.bundle import BundleError
from edge.model.interpreter import BACKENDS
from edge.records.record import default_device
from edge.survey.raster import SurveyError
from edge.survey.scan import DEFAULT_BATCH, ScanOptions, default_outputs, default_workers, scan


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("ortho", type=Path, metavar="ORTHO.tif", help="orthomosaic GeoTIFF (OpenDroneMap, Pix4D, DroneDeploy...)")
    c.add_argument("--model", type=Path, help=f"model bundle (.nvm); default: $NV_MODEL or models/{DEFAULT_MODEL_NAME}")
    c.add_argument("--out", type=Path, help="GeoJSON of the mining areas and alerting tiles; default: ORTHO.mining.geojson")
    c.add_argument("--overview", type=Path, help="PNG overview with the detections drawn; default: beside --out, .png")
    c.add_argument("--threshold", type=threshold, action="append", default=[], metavar="[GROUP=]T",
                   help="alert threshold for every alert group, or GROUP=T for one (repeatable); default: the manifest's")
    c.add_argument("--gsd", type=ground_resolution, metavar="M",
                   help="ground resolution in metres per pixel, over what the geotransform says")
    c.add_argument("--overlap", type=overlap, default=0.0, help="tile overlap fraction (default 0: tiles abut)")
    c.add_argument("--workers", type=positive("workers"), default=default_workers(),
                   help="worker processes, each with its own interpreter (default: every core, %(default)s here)")
    c.add_argument("--threads", type=positive("threads"), help="interpreter threads per worker (default: 1 with several workers, else the backend's)")
    c.add_argument("--batch", type=positive("batch"), default=DEFAULT_BATCH, help=f"tiles per invoke (default {DEFAULT_BATCH})")
    c.add_argument("--backend", choices=tuple(BACKENDS), help="force an interpreter (default: the first that imports)")
    c.add_argument("--device", default=None, help="device id in records (default: $NV_DEVICE or the host name)")
    c.add_argument("--outbox", type=Path, help="also queue the area records in this outbox for `nv-edge publish`")
    c.add_argument("--fresh", action="store_true", help="forget a stopped scan's state file and start over")


def run(args: argparse.Namespace) -> int:
    model = args.model or default_model_path()
    if model is None:
        raise BundleError(f"no model given and no default found (models/{DEFAULT_MODEL_NAME}); pass --model PATH")
    out = args.out or default_outputs(args.ortho)[0]
    options = ScanOptions(model=model, out=out, overview=args.overview or out.with_suffix(".png"),
                          device=args.device or default_device(), thresholds=dict(args.threshold), gsd=args.gsd,
                          overlap=args.overlap, workers=args.workers, threads=args.threads, backend=args.backend,
                          batch=args.batch, fresh=args.fresh)
    progress: list[Progress] = []
    outbox = Outbox(args.outbox) if args.outbox else None
    try:
        summary = scan(args.ortho, options, outbox=outbox,
                       on_plan=lambda n: progress.append(Progress(n, label="tiles")),
                       on_tiles=lambda n: [progress[0].step() for _ in range(n)])
    except SurveyError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # resolve_thresholds: an override that names no alert group
        raise UsageError(f"--threshold: {exc}") from None
    finally:
        if progress:
            progress[0].close()
        if outbox is not None:
            outbox.close()
    for record in summary.records:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    rate = summary.km2 / max(summary.wall_s, 1e-9) * 60
    print(f"nv-edge scan: {args.ortho}: {summary.tiles} tiles ({summary.classified} classified now, "
          f"{summary.from_state} from the state file, {summary.empty} without ortho), {summary.alerting} alerting, "
          f"{summary.areas} areas; {summary.km2:.3g} km2 in {summary.wall_s:.1f} s ({rate:.3g} km2/min); "
          f"wrote {options.out} and {options.overview}", file=sys.stderr)
    return 0
