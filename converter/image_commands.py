"""`nv-convert image-operating-point` and `nv-convert calibrate-images`: thresholds (and TTA) of an existing
image bundle, chosen on its dataset's validation split or on a site's own frames. Neither trains nor
imports TensorFlow: both run the unit's code on an edge interpreter. `nv-convert tiles-from-ortho` and
`tiles-from-frames`: training tiles at one ground resolution, of a labelled orthomosaic
(converter/ortho_tiles.py) or of class folders of frames (converter/frame_tiles.py)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from converter.image_operating_points import Target
from converter.scenes import SceneSpec

WHY = {
    "max-balanced-accuracy": "The threshold where per-tile balanced accuracy is highest on validation.",
    "precision": "The most recall at the target precision per tile on validation.",
    "scene-false-alarms": "A frame alerts when any of its tiles does, so the false alarms that reach a person "
                          "are frames: the most scenes found on validation for at most the target's false alarm "
                          "frames per 100 km² of background.",
}


def add_parsers(sub) -> None:
    o = sub.add_parser("image-operating-point", help="choose an image bundle's threshold and TTA on its data's validation split")
    o.add_argument("data", type=Path, help="the dataset the model was trained on (same seed and fractions)")
    o.add_argument("--bundle", type=Path, required=True, help="the image bundle (.nvm); its model bytes are kept")
    o.add_argument("--out", type=Path, required=True, help="the bundle to write; metrics.json and report.md beside it are updated")
    o.add_argument("--target", type=_target, default=Target("max-balanced-accuracy"),
                   help="max-balanced-accuracy (default), precision=P, or scene-false-alarms=F (frames per 100 km²)")
    o.add_argument("--tta", type=int, default=1, choices=(1, 2, 4, 8), help="orientations the released bundle averages per tile")
    o.add_argument("--tta-options", default="1,2,4,8", help="TTA options measured and reported (default 1,2,4,8)")
    o.add_argument("--scenes", type=int, default=150, help="synthetic scenes per kind (with and without mining) and split")
    o.add_argument("--seed", type=int, default=0, help="the split's seed (the model's training seed)")
    o.add_argument("--version", help="the released bundle's version (default: unchanged)")
    o.add_argument("--why", help="why this target, for the report (default: a sentence per target)")
    o.add_argument("--max-distance", type=int, default=6, help="as for nv-convert image: the same groups, the same split")

    c = sub.add_parser("calibrate-images", help="re-choose an image bundle's thresholds on a site's labelled frames")
    c.add_argument("bundle", type=Path)
    c.add_argument("folder", type=Path, help="class sub-folders named by the model's labels or alert groups")
    c.add_argument("--out", type=Path, help="write the calibrated bundle here (default: only print the figures)")
    c.add_argument("--target", type=_target, default=Target("max-balanced-accuracy"),
                   help="max-balanced-accuracy (default), precision=P, or scene-false-alarms=F (frames per 100 km²)")
    c.add_argument("--tile", type=int, help="tile edge in frame pixels; 0 = whole frames; default the model's")
    c.add_argument("--overlap", type=float, default=0.25)
    c.add_argument("--backend", help="force an edge interpreter (litert, tflite-runtime)")

    t = sub.add_parser("tiles-from-ortho", help="cut a labelled orthomosaic into training tiles in class folders with index.csv")
    t.add_argument("ortho", type=Path, help="the orthomosaic (GeoTIFF with its CRS)")
    t.add_argument("labels", type=Path, help="GeoJSON FeatureCollection of polygons with a `label` (or `class`) property, WGS84")
    t.add_argument("--out", type=Path, required=True, help="the dataset folder: OUT/<label>/*.png and OUT/index.csv")
    t.add_argument("--gsd", type=_positive_float, help="ground resolution of the tiles, m/px (default: the ortho's own)")
    t.add_argument("--tile-px", type=_positive_int, default=96, help="tile edge in pixels (default 96)")
    t.add_argument("--min-cover", type=_share, default=0.5, help="share of a tile a label's polygons must cover (default 0.5)")
    t.add_argument("--overlap", type=_overlap, default=0.0, help="fraction of a tile shared with its neighbour (default 0)")
    t.add_argument("--background", metavar="LABEL", help="write tiles outside every polygon with this label (e.g. not_mining)")
    t.add_argument("--max-background", type=_positive_int, help="at most this many background tiles, spread over the ortho")
    t.add_argument("--block-tiles", type=_positive_int, default=8, help="background groups are blocks of N x N tiles (default 8)")
    t.add_argument("--append", action="store_true", help="add to OUT/index.csv (the tiles of another ortho)")

    f = sub.add_parser("tiles-from-frames", help="bring class folders of frames to one ground resolution, cut into tiles with index.csv")
    f.add_argument("frames", type=Path, help="one sub-folder of frames per label (drone photos, GeoTIFFs; any size)")
    f.add_argument("--out", type=Path, required=True, help="the dataset folder: OUT/<label>/*.png and OUT/index.csv")
    f.add_argument("--gsd", type=_positive_float, required=True, help="ground resolution of the tiles, m/px")
    f.add_argument("--tile-px", type=_positive_int, default=96, help="tile edge in pixels (default 96)")
    f.add_argument("--overlap", type=_overlap, default=0.0, help="fraction of a tile shared with its neighbour (default 0)")
    f.add_argument("--frame-gsd", type=_positive_float, metavar="M",
                   help="m/px of frames that do not say their own (no geotransform, no drone EXIF/XMP)")


def cmd_operating_point(args) -> int:
    from converter.dataset import load_dataset
    from converter.image_release import ReleaseOptions, evaluate, release
    from converter.operating_report import plot_operating_points, update_report

    options = ReleaseOptions(target=args.target, tta=args.tta, tta_options=_ints(args.tta_options, "--tta-options"),
                             scenes=SceneSpec(background=args.scenes, with_alert=args.scenes), seed=args.seed,
                             version=args.version)
    dataset = load_dataset(args.data, max_distance=args.max_distance)
    points = evaluate(args.bundle, dataset, options)
    manifest = release(args.bundle, args.out, points, options)
    folder = args.out.parent
    source = folder / "metrics.json" if (folder / "metrics.json").is_file() else args.bundle.parent / "metrics.json"
    metrics = json.loads(source.read_text()) if source.is_file() else {}
    metrics["thresholds"] = manifest.metrics["thresholds"]
    metrics["operating_points"] = points
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    plot_operating_points(points, folder / "operating_points.png")
    why = args.why or WHY[args.target.kind]
    command = "nv-convert " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    update_report(folder / "report.md", points, why, title=f"Model report: {manifest.name} {manifest.version}", command=command)
    chosen = next(r for r in points["runs"] if r["tta"] == args.tta)
    for run in points["runs"]:
        t = run["test"]
        print(f"tta {run['tta']}: threshold {run['threshold']:.4f}, {run['ms_per_tile']:.2f} ms/tile; test tile balanced "
              f"accuracy {t['tile']['balanced_accuracy']:.4f}, scenes found {t['scene']['scene_recall']:.3f}, false alarm "
              f"frames/100 km² {t['scene']['false_alarms_per_100km2']:.2f}")
    print(f"wrote {args.out} (threshold {chosen['threshold']:.4f}, tta {args.tta}), {folder / 'metrics.json'}, {folder / 'report.md'}")
    return 0


def cmd_calibrate_images(args) -> int:
    from converter.image_calibration import CalibrationOptions, calibrate_images, write_calibrated

    options = replace(CalibrationOptions(target=args.target), tile=args.tile, overlap=args.overlap, backend=args.backend)
    result = calibrate_images(args.bundle, args.folder, options)
    for path, why in result.unreadable:
        print(f"nv-convert: skipped {path}: {why}", file=sys.stderr)
    print(json.dumps({"thresholds": result.thresholds, "previous": result.previous, "reached": result.reached,
                      "before": result.before, "after": result.after, "frames": result.frames}, indent=2))
    if args.out is not None:
        write_calibrated(result, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_tiles_from_ortho(args) -> int:
    from converter.ortho_tiles import CutOptions, cut_tiles
    from edge.survey.raster import SurveyError

    options = CutOptions(gsd_m=args.gsd, tile_px=args.tile_px, min_cover=args.min_cover, overlap=args.overlap,
                         background=args.background, max_background=args.max_background, block_tiles=args.block_tiles,
                         append=args.append)
    try:
        result = cut_tiles(args.ortho, args.labels, args.out, options)
    except SurveyError as exc:
        raise ValueError(str(exc)) from None
    (w, h), counts = result.window_px, result.counts
    print(f"{args.ortho}: {len(result.tiles)} tiles of {result.tile_px} px at {result.gsd_m:g} m/px ({w} x {h} ortho px "
          f"each) in {args.out}: " + ", ".join(f"{label} {n}" for label, n in sorted(counts.items())))
    for why, n in result.skipped.items():
        if n:
            print(f"  left out: {n} {why}")
    print(f"next: nv-convert check {args.out}; then nv-convert image {args.out} --gsd {result.gsd_m:g} "
          f"--tile-px {result.tile_px} --out models/NAME/NAME.nvm --weights PATH|none")
    return 0


def cmd_tiles_from_frames(args) -> int:
    from converter.frame_tiles import FrameCutOptions, cut_frames

    options = FrameCutOptions(gsd_m=args.gsd, tile_px=args.tile_px, overlap=args.overlap, frame_gsd_m=args.frame_gsd)
    result = cut_frames(args.frames, args.out, options)
    for path, why in result.left_out:
        print(f"nv-convert: left out {path}: {why}", file=sys.stderr)
    print(f"{args.frames}: {sum(result.tiles.values())} tiles of {args.tile_px} px at {args.gsd:g} m/px from {result.frames} "
          f"frames in {args.out}: " + ", ".join(f"{label} {n}" for label, n in sorted(result.tiles.items())))
    print(f"next: nv-convert check {args.out}; then nv-convert image {args.out} --gsd {args.gsd:g} "
          f"--tile-px {args.tile_px} --out models/NAME/NAME.nvm --weights PATH|none")
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share above 0 and at most 1, got {text}")
    return value


def _overlap(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 0.9:
        raise argparse.ArgumentTypeError(f"expected an overlap from 0 to 0.9, got {text}")
    return value


def _bundle_errors_are_usage_errors(command):
    """A bundle that cannot be used is the caller's to fix (exit 2 with the message), as for nv-edge."""
    def run(args) -> int:
        from edge.model.bundle import BundleError

        try:
            return command(args)
        except BundleError as exc:
            raise ValueError(str(exc)) from None
    return run


COMMANDS = {"image-operating-point": _bundle_errors_are_usage_errors(cmd_operating_point),
            "calibrate-images": _bundle_errors_are_usage_errors(cmd_calibrate_images),
            "tiles-from-ortho": cmd_tiles_from_ortho, "tiles-from-frames": cmd_tiles_from_frames}


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{flag}: expected numbers separated by commas, got {text!r}") from None
