"""Transfer learning: MobileNetV2 on the edge's own preprocessing, two phases, early stopping.

Pixels are made by `edge.image` (decode, resize) and normalised by `edge.image.normalise`, the
same code the device runs. Augmentation works on the uint8 pixels before that, and only in training.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from converter.dataset import Sample
from converter.fitting import Best, History, keep_best, shuffled_feed
from edge.features.pixels import InputSpec, normalise, prepare_tile
from edge.image.decode import open_frame

TOP_BLOCKS_FROM = "block_6_expand"  # phase 2 trains from here up: measured better than block_13 for accuracy and int8 (README)


@dataclass(frozen=True)
class TrainConfig:
    size: int = 96
    alpha: float = 1.0
    weights: str | None = None  # path to a no-top .h5, or None for random initialisation
    batch: int = 64
    head_epochs: int = 4
    fine_epochs: int = 20
    head_lr: float = 1e-3
    fine_lr: float = 2e-4
    patience: int = 4
    dropout: float = 0.2
    fine_tune_from: str = TOP_BLOCKS_FROM
    seed: int = 0
    augment: bool = True
    # Decay the fine-tuning learning rate to 0 along a cosine. Off by default: on the Sentinel-2 tiles it
    # gave a better float model (0.914) that lost 1.8 pp in int8, against 0.907 / -0.7 pp without.
    cosine: bool = False


def load_pixels(samples: list[Sample], spec: InputSpec) -> np.ndarray:
    """Every picture as the model sees it: uint8 (N, H, W, 3)."""
    out = np.empty((len(samples), spec.size[1], spec.size[0], 3), dtype=np.uint8)
    for i, s in enumerate(samples):
        out[i] = prepare_tile(open_frame(s.path).image, spec)
    return out


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Overhead imagery has no 'up': flips and 90-degree turns are free. Brightness/contrast
    cover haze and sensor differences; a small zoom covers scale jitter (about +-15 %)."""
    out = np.empty_like(batch)
    h, w = batch.shape[1:3]
    for i, img in enumerate(batch):
        if rng.random() < 0.5:
            img = img[:, ::-1]
        if rng.random() < 0.5:
            img = img[::-1]
        if h == w:
            img = np.rot90(img, int(rng.integers(4)))
        zoom = rng.uniform(0.85, 1.0)
        if zoom < 0.99:
            ch, cw = int(round(h * zoom)), int(round(w * zoom))
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crop = Image.fromarray(np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw]))
            img = np.asarray(crop.resize((w, h), Image.Resampling.BILINEAR))
        x = img.astype(np.float32)
        contrast = rng.uniform(0.8, 1.2)
        brightness = rng.uniform(-20, 20)
        mean = x.mean()
        out[i] = np.clip((x - mean) * contrast + mean + brightness, 0, 255).astype(np.uint8)
    return out


def build_model(n_labels: int, config: TrainConfig):
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=(config.size, config.size, 3),
        alpha=config.alpha,
        include_top=False,
        weights=config.weights,  # a local file or None: never the network
        pooling="avg",
    )
    inputs = keras.Input((config.size, config.size, 3))
    x = base(inputs)
    x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(n_labels, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs), base


def _set_trainable(base, from_layer: str | None, freeze_bn: bool = True) -> None:
    """None freezes the whole backbone; a layer name unfreezes from it upwards. When fine-tuning
    pretrained weights BatchNorm stays frozen: small batches on a small dataset would wreck its
    statistics. From scratch it must learn them."""
    import keras

    names = [layer.name for layer in base.layers]
    start = len(names) if from_layer is None else names.index(from_layer)
    base.trainable = True
    for k, layer in enumerate(base.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = k >= start and not (is_bn and freeze_bn)


def train(
    train_px: np.ndarray,
    train_y: np.ndarray,
    val_px: np.ndarray,
    val_y: np.ndarray,
    labels: tuple[str, ...],
    spec: InputSpec,
    class_weights: dict[int, float],
    config: TrainConfig,
    verbose: int | None = None,
):
    """Returns (keras model with the best validation weights, History)."""
    import time

    import keras

    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, base = build_model(len(labels), config)
    val_x = normalise(val_px, spec)
    weights = np.array([class_weights[int(k)] for k in range(len(labels))], dtype=np.float32)
    verbose = (1 if sys.stderr.isatty() else 2) if verbose is None else verbose

    def make_batch(idx):
        px = augment(train_px[idx], rng) if config.augment else train_px[idx]
        return normalise(px, spec), train_y[idx], weights[train_y[idx]]

    history = History()
    best = Best()

    start = time.time()
    phases = []
    if config.weights is not None:
        phases.append(("head", None, config.head_lr, config.head_epochs))
        phases.append(("fine-tune", config.fine_tune_from, config.fine_lr, config.fine_epochs))
    else:  # nothing to transfer: train the whole network
        phases.append(("scratch", base.layers[1].name, config.head_lr, config.head_epochs + config.fine_epochs))
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                # Keras' MobileNetV2 uses momentum 0.999: its moving statistics need thousands of
                # steps to settle, and until then inference-mode outputs are garbage.
                layer.momentum = 0.9
    for name, from_layer, lr, epochs in phases:
        _set_trainable(base, from_layer, freeze_bn=config.weights is not None)
        steps = int(np.ceil(len(train_px) / config.batch)) * epochs
        rate = keras.optimizers.schedules.CosineDecay(lr, steps) if config.cosine and name != "head" else lr
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy")
        if best.weights is not None:
            model.set_weights(best.weights)  # go on from the best so far, not from the last epoch
        model.fit(shuffled_feed(len(train_px), config.batch, rng, make_batch), epochs=epochs, verbose=verbose,
                  callbacks=[keep_best(val_x, val_y, labels, history, best, config.patience, name)])
    model.set_weights(best.weights)
    history.seconds = time.time() - start
    return model, history
