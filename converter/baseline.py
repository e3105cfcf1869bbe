"""The simple baseline every model is reported beside: a logistic regression (a softmax layer) on the
frozen backbone's pooled features, trained on the same training split and scored on the same test
split as the real model. If fine-tuning does not clearly beat this, it is not worth shipping."""

from __future__ import annotations

import numpy as np

from converter.metrics import summary
from edge.features.pixels import InputSpec, normalise


def linear_probe(
    weights: str | None,
    alpha: float,
    spec: InputSpec,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    labels: tuple[str, ...],
    class_weights: dict[int, float],
    seed: int = 0,
    epochs: int = 60,
) -> dict:
    """Test metrics of the baseline. `train`/`test` are (uint8 pixels, label indices)."""
    import keras

    keras.utils.set_random_seed(seed)
    size = spec.size[0]
    backbone = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=weights, pooling="avg"
    )
    features = {name: backbone.predict(normalise(px, spec), batch_size=128, verbose=0) for name, (px, _) in (("train", train), ("test", test))}
    head = keras.Sequential([
        keras.Input((features["train"].shape[1],)),
        keras.layers.Dense(len(labels), activation="softmax", kernel_regularizer=keras.regularizers.l2(1e-3)),
    ])
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    head.fit(features["train"], train[1], epochs=epochs, batch_size=256, class_weight=class_weights, verbose=0)
    result = summary(test[1], head.predict(features["test"], verbose=0), labels)
    result["what"] = "logistic regression on the frozen backbone's pooled features (float)"
    return result
