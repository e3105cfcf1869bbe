"""`nv-convert`: check a dataset, or train, quantize and verify a model and write its bundle.

    nv-convert check DIR                  leakage and balance report, no training
    nv-convert image DIR --out models/NAME/NAME.nvm --weights PATH|none [...]
    nv-convert audio DIR --labels MAP.toml --out models/NAME/NAME.nvm [...]
    nv-convert calibrate BUNDLE [DIR] [--score-log LOG ...] --out NEW.nvm    a site's thresholds and event rule
    nv-convert operating-point BUNDLE DIR --labels MAP.toml [...]           a made audio bundle's, on its validation split
    nv-convert image-operating-point DIR --bundle B.nvm --out OUT.nvm [--target T] [--tta N]
    nv-convert calibrate-images BUNDLE FOLDER [--out OUT.nvm] [--target T]
    nv-convert tiles-from-ortho ORTHO.tif LABELS.geojson --out DIR [--gsd M --tile-px N] [--background LABEL]
    nv-convert tiles-from-frames FRAMES --out DIR --gsd M [--tile-px N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from converter import image_commands
from converter.audio_dataset import AudioDatasetError
from converter.dataset import BIG_GROUP_SHARE, RULES, DatasetError, big_groups, label_counts, load_dataset, split

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nv-convert", description="Train, quantize and verify NatureVision models.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="report duplicates, class balance and unreadable files, without training")
    c.add_argument("data", type=Path, help="folder of class sub-folders, or with index.csv (path,label[,group])")
    c.add_argument("--max-distance", type=int, default=6, help="perceptual-hash bits within which pictures are near-duplicates")
    c.add_argument("--json", action="store_true", help="print the report as JSON")

    i = sub.add_parser("image", help="train an image model and write a verified int8 bundle")
    i.add_argument("data", type=Path)
    i.add_argument("--out", type=Path, required=True, help="bundle path, e.g. models/mining-s2/mining-s2.nvm; report and metrics.json go beside it")
    i.add_argument("--weights", required=True, help="MobileNetV2 no-top .h5 file (see ../shared/data/weights), or 'none' to train from scratch")
    i.add_argument("--name", help="model name (default: the bundle's file name)")
    i.add_argument("--version", default="1.0.0")
    i.add_argument("--size", type=int, default=96, help="model input in pixels (default 96)")
    i.add_argument("--alpha", type=float, default=1.0, help="MobileNetV2 width (the weights file must match)")
    i.add_argument("--alert", action="append", default=[], metavar="LABEL", help="alert label (repeatable; default: the first of two labels)")
    i.add_argument("--target-precision", type=_fraction, default=0.9, help="alert threshold is chosen on validation for this precision")
    i.add_argument("--max-drop", type=float, default=1.0, help="fail when int8 balanced accuracy is this many points below float (default 1.0)")
    i.add_argument("--rep-samples", type=int, default=500, help="training pictures used to calibrate int8")
    i.add_argument("--head-epochs", type=int, default=4)
    i.add_argument("--fine-epochs", type=int, default=20)
    i.add_argument("--fine-tune-from", default=None, help="first backbone layer to fine-tune (default block_6_expand)")
    i.add_argument("--batch", type=int, default=64)
    i.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the head phase (of all training with --weights none)")
    i.add_argument("--fine-lr", type=float, default=2e-4, help="learning rate of the fine-tuning phase")
    i.add_argument("--cosine", action="store_true", help="decay the fine-tuning learning rate along a cosine (measured: better float, worse int8)")
    i.add_argument("--keep-keras", type=Path, help="also save the float Keras model (.keras) here")
    i.add_argument("--patience", type=int, default=4, help="epochs without validation gain before stopping")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--max-distance", type=int, default=6)
    i.add_argument("--source", default="", help="what the data is, for the manifest")
    i.add_argument("--licence", action="append", default=[], help="licence of the training data (repeatable)")
    i.add_argument("--gsd", type=float, default=None, help="ground resolution of the source pictures, metres per pixel")
    i.add_argument("--tile-px", type=int, default=None, help="tile edge in source pixels (default: the pictures' common size)")
    i.add_argument("--baseline", action="store_true", help="also score a linear probe on the frozen backbone (same split) for the report")

    a = sub.add_parser("audio", help="train a sound model on log-mel windows and write a verified int8 bundle")
    a.add_argument("data", type=Path, help="folder with index.csv (path,class,group[,licence]), or of class sub-folders of WAV/FLAC clips")
    a.add_argument("--out", type=Path, required=True, help="bundle path, e.g. models/mining-audio/mining-audio.nvm")
    a.add_argument("--labels", type=Path, help="class -> label map (TOML, see converter/labelmaps/); default: each class is a label")
    a.add_argument("--alert", action="append", default=[], metavar="LABEL", help="alert label without --labels (repeatable)")
    a.add_argument("--name", help="model name (default: the bundle's file name)")
    a.add_argument("--version", default="1.0.0")
    a.add_argument("--arch", choices=("mobilenet", "cnn"), default="cnn", help="MobileNetV2 (--alpha) or a small CNN (default)")
    a.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width")
    a.add_argument("--weights", help="with --arch mobilenet: a MobileNetV2 no-top .h5 to start from (e.g. ../shared/data/weights/...)")
    a.add_argument("--cut-at", help="with --arch mobilenet: use the backbone only up to this layer (e.g. block_12_add)")
    a.add_argument("--width", type=int, default=24, help="filters of the CNN's first block (doubled per block)")
    a.add_argument("--epochs", type=int, default=40)
    a.add_argument("--batch", type=int, default=64)
    a.add_argument("--lr", type=float, default=2e-3, help="initial learning rate (cosine decay to 0 over --epochs)")
    a.add_argument("--patience", type=int, default=8, help="epochs without validation gain before stopping")
    a.add_argument("--no-augment", action="store_true", help="train without background mixing, gain and masks")
    a.add_argument("--train-hop", type=float, default=0.25, help="seconds between training windows (default 0.25)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--target-precision", type=_fraction, default=0.9, help="alert thresholds are chosen on validation windows for this precision")
    a.add_argument("--max-drop", type=float, default=1.0, help="fail when int8 balanced accuracy is this many points below float (default 1.0)")
    a.add_argument("--rep-samples", type=int, default=300, help="training windows used to calibrate int8")
    a.add_argument("--hold-out-groups", default="", metavar="G,...", help="groups forced into the test split (e.g. those of shipped sample clips)")
    a.add_argument("--source", default="", help="what the data is, for the manifest")
    a.add_argument("--licence", action="append", default=[], help="licence of the data, added to those in index.csv (repeatable)")
    a.add_argument("--baseline", action="store_true", help="also score a logistic regression on per-band log-mel statistics (same split)")
    a.add_argument("--target-fa-per-hour", type=_rate, default=1.0, help="event rule and thresholds are chosen on validation for at most this many false alarms per hour of background (default 1)")
    a.add_argument("--class-weight", type=_label_factor, action="append", default=[], metavar="LABEL=W",
                   help="multiply LABEL's training weight (inverse frequency by default) by W, e.g. background=2 (repeatable)")
    a.add_argument("--label-smoothing", type=_fraction, default=0.0, help="train towards (1 - S) on the label, S spread over all labels (default 0)")
    add_calibration_parsers(sub)
    image_commands.add_parsers(sub)
    return parser


def _label_factor(text: str) -> tuple[str, float]:
    label, sep, factor = text.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = -1.0
    if not sep or not label or not value > 0:
        raise argparse.ArgumentTypeError(f"expected LABEL=W with W > 0, e.g. background=2, got {text}")
    return label, value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of false alarms >= 0, got {text}")
    return int(text)


def _rate(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of false alarms per hour >= 0, got {text}")
    return value


def add_calibration_parsers(sub) -> None:
    k = sub.add_parser("calibrate", help="choose a bundle's thresholds and event rule again on a site's own recordings and score logs")
    k.add_argument("bundle", type=Path)
    k.add_argument("data", type=Path, nargs="?", help="labelled recordings: class sub-folders or index.csv; a class is a label of the bundle or 'background'")
    k.add_argument("--out", type=Path, required=True, help="the new bundle (.nvm)")
    k.add_argument("--score-log", type=Path, action="append", default=[], help="a unit's score log (docs/score-log.md), all background (repeatable)")
    k.add_argument("--labels", type=Path, help="class -> label map (TOML) when the classes are not the bundle's labels")
    k.add_argument("--target-fa-per-hour", type=_rate, default=1.0, help="false alarms per hour of background to aim at (default 1)")
    k.add_argument("--hop", type=float, default=0.5, help="seconds between windows, as the unit runs (default 0.5)")
    k.add_argument("--rms-gate", default="-60", help="dBFS under which windows are not classified, as the unit runs, or 'off' (default -60)")
    o = sub.add_parser("operating-point", help="choose a made audio bundle's groups, event rule and thresholds on the validation split of its data")
    o.add_argument("bundle", type=Path)
    o.add_argument("data", type=Path, help="the data it was trained on")
    o.add_argument("--labels", type=Path, required=True, help="the label map it was trained with ([groups] gives the groups)")
    o.add_argument("--out", type=Path, help="the new bundle (default: BUNDLE itself); metrics.json, report.md and events.png beside it are updated")
    o.add_argument("--hold-out-groups", default="", metavar="G,...", help="as the bundle was made with")
    o.add_argument("--seed", type=int, default=0)
    target = o.add_mutually_exclusive_group()
    target.add_argument("--target-fa-per-hour", type=_rate, default=1.0, help="false alarms per hour of background to aim at, "
                        "raised to 3 false alarms in the validation hours when that is more (the rule of three; default 1)")
    target.add_argument("--max-false-alarms", type=_count, metavar="N", help="at most N false alarms on the validation "
                        "background instead, whatever its hours (2: the exact 95 %% bound for zero, 2.996, rounded down)")
    o.add_argument("--source", default="", help="how the data is named in the manifest")
    o.add_argument("--version", help="the new bundle's version (default: the bundle's)")


def cmd_check(args) -> int:
    ds = load_dataset(args.data, max_distance=args.max_distance)
    merged = ds.merged_groups()
    across = {g: m for g, m in merged.items() if len({s.label for s in m}) > 1}
    big = big_groups(ds)
    side = {s.group: name for name, part in split(ds).items() for s in part} if big else {}  # as `image` splits (seed 0)
    report = {
        "pictures": len(ds.samples),
        "labels": label_counts(ds.samples, ds.labels),
        "groups": len(ds.groups()),
        "merged_groups": len(merged),
        "merged_groups_across_labels": len(across),
        "merges_by_rule": {rule: ds.merges.get(rule, 0) for rule in RULES},
        "named_like_copies_kept_apart": ds.named_apart,
        "too_flat_to_hash": ds.flat,
        "sizes": {f"{w}x{h}": n for (w, h), n in ds.sizes.most_common(10)},
        "unreadable": [{"path": str(p), "error": e} for p, e in ds.unreadable],
        "duplicates": [
            {"group": g, "labels": sorted({s.label for s in m}), "files": [_shown(ds, s.path) for s in m][:12], "size": len(m)}
            for g, m in sorted(merged.items(), key=lambda kv: (-len({s.label for s in kv[1]}), -len(kv[1])))
        ],
        "big_groups": [{"group": g, "label": label, "pictures": n, "of_label": total, "split": side[g],
                        "built_by": "copy rules" if g in merged else "index.csv"} for g, label, n, total in big],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    total = len(ds.samples)
    print(f"{args.data}: {total} pictures in {report['groups']} groups, {len(ds.unreadable)} unreadable")
    print("class balance: " + ", ".join(f"{k} {v} ({100 * v / total:.1f} %)" for k, v in report["labels"].items()))
    print("merges by rule: " + ", ".join(f"{rule} {n}" for rule, n in report["merges_by_rule"].items()))
    print(f"named like copies but kept apart (the pictures differ): {ds.named_apart}")
    print(f"duplicate groups: {len(merged)} ({len(across)} across labels)")
    print(f"too flat to hash (compared only with identical copies and pictures named alike): {ds.flat}")
    for d in report["duplicates"][:30]:
        flag = "ACROSS LABELS " if len(d["labels"]) > 1 else ""
        print(f"  {flag}{d['size']} pictures ({', '.join(d['labels'])}): {', '.join(d['files'][:4])}{' …' if d['size'] > 4 else ''}")
    for u in report["unreadable"]:
        print(f"  unreadable: {u['path']}: {u['error']}")
    for b in report["big_groups"]:
        print(f"WARNING: one group holds {b['pictures']} of the {b['of_label']} {b['label']} pictures "
              f"({100 * b['pictures'] / b['of_label']:.1f} %, more than {100 * BIG_GROUP_SHARE:.0f} %): {b['group']}\n"
              f"  A split keeps a group whole: all {b['pictures']} go to one side (to {b['split']} with seed 0), so the "
              f"{b['label']} shares of train, validation and test are off by up to that many pictures.")
        if b["built_by"] == "index.csv":
            print("  It is one group in index.csv. If its pictures are not all of one place or source, give them smaller "
                  f"groups there; if they are, add {b['label']} pictures of other places.")
        else:
            print("  The copy rules joined them (see merges by rule). If they are different pictures, give them their own "
                  f"groups (index.csv: path,label,group); if they are copies of one picture, {b['label']} has fewer "
                  "distinct pictures than files: add more.")
    return 0


def _shown(ds, path: Path) -> str:
    return str(path.relative_to(ds.root) if path.is_relative_to(ds.root) else path)


def cmd_image(args) -> int:
    from converter.pipeline import ConvertOptions, QuantizationDropError, convert_images
    from converter.report import write_report
    from converter.train import TOP_BLOCKS_FROM, TrainConfig

    weights = None if args.weights.lower() == "none" else args.weights
    if weights is not None and not Path(weights).is_file():
        raise UsageError(f"--weights {weights}: no such file (give a MobileNetV2 no-top .h5, or 'none')")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    dataset = load_dataset(args.data, max_distance=args.max_distance)
    options = ConvertOptions(
        name=args.name or args.out.stem, version=args.version, alert_labels=tuple(args.alert),
        target_precision=args.target_precision, max_drop_pp=args.max_drop, rep_samples=args.rep_samples,
        seed=args.seed, source=args.source, licences=tuple(args.licence), ground_resolution_m=args.gsd, tile_px=args.tile_px,
        keep_keras=args.keep_keras, baseline=args.baseline,
    )
    config = TrainConfig(
        size=args.size, alpha=args.alpha, weights=weights, batch=args.batch, head_epochs=args.head_epochs,
        fine_epochs=args.fine_epochs, patience=args.patience, seed=args.seed, fine_tune_from=args.fine_tune_from or TOP_BLOCKS_FROM,
        head_lr=args.head_lr, fine_lr=args.fine_lr, cosine=args.cosine,
    )
    try:
        result = convert_images(dataset, args.out, options, config)
    except QuantizationDropError as exc:
        print(f"nv-convert: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    command = "nv-convert " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = write_report(result, args.out.parent, command)
    t = result.metrics["test"]
    print(f"test balanced accuracy: keras {t['keras']['balanced_accuracy']:.4f}, float32 {t['float32']['balanced_accuracy']:.4f}, "
          f"int8 {t['int8']['balanced_accuracy']:.4f}; bundle {args.out}; report {report}")
    return 0


def cmd_audio(args) -> int:
    from converter.audio_dataset import identity_map, load_clips, load_label_map
    from converter.audio_pipeline import AudioOptions, convert_audio
    from converter.audio_report import write_attribution, write_audio_report
    from converter.audio_train import AudioTrainConfig
    from converter.pipeline import QuantizationDropError

    if args.labels is not None and args.alert:
        raise UsageError("--alert goes with the identity mapping; with --labels the map's `alert = [...]` says it")
    label_map = load_label_map(args.labels) if args.labels is not None else None
    clips, label_map = load_clips(args.data, label_map)
    if args.labels is None:
        label_map = identity_map([c.cls for c in clips], tuple(args.alert))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = AudioOptions(
        name=args.name or args.out.stem, version=args.version, target_precision=args.target_precision,
        max_drop_pp=args.max_drop, rep_samples=args.rep_samples, seed=args.seed, train_hop_s=args.train_hop,
        hold_out_groups=tuple(g.strip() for g in args.hold_out_groups.split(",") if g.strip()),
        source=args.source, licences=tuple(args.licence), baseline=args.baseline,
        target_fa_per_hour=args.target_fa_per_hour, class_weight_factors=tuple(args.class_weight),
    )
    if args.weights is not None and not Path(args.weights).is_file():
        raise UsageError(f"--weights {args.weights}: no such file (give a MobileNetV2 no-top .h5 whose alpha is --alpha)")
    config = AudioTrainConfig(arch=args.arch, alpha=args.alpha, weights=args.weights, cut_at=args.cut_at, width=args.width,
                              epochs=args.epochs, batch=args.batch, lr=args.lr, patience=args.patience, seed=args.seed, augment=not args.no_augment,
                              label_smoothing=args.label_smoothing)
    try:
        result = convert_audio(clips, label_map, args.out, options, config, root=args.data)
    except QuantizationDropError as exc:
        print(f"nv-convert: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    command = "nv-convert " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = write_audio_report(result, args.out.parent, command)
    write_attribution(args.data, result.parts["train"] + result.parts["val"], args.out.parent)
    t, c = result.metrics["test"], result.metrics["test_clip"]["int8"]
    print(f"test balanced accuracy (windows): keras {t['keras']['balanced_accuracy']:.4f}, float32 {t['float32']['balanced_accuracy']:.4f}, "
          f"int8 {t['int8']['balanced_accuracy']:.4f}; int8 clips {c['labels']['balanced_accuracy']:.4f}, alert vs background "
          f"(clips) {c['binary']['balanced_accuracy']:.4f}; bundle {args.out}; report {report}")
    return 0


def cmd_calibrate(args) -> int:
    from converter.calibration import CalibrationOptions, calibrate

    gate = None if args.rms_gate == "off" else float(args.rms_gate)
    options = CalibrationOptions(out=args.out, labels=args.labels, score_logs=tuple(args.score_log),
                                 target_fa_per_hour=args.target_fa_per_hour, hop_s=args.hop, rms_gate_dbfs=gate)
    return calibrate(args.bundle, args.data, options)


def cmd_operating_point(args) -> int:
    from converter.audio_release import ReleaseOptions, rechoose

    options = ReleaseOptions(labels=args.labels, out=args.out or args.bundle, seed=args.seed, source=args.source,
                             hold_out_groups=tuple(g.strip() for g in args.hold_out_groups.split(",") if g.strip()),
                             target_fa_per_hour=args.target_fa_per_hour, version=args.version,
                             max_false_alarms=args.max_false_alarms)
    events = rechoose(args.bundle, args.data, options)
    t = events["test"]["chosen"]
    print(f"{events['how']}\ntest: event recall {t['event_recall']} ({t['detected']}/{t['machinery_clips']}), "
          f"{t['false_alarms']} false alarms in {t['background_hours']} h ({t['false_alarms_per_hour']} per hour); "
          f"bundle {options.out}")
    return 0


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"check": cmd_check, "image": cmd_image, "audio": cmd_audio, "calibrate": cmd_calibrate,
                "operating-point": cmd_operating_point, **image_commands.COMMANDS}[args.command](args)
    except (DatasetError, AudioDatasetError, UsageError, ValueError, *calibration_errors()) as exc:
        print(f"nv-convert: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def calibration_errors() -> tuple[type[Exception], ...]:
    """What calibrate and operating-point refuse with a message: bad data, a bundle that cannot be used."""
    from converter.audio_scoring import ScoringError
    from converter.calibration import CalibrationError
    from converter.image_calibration import CalibrationError as ImageCalibrationError
    from edge.model.bundle import BundleError

    return (CalibrationError, ImageCalibrationError, ScoringError, BundleError)


if __name__ == "__main__":
    sys.exit(main())
