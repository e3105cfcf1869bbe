"""Keras model -> TFLite bytes: float32, or full-integer (int8/uint8) with a representative dataset.

Only full-integer and float32 models are made: a dynamic-range model from current TensorFlow uses
op versions (FULLY_CONNECTED v12) that tflite-runtime 2.14 cannot load.
"""

from __future__ import annotations

import numpy as np

QUANTIZATIONS = ("int8", "uint8", "float32")


def to_tflite(keras_model, quantization: str, representative: np.ndarray | None = None, max_samples: int = 300) -> bytes:
    """`representative`: normalised float inputs (N, H, W, C) drawn from the training split."""
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if quantization != "float32":
        if representative is None or len(representative) == 0:
            raise ValueError("full-integer quantization needs a representative dataset (a few hundred training inputs)")
        samples = np.asarray(representative[:max_samples], dtype=np.float32)

        def feed():
            for sample in samples:
                yield [sample[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = feed
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, quantization)
        converter.inference_output_type = getattr(tf, quantization)
    return converter.convert()
