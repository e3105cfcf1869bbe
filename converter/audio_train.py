"""Sound classifier on log-mel windows, trained from scratch: MobileNetV2 (small alpha) or a small CNN.

Inputs are `edge.features.logmel` windows (frames, n_mels), normalised by `edge.features.logmel.normalise` with the spec's
mean/std, as on the device. Augmentation works on the log-mel power before normalising, in training only:
  - background mixing: a background window of the training split is added in the power domain at a random
    SNR (the field is never quiet; an engine behind rain is still an engine),
  - gain: the same sound nearer or further (a constant in log power),
  - SpecAugment masks: a few frames and a few bands replaced by the window's mean, so that no single
    band or instant decides.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from converter.fitting import Best, History, keep_best, shuffled_feed
from edge.features.logmel import LogMelSpec, normalise

ARCHS = ("mobilenet", "cnn")


@dataclass(frozen=True)
class AudioTrainConfig:
    arch: str = "cnn"
    alpha: float = 0.35  # MobileNetV2 width
    weights: str | None = None  # MobileNetV2 no-top .h5 to start from (alpha must match), None: from scratch
    cut_at: str | None = None  # use MobileNetV2 only up to this layer (e.g. block_12_add): fewer bytes
    width: int = 24  # first CNN layer's filters (doubled per block)
    epochs: int = 40
    batch: int = 64
    lr: float = 2e-3
    patience: int = 8
    dropout: float = 0.3
    seed: int = 0
    augment: bool = True
    mix_p: float = 0.5  # chance of mixing background into a training window
    snr_db: tuple[float, float] = (5.0, 20.0)
    gain_db: float = 6.0  # +- this
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bands: int = 8
    label_smoothing: float = 0.0  # > 0: targets (1 - s) on the label, s spread over all labels


def build_model(input_shape: tuple[int, int, int], n_labels: int, config: AudioTrainConfig):
    import keras

    if config.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {config.arch!r}")
    inputs = keras.Input(input_shape)
    if config.arch == "mobilenet":
        channels = 1 if config.weights is None else 3
        base = keras.applications.MobileNetV2(input_shape=input_shape[:2] + (channels,), alpha=config.alpha,
                                              include_top=False, weights=config.weights)
        if config.cut_at is not None:
            base = keras.Model(base.input, base.get_layer(config.cut_at).output)
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                # Keras' 0.999 needs thousands of steps to settle (see train.py); with picture weights the
                # statistics must move from pictures to spectrograms anyway.
                layer.momentum = 0.9
        # Pretrained weights expect three channels: the one log-mel channel is repeated inside the model,
        # so the device still feeds (frames, n_mels, 1).
        x = base(keras.layers.Concatenate()([inputs] * 3) if channels == 3 else inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = inputs
        # One 3x3 conv per block, pooled after each: about 50 M multiply-adds per window at width 24, so
        # an epoch takes under a minute on two cores.
        for k in range(4):
            x = keras.layers.Conv2D(config.width * 2 ** k, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
            if k < 3:
                x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(config.dropout)(x)
    outputs = keras.layers.Dense(n_labels, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


def augment(batch: np.ndarray, background: np.ndarray, rng: np.random.Generator, config: AudioTrainConfig) -> np.ndarray:
    """Log-mel windows (B, frames, n_mels) -> augmented copies. `background`: log-mel windows to mix in."""
    out = batch.copy()
    for i in range(len(out)):
        x = out[i]
        if len(background) and rng.random() < config.mix_p:
            noise = background[rng.integers(len(background))]
            snr = rng.uniform(*config.snr_db)
            p_signal, p_noise = np.mean(np.exp(x)), np.mean(np.exp(noise))
            k = p_signal / (p_noise * 10 ** (snr / 10))
            x = np.log(np.exp(x) + k * np.exp(noise))
        x = x + rng.uniform(-config.gain_db, config.gain_db) * np.log(10) / 10
        fill = x.mean()
        for _ in range(config.time_masks):
            w = int(rng.integers(0, config.time_mask_frames + 1))
            t0 = int(rng.integers(0, x.shape[0] - w + 1))
            x[t0:t0 + w] = fill
        for _ in range(config.freq_masks):
            w = int(rng.integers(0, config.freq_mask_bands + 1))
            f0 = int(rng.integers(0, x.shape[1] - w + 1))
            x[:, f0:f0 + w] = fill
        out[i] = x
    return out.astype(np.float32)


def train(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    labels: tuple[str, ...],
    spec: LogMelSpec,
    class_weights: dict[int, float],
    config: AudioTrainConfig,
    background: np.ndarray | None = None,
    verbose: int | None = None,
):
    """Log-mel windows in, (keras model with the best validation weights, History) out. Learning rate
    decays along a cosine over `epochs`; training stops after `patience` epochs without validation gain."""
    import keras

    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(spec.input_shape, len(labels), config)
    background = np.zeros((0,) + train_x.shape[1:], np.float32) if background is None else background
    val_in = normalise(val_x, spec)
    weights = np.array([class_weights[k] for k in range(len(labels))], dtype=np.float32)
    verbose = (1 if sys.stderr.isatty() else 2) if verbose is None else verbose

    def make_batch(idx):
        x = augment(train_x[idx], background, rng, config) if config.augment else train_x[idx]
        target = train_y[idx] if not config.label_smoothing else np.eye(len(labels), dtype=np.float32)[train_y[idx]]
        return normalise(x, spec), target, weights[train_y[idx]]

    history = History()
    best = Best()

    start = time.time()
    steps = int(np.ceil(len(train_x) / config.batch)) * config.epochs
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.lr, steps)),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
                  if config.label_smoothing else "sparse_categorical_crossentropy")
    model.fit(shuffled_feed(len(train_x), config.batch, rng, make_batch), epochs=config.epochs, verbose=verbose,
              callbacks=[keep_best(val_in, val_y, labels, history, best, config.patience,
                                   "fine-tune" if config.weights else "scratch")])
    model.set_weights(best.weights)
    history.seconds = time.time() - start
    return model, history
