"""The scan rate of `nv-edge scan` on a large orthomosaic with the shipped model: km2 per minute and tiles
per second on one core and on all cores (worker processes, each with its own interpreter), and one
process with interpreter threads instead; and the ratio of the whole scan to decode+invoke (reading and
resampling the windows + the interpreter, summed over workers and divided by them): what the rest
(planning, the state file, decisions, areas, GeoJSON, the overview, starting workers) costs. `cores_got` is
the CPU time the scan had (this process and its workers) over its wall time: on a machine shared with other
jobs (Linux gives each session a share of the CPU, whatever its number of processes) it shows how much of
the cores a run really had.

The ortho is the sample mosaic (real Sentinel-2 tiles) upsampled to --gsd and repeated to --side pixels,
tiled and DEFLATE-compressed like a drone ortho, in UTM 21S; it is written once into --dir. Other jobs
share the cores: the load average is printed before and after each run.

    .venv/bin/python bench/scan.py [--side 20000] [--gsd 0.5] [--model models/mining-s2/mining-s2.nvm] [--dir /tmp/nv-bench-scan]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.survey.scan import ScanOptions, default_workers, scan

MOSAIC = ROOT / "samples" / "scenes" / "mosaic_a.png"
MOSAIC_M = 10.0  # metres per pixel of the mosaic


def write_ortho(path: Path, side: int, gsd: float) -> Path:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    scale = round(MOSAIC_M / gsd)
    mosaic = np.asarray(Image.open(MOSAIC).convert("RGB"))
    period = mosaic.shape[0] * scale
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8", "crs": "EPSG:32721",
               "transform": Affine(gsd, 0, 620_000.0, 0, -gsd, 9_340_000.0), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "photometric": "RGB", "BIGTIFF": "IF_SAFER"}
    with rasterio.open(path, "w", **profile) as out:
        for top in range(0, side, 512):
            rows = np.arange(top, min(top + 512, side)) % period // scale
            cols = np.arange(side) % period // scale
            strip = mosaic[rows][:, cols]
            out.write(np.moveaxis(strip, -1, 0), window=Window(0, top, side, len(rows)))
    return path


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the scan's worker processes)."""
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def run(ortho: Path, model: Path, out_dir: Path, workers: int, threads: int | None) -> dict:
    before = load()
    cpu_before = cpu_seconds()
    s = scan(ortho, ScanOptions(model=model, out=out_dir / f"w{workers}-t{threads}.geojson", device="bench",
                                workers=workers, threads=threads, fresh=True))
    busy = (s.read_s + s.invoke_s) / workers
    cpu = cpu_seconds() - cpu_before
    return {"workers": workers, "threads": threads or "default", "tiles": s.tiles, "km2": round(s.km2, 1),
            "wall_s": round(s.wall_s, 2), "tiles_per_s": round(s.tiles / s.wall_s, 1),
            "km2_per_min": round(s.km2 / s.wall_s * 60, 1), "decode_s": round(s.read_s, 2),
            "invoke_s": round(s.invoke_s, 2), "whole_over_decode_invoke": round(s.wall_s / busy, 2),
            "cpu_s": round(cpu, 2), "cores_got": round(cpu / s.wall_s, 2), "load_before": before, "load_after": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20_000, help="ortho width and height, pixels")
    parser.add_argument("--gsd", type=float, default=0.5, help="ortho metres per pixel")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mining-s2" / "mining-s2.nvm")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/nv-bench-scan"))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (the fastest is kept)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    ortho = args.dir / f"ortho-{args.side}-{args.gsd}.tif"
    if not ortho.exists():
        write_ortho(ortho, args.side, args.gsd)
    cores = default_workers()
    print(f"ortho {ortho}: {args.side} x {args.side} px at {args.gsd} m/px; {cores} cores; load {load()}")
    cases = [(1, 1), (cores, 1), (1, cores)] if cores > 1 else [(1, 1)]
    results = []
    for workers, threads in cases:
        best = min((run(ortho, args.model, args.dir, workers, threads) for _ in range(args.repeat)),
                   key=lambda r: r["wall_s"])
        results.append(best)
        print(json.dumps(best))
    if cores > 1:
        print(f"{cores} worker processes vs 1: {results[0]['wall_s'] / results[1]['wall_s']:.2f}x faster; "
              f"1 process with {cores} interpreter threads vs 1: {results[0]['wall_s'] / results[2]['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
