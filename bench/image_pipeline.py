"""Where the time of `nv-edge classify` goes, per frame, with the shipped model on one core.

For each case it prints the median of: decode+resize (file -> model-sized uint8 tiles),
invoke (quantized tiles -> scores, the interpreter alone), and the whole classify path of the
CLI (file -> JSON record). The ratio whole / (decode+resize + invoke) shows the overhead of
everything else (tiling, quantization, decisions, the record); aim <= 1.3.

Then the cost of test-time augmentation (TTA, the manifest's `input.tta`): per tile in a batch
(`predict_tiles`: orientations, quantization, invoke, mean) and per frame (the whole classify path on
the 576 px scene), for each option, with its ratio to no TTA, in one run.

    .venv/bin/python bench/image_pipeline.py [--model models/mining-s2/mining-s2.nvm] [--repeat 30] [--backend litert]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.cli.classify import classify_path  # noqa: E402
from edge.decisions.alerts import resolve_thresholds  # noqa: E402
from edge.features.pixels import normalise, prepare_tile  # noqa: E402
from edge.image.classify import ClassifyOptions, predict_tiles, tile_size_for  # noqa: E402
from edge.image.decode import open_frame  # noqa: E402
from edge.image.tiling import make_grid  # noqa: E402
from edge.model.interpreter import quantize  # noqa: E402
from edge.model.loaded import Model, load_model  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    fn()  # warm up: allocation, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def prepare(model: Model, path: Path, options: ClassifyOptions) -> np.ndarray:
    """decode + resize exactly as classify_frame does it, without the interpreter."""
    spec = model.manifest.input
    tile = tile_size_for(model, options)
    if not tile:
        frame = open_frame(path, min_scale=0.0, min_size=spec.size)
        return prepare_tile(frame.image, spec)[None]
    frame = open_frame(path, min_scale=spec.size[0] / tile)
    boxes = make_grid(frame.width, frame.height, tile, options.overlap).boxes()
    return np.stack([prepare_tile(frame.image, spec, tuple(v * frame.scale for v in b)) for b in boxes])


def bench_case(name: str, model: Model, path: Path, options: ClassifyOptions, repeat: int) -> dict:
    tiles = prepare(model, path, options)
    tensor = quantize(normalise(tiles, model.manifest.input), model.runner.input)
    batch = options.batch_size

    def invoke():  # the interpreter alone: input already in the tensor's type
        for start in range(0, len(tensor), batch):
            model.runner.run_raw(tensor[start : start + batch])

    decode = median_ms(lambda: prepare(model, path, options), repeat)
    run = median_ms(invoke, repeat)
    whole = median_ms(lambda: json.dumps(classify_path(model, path, options, "bench")), repeat)
    return {"case": name, "tiles": len(tiles), "decode_resize_ms": decode, "invoke_ms": run, "whole_ms": whole,
            "ratio": whole / (decode + run)}


def draft_gain(path: Path, size: tuple[int, int], repeat: int) -> tuple[float, float]:
    def full():
        with Image.open(path) as img:
            img.convert("RGB").resize(size, Image.Resampling.BILINEAR)

    def drafted():
        with Image.open(path) as img:
            img.draft("RGB", size)
            img.convert("RGB").resize(size, Image.Resampling.BILINEAR)

    return median_ms(full, repeat), median_ms(drafted, repeat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "mining-s2" / "mining-s2.nvm")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    model = load_model(args.model, backend=args.backend, num_threads=args.threads)
    thresholds = resolve_thresholds(model.manifest)
    tiled = ClassifyOptions(thresholds=thresholds)
    exact = ClassifyOptions(thresholds=thresholds, overlap=0.0)
    whole = ClassifyOptions(thresholds=thresholds, tile=0)

    tile_path = next((ROOT / "samples" / "tiles").glob("*.png"))
    scene_path = ROOT / "samples" / "scenes" / "mosaic_a.png"
    tmp = Path(tempfile.mkdtemp())
    jpeg_path = tmp / "frame_1080p.jpg"
    with Image.open(scene_path) as scene:  # a 1080p camera-sized JPEG made from real tiles
        scene.convert("RGB").resize((1920, 1080), Image.Resampling.BILINEAR).save(jpeg_path, quality=90)

    print(f"model {args.model.name} ({model.manifest.version}), backend {model.runner.backend} "
          f"{model.runner.backend_version}, {args.threads} thread(s), median of {args.repeat}")
    cases = [
        bench_case(f"single tile {tile_path.name} (48 px PNG)", model, tile_path, tiled, args.repeat),
        bench_case("scene 576 px PNG, overlap 0 (12x12 tiles)", model, scene_path, exact, args.repeat),
        bench_case("scene 576 px PNG, overlap 0.25", model, scene_path, tiled, args.repeat),
        bench_case("1080p JPEG, whole frame (--tile 0)", model, jpeg_path, whole, args.repeat),
    ]
    print(f"{'case':<46} {'tiles':>5} {'decode+resize':>14} {'invoke':>10} {'whole':>10} {'ratio':>6}")
    for c in cases:
        print(f"{c['case']:<46} {c['tiles']:>5} {c['decode_resize_ms']:>11.2f} ms {c['invoke_ms']:>7.2f} ms "
              f"{c['whole_ms']:>7.2f} ms {c['ratio']:>6.2f}")
    per_tile = cases[1]["invoke_ms"] / cases[1]["tiles"]
    print(f"invoke per tile in a batch of {tiled.batch_size}: {per_tile:.3f} ms")
    full_ms, draft_ms = draft_gain(jpeg_path, model.manifest.input.size, args.repeat)
    print(f"1080p JPEG -> {model.manifest.input.size[0]} px: full decode {full_ms:.2f} ms, draft {draft_ms:.2f} ms, "
          f"{full_ms / draft_ms:.1f}x cheaper")
    print(f"test-time augmentation (the bundle says tta {model.manifest.input.tta}):")
    print(f"{'tta':>4} {'ms/tile (batch ' + str(tiled.batch_size) + ')':>20} {'ratio':>6} {'576 px scene, whole':>20} {'ratio':>6}")
    for c in tta_costs(model, scene_path, tiled, args.repeat):
        print(f"{c['tta']:>4} {c['ms_per_tile']:>17.3f} ms {c['tile_ratio']:>6.2f} {c['frame_ms']:>17.2f} ms {c['frame_ratio']:>6.2f}")
    return 0


def tta_costs(model: Model, path: Path, options: ClassifyOptions, repeat: int) -> list[dict]:
    """ms per tile through predict_tiles and ms per frame through the whole classify path, per TTA option."""
    tiles = prepare(model, path, options)[: options.batch_size]
    rows = []
    for tta in (1, 2, 4, 8):
        per_tile = median_ms(lambda: predict_tiles(model, tiles, tta), repeat) / len(tiles)
        opts = replace(options, tta=tta)
        frame = median_ms(lambda: classify_path(model, path, opts, "bench"), max(3, repeat // 3))
        rows.append({"tta": tta, "ms_per_tile": per_tile, "frame_ms": frame})
    for row in rows:
        row["tile_ratio"], row["frame_ratio"] = row["ms_per_tile"] / rows[0]["ms_per_tile"], row["frame_ms"] / rows[0]["frame_ms"]
    return rows


if __name__ == "__main__":
    sys.exit(main())
