"""Interpreter backends: LiteRT and tflite-runtime 2.14, on float32, int8 and uint8 models."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from build_models import SIZE, tiny_manifest
from imagefiles import GREEN, RED

from edge.features.pixels import normalise
from edge.model.bundle import read_bundle, write_bundle
from edge.model.interpreter import BackendError, Runner, TensorInfo, available_backends, dequantize, quantize
from edge.model.loaded import load_model

BACKENDS = ["litert", "tflite-runtime"]
DTYPES = ["float32", "int8", "uint8"]


def _expected_mining(colour) -> float:
    """The tiny model's answer, computed independently of any interpreter."""
    r, g, _ = ((np.asarray(colour, np.float64) - 127.5) / 127.5)
    logit = 4.0 * (r - g)
    return float(np.exp(logit / 2) / (np.exp(logit / 2) + np.exp(-logit / 2)))


def test_both_backends_are_installed_for_the_tests():
    # `make test` installs both; a silently missing one would leave half the matrix untested.
    assert set(BACKENDS) <= set(available_backends())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backend_gives_the_known_answer(tiny_models, backend, dtype):
    model = load_model(tiny_models[dtype], backend=backend, num_threads=1)
    assert model.runner.backend == backend
    assert model.runner.input.dtype == dtype
    colours = [RED, GREEN, (128, 128, 128), (200, 120, 90)]
    pixels = np.stack([np.full((SIZE, SIZE, 3), c, np.uint8) for c in colours])
    scores = model.predict(pixels)
    assert scores.shape == (4, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=0.02)
    want = np.array([_expected_mining(c) for c in colours])
    tolerance = 1e-4 if dtype == "float32" else 0.03  # int8 output steps are 1/256
    np.testing.assert_allclose(scores[:, 0], want, atol=tolerance)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_size_changes_between_calls(tiny_int8, backend):
    model = load_model(tiny_int8, backend=backend)
    rng = np.random.default_rng(1)
    one = rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    many = np.concatenate([one, rng.integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)])
    a = model.predict(one)
    b = model.predict(many)
    c = model.predict(one)
    assert b.shape == (7, 2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a, c)


def test_backends_agree_on_int8_within_two_output_steps(tiny_int8):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    litert = load_model(tiny_int8, backend="litert").predict(pixels)
    legacy = load_model(tiny_int8, backend="tflite-runtime").predict(pixels)
    # XNNPACK (LiteRT) and the reference kernels (tflite-runtime) round differently: measured up to 2 steps.
    np.testing.assert_allclose(litert, legacy, atol=2 / 256 + 1e-6)


def test_quantization_uses_the_tensors_own_parameters(tiny_models):
    runner_int8 = Runner(read_bundle(tiny_models["int8"]).model_bytes)
    runner_uint8 = Runner(read_bundle(tiny_models["uint8"]).model_bytes)
    # Same float ranges, different zero points: the converter chose these, we must not assume them.
    assert runner_int8.input.zero_point != runner_uint8.input.zero_point
    for info in (runner_int8.input, runner_uint8.input):
        values = np.array([-1.0, 0.0, 1.0], np.float32)
        q = quantize(values, info)
        assert q.dtype == np.dtype(info.dtype)
        np.testing.assert_allclose(dequantize(q, info), values, atol=info.scale)


def test_quantize_clips_to_the_type_range():
    info = TensorInfo(index=0, shape=(1,), dtype="int8", scale=0.1, zero_point=0)
    q = quantize(np.array([100.0, -100.0, 0.04, 0.06], np.float32), info)
    assert q.tolist() == [127, -128, 0, 1]


def test_float_tensor_passes_through():
    info = TensorInfo(index=0, shape=(1,), dtype="float32", scale=0.0, zero_point=0)
    values = np.array([0.5, -2.0], np.float32)
    np.testing.assert_array_equal(quantize(values, info), values)
    assert dequantize(values, info).dtype == np.float32


def test_unknown_backend_is_named():
    with pytest.raises(BackendError, match="unknown backend 'coral'"):
        Runner(b"", backend="coral")


def test_garbage_model_bytes_give_a_clear_error():
    with pytest.raises(BackendError, match="cannot open the model"):
        Runner(b"definitely not a flatbuffer" * 20, backend="litert")


def test_normalisation_matches_manifest(tiny_int8):
    spec = read_bundle(tiny_int8).manifest.input
    out = normalise(np.array([[0, 127, 255]], np.uint8).reshape(1, 1, 3), spec)
    np.testing.assert_allclose(out.ravel(), [-1.0, -0.5 / 127.5, 1.0], atol=1e-6)


@pytest.mark.parametrize("mean", [(127.5, 127.5, 127.5), (100.0, 127.5, 150.0)])
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_pixel_lookup_table_equals_normalise_then_quantize(tiny_models, tmp_path, mean, dtype):
    path = tmp_path / "m.nvm"
    manifest = tiny_manifest("m", dtype)
    write_bundle(path, read_bundle(tiny_models[dtype]).model_bytes, replace(manifest, input=replace(manifest.input, mean=mean)))
    model = load_model(path)
    pixels = np.random.default_rng(5).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    fast = model.predict(pixels)
    slow = model.runner.run(normalise(pixels, model.manifest.input))
    np.testing.assert_array_equal(fast, slow)
    assert (model._table.ndim == 1) == (len(set(mean)) == 1)
