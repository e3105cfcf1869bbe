"""Field calibration of an image bundle: a site's own labelled frames re-choose its alert thresholds.

    FOLDER/
      mining/        frames (or tiles) that show what must alert: any size, JPEG/PNG/WebP/TIFF
      not_mining/    frames of the site's quiet ground

Each class folder is named by a label of the model or by one of its alert groups (sub-folders are read
too). Every frame is classified exactly as the unit does it (`edge.image.classify.classify_frame`: the
same decoding, tiling at the training scale, batches and TTA), and a frame's score for an alert group
is that of its most alarming tile, the unit's rule. Per alert group, the frames of its folders are
positives, those of the non-alert labels negatives, and the threshold is chosen for the target on these
frame scores (converter.image_operating_points: `max-balanced-accuracy`, `precision=P`, or
`scene-false-alarms=F`, here false alarm frames per 100 km² of the quiet frames, their area from
their size and the model's ground resolution). Only the edge runtime is used (no TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from converter.dataset import class_folder_files
from converter.image_operating_points import Curve, Target, candidates, choose, tile_curve
from edge.decisions.alerts import resolve_thresholds
from edge.decisions.groups import alert_groups, group_scores
from edge.image.classify import DEFAULT_BATCH, DEFAULT_OVERLAP, ClassifyOptions, classify_frame
from edge.image.decode import IMAGE_SUFFIXES, ImageError
from edge.model.bundle import Manifest, read_bundle, write_bundle
from edge.model.loaded import load_model

MIN_FRAMES = 3  # per side of a group: fewer, and a threshold would be chosen on noise


class CalibrationError(ValueError):
    """The folder cannot calibrate the bundle; the message names the folder or file and what to do."""


@dataclass(frozen=True)
class CalibrationOptions:
    target: Target = field(default_factory=lambda: Target("max-balanced-accuracy"))
    backend: str | None = None  # the first edge interpreter that works, as on the unit
    threads: int | None = 1
    tile: int | None = None  # None: the model's training tile; 0: whole frames (as nv-edge classify --tile)
    overlap: float = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH
    min_frames: int = MIN_FRAMES


@dataclass
class CalibrationResult:
    """What `calibrate_images` found. `thresholds` (alert group -> threshold) go into the new bundle with
    `provenance` (`write_calibrated`); `before` and `after` are the site's figures per group at the
    bundle's thresholds and at the new ones: recall, false_alarm_rate, precision, balanced_accuracy
    (per frame), and false_alarms_per_100km2 when the model's ground resolution is known."""

    bundle: Path
    folder: Path
    target: str
    thresholds: dict[str, float]
    previous: dict[str, float]
    reached: dict[str, bool]
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    frames: dict[str, int]  # class folder -> frames classified
    unreadable: list[tuple[Path, str]]
    provenance: dict


