"""The simple baseline every sound model is reported beside: a logistic regression on each window's
per-band log-mel mean and standard deviation over time (2 x n_mels numbers: spectral shape and how
steady each band is), trained and scored on the same windows as the real model."""

from __future__ import annotations

import numpy as np


def band_stats(features: np.ndarray) -> np.ndarray:
    """(W, frames, n_mels) log-mel -> (W, 2 * n_mels)."""
    return np.concatenate([features.mean(1), features.std(1)], axis=1)


def band_stats_baseline(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                        labels: tuple[str, ...], class_weights: dict[int, float], seed: int = 0, epochs: int = 100) -> np.ndarray:
    """Test scores (W, labels) of the baseline."""
    import keras

    keras.utils.set_random_seed(seed)
    a, b = band_stats(train_x), band_stats(test_x)
    mean, std = a.mean(0), a.std(0) + 1e-6
    head = keras.Sequential([
        keras.Input((a.shape[1],)),
        keras.layers.Dense(len(labels), activation="softmax", kernel_regularizer=keras.regularizers.l2(1e-3)),
    ])
    head.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    head.fit((a - mean) / std, train_y, epochs=epochs, batch_size=256, class_weight=class_weights, verbose=0)
    return head.predict((b - mean) / std, verbose=0)
