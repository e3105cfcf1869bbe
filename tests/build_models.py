"""Build tiny real TFLite models and their bundles for the tests (run in its own process: it
imports TensorFlow, and tflite-runtime breaks in a process that has).

The model is a real conv net with fixed weights whose answer is known: after the edge's
normalisation, p(mining) = softmax(K * (mean R - mean G)). A red tile is "mining", a green tile is
"not_mining", a grey tile is 50/50. That lets the tests check tiling, quantization and decisions
against the truth.

    python tests/build_models.py OUTDIR   ->  OUTDIR/tiny-{float32,int8,uint8}.nvm
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from edge import __version__  # noqa: E402
from edge.bundle import InputSpec, Manifest, TrainedOn, write_bundle  # noqa: E402

SIZE = 32  # model input, pixels
TILE = 16  # training tile in source pixels: tiles are upscaled 2x like the real model's
K = 4.0


def tiny_manifest(name: str, dtype: str) -> Manifest:
    return Manifest(
        name=name,
        version="0.0.1",
        task="image",
        labels=("mining", "not_mining"),
        alert_labels=("mining",),
        thresholds={"mining": 0.6},
        input=InputSpec(size=(SIZE, SIZE), dtype=dtype),
        trained_on=TrainedOn(source="synthetic: red means mining", tile_px=TILE, ground_resolution_m=10.0),
        converter_version=__version__,
        min_runtime=__version__,
        metrics={"note": "fixed weights, not trained"},
    )


def build_keras():
    import keras

    inp = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="identity")
    x = conv(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax", name="head")
    out = dense(x)
    model = keras.Model(inp, out)
    conv.set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    w = np.array([[K, -K], [-K, K], [0.0, 0.0]], dtype=np.float32) / 2.0
    dense.set_weights([w, np.zeros(2, np.float32)])
    return model


def representative() -> np.ndarray:
    rng = np.random.default_rng(0)
    solid = [np.full((SIZE, SIZE, 3), c, np.float32) for c in ([1, -1, -1], [-1, 1, -1], [0, 0, 0], [1, 1, 1], [-1, -1, -1])]
    noise = rng.uniform(-1, 1, (60, SIZE, SIZE, 3)).astype(np.float32)
    return np.concatenate([np.stack(solid), noise])


def main(out: Path) -> None:
    from converter.quantize import to_tflite

    out.mkdir(parents=True, exist_ok=True)
    model = build_keras()
    rep = representative()
    for dtype in ("float32", "int8", "uint8"):
        data = to_tflite(model, dtype, None if dtype == "float32" else rep)
        write_bundle(out / f"tiny-{dtype}.nvm", data, tiny_manifest(f"tiny-{dtype}", dtype))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
