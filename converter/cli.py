"""`nv-convert`: check a dataset, or train, quantize and verify a model and write its bundle.

    nv-convert check DIR                  leakage and balance report, no training
    nv-convert image DIR --out models/NAME/NAME.nvm --weights PATH|none [...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from converter.dataset import DatasetError, label_counts, load_dataset

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
    return parser


def cmd_check(args) -> int:
    ds = load_dataset(args.data, max_distance=args.max_distance)
    merged = ds.merged_groups()
    across = {g: m for g, m in merged.items() if len({s.label for s in m}) > 1}
    report = {
        "pictures": len(ds.samples),
        "labels": label_counts(ds.samples, ds.labels),
        "groups": len(ds.groups()),
        "merged_groups": len(merged),
        "merged_groups_across_labels": len(across),
        "merges_by_reason": dict(ds.merges),
        "too_flat_to_hash": ds.flat,
        "sizes": {f"{w}x{h}": n for (w, h), n in ds.sizes.most_common(10)},
        "unreadable": [{"path": str(p), "error": e} for p, e in ds.unreadable],
        "duplicates": [
            {"group": g, "labels": sorted({s.label for s in m}), "files": [str(s.path.relative_to(ds.root) if s.path.is_relative_to(ds.root) else s.path) for s in m][:12], "size": len(m)}
            for g, m in sorted(merged.items(), key=lambda kv: (-len({s.label for s in kv[1]}), -len(kv[1])))
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    total = len(ds.samples)
    print(f"{args.data}: {total} pictures in {report['groups']} groups, {len(ds.unreadable)} unreadable")
    print("class balance: " + ", ".join(f"{k} {v} ({100 * v / total:.1f} %)" for k, v in report["labels"].items()))
    print(f"duplicate groups: {len(merged)} ({len(across)} across labels); merges: "
          + (", ".join(f"{k} {v}" for k, v in ds.merges.items()) or "none"))
    print(f"too flat to hash (checked for identical copies only): {ds.flat}")
    for d in report["duplicates"][:30]:
        flag = "ACROSS LABELS " if len(d["labels"]) > 1 else ""
        print(f"  {flag}{d['size']} pictures ({', '.join(d['labels'])}): {', '.join(d['files'][:4])}{' …' if d['size'] > 4 else ''}")
    for u in report["unreadable"]:
        print(f"  unreadable: {u['path']}: {u['error']}")
    return 0


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


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"check": cmd_check, "image": cmd_image}[args.command](args)
    except (DatasetError, UsageError, ValueError) as exc:
        print(f"nv-convert: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
