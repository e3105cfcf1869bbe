"""Build tiny real TFLite models and their bundles for the tests (run in its own process: it
imports TensorFlow, and tflite-runtime breaks in a process that has).

The model is a real conv net with fixed weights whose answer is known: after the edge's
normalisation, p(mining) = softmax(K * (mean R - mean G)). A red tile is "mining", a green tile is
"not_mining", a grey tile is 50/50. That lets the tests check tiling, quantization and decisions
against the truth.

The audio model (task "audio", labels background and engine, alert label engine) is as plain:
after the edge's front end (`edge.features.logmel`, spec AUDIO_SPEC), with d = mean of the low 32 mel bands
minus mean of the high 32 over the whole window, p(engine) = sigmoid(AUDIO_K * d). A low hum is
"engine", hiss (white noise, whose energy the wider high mel bands collect) is "background",
silence is 50/50. `tiny_audio_scores` computes the same thing in numpy.

    python tests/build_models.py OUTDIR   ->  OUTDIR/tiny-{float32,int8,uint8}.nvm
                                              OUTDIR/tiny-audio-{float32,int8}.nvm
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from edge import __version__  # noqa: E402
from edge.features.logmel import LogMelSpec, clip_windows, normalise  # noqa: E402
from edge.features.pixels import InputSpec
from edge.model.bundle import Manifest, TrainedOn, write_bundle  # noqa: E402

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
        # No ground resolution: a "camera model" that takes frames as they are (tests/conftest.py's tiny_scaled
        # is the same model learnt at 10 m/px)
        trained_on=TrainedOn(source="synthetic: red means mining", tile_px=TILE),
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


# -- audio ----------------------------------------------------------------------------------------

AUDIO_SPEC = LogMelSpec(mean=-5.0, std=4.0)  # the default 96 x 64 window; mean/std put log-mel near [-2, 3]
AUDIO_K = 16.0
AUDIO_LABELS = ("background", "engine")
AUDIO_THRESHOLD = 0.6
AUDIO_DTYPES = ("float32", "int8")


def tiny_audio_scores(model_input: np.ndarray) -> np.ndarray:
    """What the tiny audio model answers, in closed form: (N, frames, mels, 1) -> (N, 2)."""
    half = AUDIO_SPEC.n_mels // 2
    d = model_input[:, :, :half, 0].mean(axis=(1, 2)) - model_input[:, :, half:, 0].mean(axis=(1, 2))
    engine = 1.0 / (1.0 + np.exp(-AUDIO_K * d))
    return np.stack([1.0 - engine, engine], axis=1)


def tiny_audio_manifest(name: str, dtype: str) -> Manifest:
    return Manifest(
        name=name,
        version="0.0.1",
        task="audio",
        labels=AUDIO_LABELS,
        alert_labels=("engine",),
        thresholds={"engine": AUDIO_THRESHOLD},
        input=InputSpec(size=(AUDIO_SPEC.n_mels, AUDIO_SPEC.frames), colour="log-mel", dtype=dtype),
        trained_on=TrainedOn(source="synthetic: low bands over high bands means engine"),
        converter_version=__version__,
        min_runtime=__version__,
        audio=AUDIO_SPEC.to_dict(),
        metrics={"note": "fixed weights, not trained"},
    )


def build_audio_keras():
    """A (1 x mels) convolution weighs the bands (+ low, - high) per frame; the mean over frames and
    a softmax of (+z/2, -z/2) give sigmoid(z) with z = K * d."""
    import keras

    frames, mels, _ = AUDIO_SPEC.input_shape
    inp = keras.Input(AUDIO_SPEC.input_shape)
    conv = keras.layers.Conv2D(2, (1, mels), use_bias=False, name="bands")
    x = keras.layers.GlobalAveragePooling2D()(conv(inp))
    out = keras.layers.Softmax()(x)
    model = keras.Model(inp, out)
    half = mels // 2
    sign = np.concatenate([-np.ones(half), np.ones(mels - half)]) / half  # column 0: background
    w = np.stack([sign, -sign], axis=1) * AUDIO_K / 2.0
    conv.set_weights([w.reshape(1, mels, 1, 2).astype(np.float32)])
    return model


def audio_representative() -> np.ndarray:
    """Model inputs the int8 ranges are calibrated on: hum, hiss, silence, mixtures, the sample clips."""
    from audiofiles import SAMPLES, hiss, hum, silence

    from edge.audio.audiofile import read_audio

    clips = [hum(2, amplitude=a) for a in (0.05, 0.3, 0.9)] + [hiss(2, amplitude=a) for a in (0.01, 0.1, 0.5)]
    clips += [silence(1.5), hum(2, amplitude=0.3) + hiss(2, amplitude=0.05)]
    clips += [read_audio(path, AUDIO_SPEC.sample_rate).samples for path in sorted(SAMPLES.glob("*.wav"))]
    windows = [clip_windows(clip, AUDIO_SPEC, 0.5)[0] for clip in clips]
    return normalise(np.concatenate(windows), AUDIO_SPEC)


def rebundle(src: Path, dst: Path, **changes) -> Path:
    """The model of bundle `src` under its manifest with `changes` (groups, event rules, a name...)."""
    from dataclasses import replace

    from edge.model.bundle import read_bundle

    bundle = read_bundle(src)
    write_bundle(dst, bundle.model_bytes, replace(bundle.manifest, **changes))
    return dst


def main(out: Path) -> None:
    from converter.quantize import to_tflite

    out.mkdir(parents=True, exist_ok=True)
    model = build_keras()
    rep = representative()
    for dtype in ("float32", "int8", "uint8"):
        data = to_tflite(model, dtype, None if dtype == "float32" else rep)
        write_bundle(out / f"tiny-{dtype}.nvm", data, tiny_manifest(f"tiny-{dtype}", dtype))
    audio = build_audio_keras()
    audio_rep = audio_representative()
    np.random.default_rng(0).shuffle(audio_rep)  # to_tflite keeps the first 300: a mix of every kind
    for dtype in AUDIO_DTYPES:
        data = to_tflite(audio, dtype, None if dtype == "float32" else audio_rep)
        write_bundle(out / f"tiny-audio-{dtype}.nvm", data, tiny_audio_manifest(f"tiny-audio-{dtype}", dtype))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
