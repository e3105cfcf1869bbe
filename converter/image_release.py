"""Choose an image bundle's operating point on its dataset's seeded split, and release it again.

The bundle's model bytes stay as they are. On the validation split (never on test) it measures, for each
TTA option, what every threshold gives per tile and per synthetic scene (converter.scenes), and takes the
threshold for the target; the test split and test scenes are then scored at that threshold, for the
report. `release` writes the bundle with the chosen threshold and TTA, and the provenance of both, in its
manifest. Runs on the edge runtime only (LiteRT or tflite-runtime, no TensorFlow): the scores are the
unit's own (`edge.image.classify.predict_tiles` and `classify_frame`).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from converter.dataset import Dataset, split
from converter.image_operating_points import Curve, Target, candidates, choose, scene_curve, tile_curve
from converter.scenes import SceneSpec, build_scenes, score_scenes
from converter.train import load_pixels
from edge.decisions.alerts import resolve_thresholds
from edge.decisions.groups import alert_groups, group_scores
from edge.image.classify import DEFAULT_OVERLAP, ClassifyOptions, predict_tiles
from edge.image.decode import open_frame
from edge.model.bundle import Manifest, read_bundle, write_bundle
from edge.model.loaded import Model, load_model


@dataclass(frozen=True)
class ReleaseOptions:
    target: Target = field(default_factory=lambda: Target("max-balanced-accuracy"))
    tta: int = 1  # what the released bundle runs with
    tta_options: tuple[int, ...] = (1, 2, 4, 8)  # measured and reported (tta is always among them)
    scenes: SceneSpec = SceneSpec()
    overlap: float = DEFAULT_OVERLAP  # the unit's tiling of a scene
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)  # the split the model was trained on
    seed: int = 0
    backend: str | None = "litert"
    version: str | None = None  # the released bundle's version; None keeps it


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(bundle: Path, dataset: Dataset, options: ReleaseOptions) -> dict:
    """Tile and scene figures on validation and test for every TTA option, each at the threshold chosen on
    its validation figures; with the bundle's own threshold (no TTA) beside them. Returns the
    `operating_points` section of metrics.json."""
    model = load_model(bundle, backend=options.backend, num_threads=1, task="image")
    manifest = model.manifest
    group, members = _one_group(manifest, bundle)
    gsd = manifest.trained_on.ground_resolution_m
    tile_px = manifest.trained_on.tile_px
    if not gsd or not tile_px:
        raise ValueError(f"{bundle}: the manifest needs trained_on.tile_px and ground_resolution_m for areas")
    ground_m = tile_px * gsd
    parts = split(dataset, options.fractions, options.seed)
    data = {}
    for name in ("val", "test"):
        samples = parts[name]
        is_alert = np.array([s.label in members for s in samples])
        tiles = [open_frame(s.path).image for s in samples]
        data[name] = (load_pixels(samples, replace(manifest.input, tta=1)), is_alert,
                      build_scenes(is_alert, replace(options.scenes, seed=options.scenes.seed + (name == "test"))), tiles)
    thresholds = resolve_thresholds(manifest)
    before = thresholds[group]
    runs = []
    for n in sorted(set(options.tta_options) | {options.tta}):
        scores = {}
        for name, (px, is_alert, scenes, tiles) in data.items():
            started = time.perf_counter()
            tile_scores = _group(predict_tiles_batched(model, px, n), manifest, group, members)
            scene_scores = score_scenes(model, scenes, tiles.__getitem__, group,
                                        ClassifyOptions(thresholds=thresholds, overlap=options.overlap, tta=n, gsd=gsd),
                                        ground_m)
            scores[name] = (tile_scores, scene_scores)
            log(f"tta {n}, {name}: {len(px)} tiles and {len(scenes)} scenes in {time.perf_counter() - started:.0f} s")
        curves = {name: _curves(data[name][1], *scores[name], ground_m) for name in scores}
        chosen, reached = choose(options.target, *curves["val"])
        runs.append({
            "tta": n, "threshold": chosen, "target_reached": reached,  # exact, not rounded: see choose()
            "ms_per_tile": round(ms_per_tile(model, data["val"][0][:16], n), 3),
            **{name: _figures(curves[name], chosen) for name in curves},
            "curves": {name: {"tile": curves[name][0].sampled(), "scene": curves[name][1].sampled()} for name in curves},
            **({"before": {name: _figures(curves[name], before) for name in curves}} if n == 1 else {}),
        })
    spec = options.scenes
    return {
        "group": group, "target": str(options.target), "before": {"threshold": before, "tta": manifest.input.tta},
        "shipped_tta": options.tta, "runs": runs,
        "scenes": {"rows": spec.rows, "cols": spec.cols, "background": spec.background, "with_alert": spec.with_alert,
                   "block_sizes": list(spec.block_sizes), "seed": spec.seed, "overlap": options.overlap,
                   "scene_km2": round(spec.rows * spec.cols * (ground_m / 1000) ** 2, 4), "tile_km2": (ground_m / 1000) ** 2,
                   "grid_tiles": scores["val"][1].grid_tiles},
        "backend": f"{model.runner.backend} {model.runner.backend_version}",
    }


def release(bundle: Path, out: Path, points: dict, options: ReleaseOptions) -> Manifest:
    """Write `out`: the model of `bundle`, its threshold and TTA from `points` (evaluate's), and their provenance."""
    source = read_bundle(bundle)
    m = source.manifest
    run = next(r for r in points["runs"] if r["tta"] == options.tta)
    provenance = {
        "group": points["group"], "threshold": run["threshold"], "tta": options.tta, "target": points["target"],
        "target_reached": run["target_reached"],
        "chosen_on": "validation split (seeded, grouped) and validation scenes; test figures at that threshold",
        "validation": run["val"], "test": run["test"], "scenes": points["scenes"], "previous": points["before"],
    }
    table = {"threshold": run["threshold"], "tta": options.tta, "target": points["target"],
             "target_reached": run["target_reached"]}
    for split in ("val", "test"):
        table |= {f"{split}_{k}": run[split]["tile"][k] for k in ("precision", "recall", "balanced_accuracy")}
        table |= {f"{split}_scene_recall": run[split]["scene"]["scene_recall"],
                  f"{split}_scene_false_alarms_per_100km2": run[split]["scene"]["false_alarms_per_100km2"]}
    metrics = dict(m.metrics, thresholds={points["group"]: table}, operating_point=provenance)
    manifest = replace(m, version=options.version or m.version, input=replace(m.input, tta=options.tta),
                       groups=m.groups or {points["group"]: (points["group"],)},
                       thresholds={points["group"]: run["threshold"]}, metrics=metrics)
    return write_bundle(out, source.model_bytes, manifest)


def predict_tiles_batched(model: Model, pixels: np.ndarray, tta: int, batch: int = 64) -> np.ndarray:
    return np.concatenate([predict_tiles(model, pixels[i:i + batch], tta) for i in range(0, len(pixels), batch)])


def ms_per_tile(model: Model, pixels: np.ndarray, tta: int, repeat: int = 20) -> float:
    """Median time of one batch through predict_tiles, per tile (quantization and the invoke, not decoding)."""
    predict_tiles(model, pixels, tta)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        predict_tiles(model, pixels, tta)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / len(pixels)


def _one_group(manifest: Manifest, bundle: Path) -> tuple[str, tuple[str, ...]]:
    groups = alert_groups(manifest)
    if len(groups) != 1:
        raise ValueError(f"{bundle}: operating points are chosen for one alert group; this model has {len(groups)}")
    (name, members), = groups.items()
    return name, members


def _group(scores: np.ndarray, manifest: Manifest, group: str, members: tuple[str, ...]) -> np.ndarray:
    return group_scores(scores, manifest.labels, {group: members})[:, 0]


def _curves(is_alert, tile_scores, scene_scores, ground_m) -> tuple[Curve, Curve]:
    thresholds = candidates(tile_scores, *scene_scores.tile_scores)
    return (tile_curve(is_alert, tile_scores, thresholds, (ground_m / 1000) ** 2),
            scene_curve(scene_scores, thresholds))


def _figures(curves: tuple[Curve, Curve], threshold: float) -> dict:
    return {"tile": curves[0].at(threshold), "scene": curves[1].at(threshold)}

