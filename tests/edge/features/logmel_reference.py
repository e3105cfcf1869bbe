"""Reference log-mel with tf.signal, run in its own process (the test process must not import TensorFlow).

    python logmel_reference.py SPEC.json SIGNALS.npz OUT.npz
SIGNALS.npz holds 1-D float32 arrays; OUT.npz gets the log-mel of each under the same name."""

import json
import sys

import numpy as np
import tensorflow as tf

spec = json.load(open(sys.argv[1]))
signals = np.load(sys.argv[2])
mel = tf.signal.linear_to_mel_weight_matrix(
    num_mel_bins=spec["n_mels"], num_spectrogram_bins=spec["n_fft"] // 2 + 1, sample_rate=spec["sample_rate"],
    lower_edge_hertz=spec["fmin"], upper_edge_hertz=spec["fmax"], dtype=tf.float64)
out = {}
for name in signals.files:
    x = tf.constant(signals[name], dtype=tf.float64)
    stft = tf.signal.stft(x, frame_length=spec["win_length"], frame_step=spec["hop_length"], fft_length=spec["n_fft"],
                          window_fn=tf.signal.hann_window, pad_end=False)
    power = tf.math.real(stft * tf.math.conj(stft))
    out[name] = np.log(np.maximum(tf.matmul(power, mel).numpy(), spec["log_floor"]))
out["mel_matrix"] = mel.numpy()
np.savez(sys.argv[3], **out)
