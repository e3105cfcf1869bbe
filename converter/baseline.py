"""Baseline image model: a frozen MobileNetV2 backbone with a logistic head, quantized to int8.

This is the "simple baseline" the real converter must beat, and, until that converter trains the
fine-tuned model, the shipped placeholder. It reads the edge's own preprocessing (`edge.image`) so
the numbers hold on the device. The split keeps each `group` whole.

    python -m converter.baseline --data ../shared/data/images \
        --weights ../shared/data/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5 \
        --out models/mining-s2.nvm
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge import __version__
from edge.bundle import InputSpec, Manifest, TrainedOn, read_bundle, write_bundle
from edge.image import normalise, open_frame, prepare_tile
from edge.interpreter import Runner

SIZE = 96
LABELS = ("mining", "not_mining")


def split_of(group: str, seed: int, test_fraction: float) -> str:
    """Deterministic grouped split: a group's split depends only on its name and the seed."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def load_tiles(root: Path, spec: InputSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with open(root / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pixels = np.empty((len(rows), spec.size[1], spec.size[0], 3), np.uint8)
    for i, row in enumerate(rows):
        pixels[i] = prepare_tile(open_frame(root / row["path"]).image, spec)
    labels = np.array([LABELS.index(row["label"]) for row in rows])
    return pixels, labels, [row["group"] for row in rows]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    recalls = [np.mean(y_pred[y_true == k] == k) for k in np.unique(y_true)]
    return float(np.mean(recalls))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with index.csv (path,label,group)")
    parser.add_argument("--weights", type=Path, required=True, help="MobileNetV2 alpha 1.0 no-top .h5 file")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rep-samples", type=int, default=1000, help="representative inputs for int8 calibration")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(args.seed)
    spec = InputSpec(size=(SIZE, SIZE), dtype="int8")
    t0 = time.time()
    pixels, y, groups = load_tiles(args.data, spec)
    split = np.array([split_of(g, args.seed, args.test_fraction) for g in groups])
    train, test = split == "train", split == "test"
    print(f"{len(y)} tiles, train {train.sum()} / test {test.sum()} (groups kept whole), loaded in {time.time() - t0:.0f}s")

    x = normalise(pixels, spec)
    backbone = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=1.0, include_top=False, weights=str(args.weights), pooling="avg"
    )
    backbone.trainable = False
    t0 = time.time()
    features = backbone.predict(x, batch_size=128, verbose=0)
    print(f"backbone features {features.shape} in {time.time() - t0:.0f}s")

    counts = np.bincount(y[train], minlength=2)
    class_weight = {k: len(y[train]) / (2.0 * counts[k]) for k in range(2)}
    head = keras.Sequential([keras.Input((features.shape[1],)), keras.layers.Dense(2, activation="softmax", kernel_regularizer=keras.regularizers.l2(1e-3))])
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    head.fit(features[train], y[train], epochs=args.epochs, batch_size=256, class_weight=class_weight, verbose=0)
    keras_pred = head.predict(features[test], verbose=0).argmax(1)
    keras_bacc = balanced_accuracy(y[test], keras_pred)

    full = keras.Sequential([keras.Input((SIZE, SIZE, 3)), backbone, head.layers[-1]])
    from converter.quantize import to_tflite

    rng = np.random.default_rng(args.seed)
    rep = x[rng.choice(np.flatnonzero(train), args.rep_samples, replace=False)]
    model_bytes = to_tflite(full, "int8", rep, max_samples=args.rep_samples)
    runner = Runner(model_bytes, backend="litert")
    int8_scores = np.concatenate([runner.run(x[test][i : i + 64]) for i in range(0, int(test.sum()), 64)])
    int8_pred = int8_scores.argmax(1)
    int8_bacc = balanced_accuracy(y[test], int8_pred)
    agreement = float(np.mean(int8_pred == keras_pred))
    print(f"test balanced accuracy: keras float {keras_bacc:.4f}, int8 {int8_bacc:.4f}; agreement {agreement:.4f}")

    metrics = {
        "kind": "baseline: frozen backbone + logistic head (placeholder until the converter fine-tunes)",
        "split": {"train": int(train.sum()), "test": int(test.sum()), "grouped_by": "group", "seed": args.seed},
        "test": {
            "keras": {"balanced_accuracy": round(keras_bacc, 4)},
            "int8": {"balanced_accuracy": round(int8_bacc, 4), "recall_mining": round(float(np.mean(int8_pred[y[test] == 0] == 0)), 4)},
        },
        "agreement": {"int8_vs_keras": round(agreement, 4)},
    }
    manifest = Manifest(
        name="mining-s2",
        version="0.1.0-baseline",
        task="image",
        labels=LABELS,
        alert_labels=("mining",),
        thresholds={"mining": 0.5},
        input=spec,
        trained_on=TrainedOn(
            source="Amazon Mining Watch Sentinel-2 RGB tiles (earthrise-media/mining-detector, MIT); contains modified Copernicus Sentinel data",
            tile_px=48,
            ground_resolution_m=10.0,
            licences=("MIT", "Copernicus Sentinel data licence"),
        ),
        converter_version=__version__,
        min_runtime="0.1.0",
        metrics=metrics,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bundle(args.out, model_bytes, manifest)
    read_bundle(args.out)
    (args.out.with_suffix(".metrics.json")).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out} ({len(model_bytes) / 1e6:.2f} MB model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