def calibrate_images(bundle_path: Path, folder: Path, options: CalibrationOptions | None = None) -> CalibrationResult:
    """Re-choose every alert group's threshold of the image bundle at `bundle_path` for `options.target` on the
    labelled frames in `folder` (see the module's docstring). Raises CalibrationError (folder, labels, too few
    frames) or edge.model.bundle.BundleError (the bundle)."""
    options = options or CalibrationOptions()
    bundle_path, folder = Path(bundle_path), Path(folder)
    model = load_model(bundle_path, backend=options.backend, num_threads=options.threads, task="image")
    manifest = model.manifest
    groups = alert_groups(manifest)
    files = _frames(folder, manifest, groups)
    previous = resolve_thresholds(manifest)
    # A site's labelled frames are taken to be at the model's ground resolution when their files do not say
    # (the areas below assume it too); a file that says another one is resampled to it, as on the unit.
    classify = ClassifyOptions(thresholds=previous, tile=options.tile, overlap=options.overlap,
                               batch_size=options.batch_size, default_gsd=manifest.trained_on.ground_resolution_m)
    scores, areas, classes, unreadable = [], [], [], []
    for path, cls in files:
        try:
            result = classify_frame(model, path, classify)
        except ImageError as exc:
            unreadable.append((path, str(exc)))
            continue
        per_tile = result.tiles.scores.reshape(-1, len(manifest.labels)) if result.tiles else result.scores[None]
        scores.append(group_scores(per_tile, manifest.labels, groups).max(axis=0))
        gsd = manifest.trained_on.ground_resolution_m
        areas.append(result.width * result.height * gsd * gsd / 1e6 if gsd else np.nan)
        classes.append(cls)
    frames = {cls: classes.count(cls) for cls in dict.fromkeys(c for _, c in files)}
    scores, areas, classes = np.array(scores).reshape(len(classes), len(groups)), np.array(areas), np.array(classes)
    thresholds, reached, before, after = {}, {}, {}, {}
    quiet = np.array([_group_of(c, groups) is None for c in classes], dtype=bool)
    for k, (name, members) in enumerate(groups.items()):
        mine = np.array([_group_of(c, groups) == name for c in classes], dtype=bool)
        use = mine | quiet
        if mine.sum() < options.min_frames or quiet.sum() < options.min_frames:
            raise CalibrationError(
                f"{folder}: group {name!r} needs at least {options.min_frames} readable frames that must alert (folders "
                f"{', '.join(sorted({name, *members}))}) and {options.min_frames} of quiet ground (folders of the other "
                f"labels); found {int(mine.sum())} and {int(quiet.sum())}")
        tile, frame = frame_curves(mine[use], scores[use, k], areas[use])
        chosen, reached[name] = choose(options.target, tile, frame)
        thresholds[name] = chosen  # exact: a rounded threshold could pass a score it was chosen below
        before[name] = _figures(tile, frame, previous[name])
        after[name] = _figures(tile, frame, thresholds[name])
    provenance = {
        "chosen_on": f"site calibration: {len(classes)} labelled frames of {folder}", "target": str(options.target),
        "target_reached": reached, "thresholds": thresholds, "previous": previous, "frames": frames,
        "before": before, "after": after, "tta": manifest.input.tta, "model_sha256": manifest.model_sha256,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return CalibrationResult(bundle=bundle_path, folder=folder, target=str(options.target), thresholds=thresholds,
                             previous=previous, reached=reached, before=before, after=after, frames=frames,
                             unreadable=unreadable, provenance=provenance)


def write_calibrated(result: CalibrationResult, out: Path) -> Manifest:
    """The bundle of `result` with its new thresholds and their provenance (manifest `metrics.calibration`);
    the model bytes are the same, so records name the same model sha256."""
    source = read_bundle(result.bundle)
    m = source.manifest
    manifest = replace(m, thresholds={**m.thresholds, **result.thresholds},
                     metrics={**m.metrics, "calibration": result.provenance})
    return write_bundle(Path(out), source.model_bytes, manifest)


def frame_curves(is_alert: np.ndarray, score: np.ndarray, area_km2: np.ndarray) -> tuple[Curve, Curve]:
    """Per-frame figures: the tile figures of converter.image_operating_points on frames, and, for the
    scene-false-alarms target, frame recall and false alarm frames per 100 km² of the quiet frames."""
    thresholds = candidates(score)
    tile = tile_curve(is_alert, score, thresholds, 1.0)
    del tile.figures["false_alarms_per_100km2"]  # a frame is not 1 km²: the per-area figure is the frame curve's
    quiet = np.sort(score[~is_alert])
    alerting = len(quiet) - np.searchsorted(quiet, thresholds, side="left")
    area = float(np.sum(area_km2[~is_alert]))
    per_area = alerting * 100.0 / area if np.isfinite(area) and area > 0 else np.full(len(thresholds), np.nan)
    frame = Curve(thresholds=thresholds, figures={"scene_recall": tile.figures["recall"], "false_alarms_per_100km2": per_area})
    return tile, frame


def _figures(tile: Curve, frame: Curve, threshold: float) -> dict[str, float]:
    figures = tile.at(threshold)
    per_area = frame.at(threshold)["false_alarms_per_100km2"]
    return figures | ({"false_alarms_per_100km2": per_area} if np.isfinite(per_area) else {})


def _frames(folder: Path, manifest: Manifest, groups: dict[str, tuple[str, ...]]) -> list[tuple[Path, str]]:
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: not a folder; give a folder of class sub-folders of frames")
    files = class_folder_files(folder, IMAGE_SUFFIXES)
    known = set(manifest.labels) | set(groups)
    unknown = sorted({p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")} - known)
    if unknown:
        raise CalibrationError(f"{folder}: class folders {unknown} are neither labels nor alert groups of model "
                               f"{manifest.name} ({', '.join(sorted(known))}); rename or remove them")
    if not files:
        raise CalibrationError(f"{folder}: no frames ({'/'.join(IMAGE_SUFFIXES)}) in class sub-folders "
                               f"named {', '.join(sorted(known))}")
    return files


def _group_of(cls: str, groups: dict[str, tuple[str, ...]]) -> str | None:
    """The alert group a class folder belongs to, or None for a label that raises no alert."""
    for name, members in groups.items():
        if cls == name or cls in members:
            return name
    return None
