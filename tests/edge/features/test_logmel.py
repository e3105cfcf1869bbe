"""The audio front end against tf.signal (an independent implementation), and the resampler against
closed-form signals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.features.logmel import (FRAME_BLOCK, FeatureSpecError, LogMelSpec, Resampler, clip_windows, fit_window,
                                  frame_blocks, hann, log_mel, mel_matrix, normalise, resample, rms_dbfs,
                                  to_mono_float)

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "audio"


def _read_wav16(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Our log-mel and tf.signal's on the same signals: real recordings, noise, a tone, near silence."""
    spec = LogMelSpec()
    rng = np.random.default_rng(7)
    t = np.arange(spec.sample_rate * 2) / spec.sample_rate
    signals = {
        "chainsaw": to_mono_float(_read_wav16(SAMPLES / "chainsaw_169127.wav")),
        "rain": to_mono_float(_read_wav16(SAMPLES / "rain_21189.wav")),
        "noise": (0.1 * rng.standard_normal(t.size)).astype(np.float32),
        "tone": (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32),
        "quiet": (1e-5 * rng.standard_normal(t.size)).astype(np.float32),  # reaches the log floor
    }
    tmp = tmp_path_factory.mktemp("logmel")
    (tmp / "spec.json").write_text(json.dumps(spec.to_dict()))
    np.savez(tmp / "signals.npz", **signals)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("logmel_reference.py")), str(tmp / "spec.json"),
         str(tmp / "signals.npz"), str(tmp / "out.npz")],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return spec, signals, dict(np.load(tmp / "out.npz"))


def test_mel_matrix_is_tf_signal_s(reference):
    spec, _, ref = reference
    np.testing.assert_allclose(mel_matrix(spec), ref["mel_matrix"], atol=1e-6)


@pytest.mark.parametrize("name", ["chainsaw", "rain", "noise", "tone", "quiet"])
def test_log_mel_matches_tf_signal(reference, name):
    """Stated tolerance: 1e-3 in natural-log units (0.1 %) where the power is more than 1000x the floor;
    float32 FFT rounding versus TF's float64 dominates, and bins at the floor match exactly."""
    spec, signals, ref = reference
    ours = log_mel(signals[name], spec)
    assert ours.shape == ref[name].shape
    loud = ref[name] > np.log(spec.log_floor) + np.log(1000.0)
    assert np.abs(ours - ref[name])[loud].max(initial=0) < 1e-3
    assert np.abs(ours - ref[name]).max() < 0.05  # near the floor, relative rounding is larger


def test_windows_are_slices_of_one_stft():
    spec = LogMelSpec()
    x = to_mono_float(_read_wav16(SAMPLES / "composite_rain_chainsaw_rain.wav"))
    windows, places = clip_windows(x, spec, hop_s=0.5)
    assert windows.shape[1:] == (spec.frames, spec.n_mels)
    assert [round(p.offset_s, 2) for p in places[:3]] == [0.0, 0.5, 1.0]
    for w, p in zip(windows, places):
        start = round(p.offset_s * spec.sample_rate)
        np.testing.assert_array_equal(w, log_mel(x[start:start + spec.window_samples], spec))
    # the last window ends at the clip's end
    assert abs(places[-1].offset_s + spec.window_s - x.size / spec.sample_rate) < spec.hop_length / spec.sample_rate


def test_short_clip_is_looped_not_padded_with_silence():
    spec = LogMelSpec()
    burst = (0.3 * np.random.default_rng(1).standard_normal(4000)).astype(np.float32)  # 0.25 s
    looped = fit_window(burst, spec.window_samples)
    assert looped.size == spec.window_samples and np.array_equal(looped[4000:8000], burst)
    windows, places = clip_windows(burst, spec, hop_s=0.5)
    assert len(places) == 1 and places[0].duration_s == pytest.approx(0.25)
    assert windows.min() > np.log(spec.log_floor)  # no frame of silence


def test_rms_and_mono_conversion():
    assert rms_dbfs(np.ones(100, dtype=np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.full(100, 0.1, dtype=np.float32)) == pytest.approx(-20.0)
    assert rms_dbfs(np.zeros(10, dtype=np.float32)) == -np.inf
    assert to_mono_float(np.array([0, 128, 255], dtype=np.uint8)).tolist() == pytest.approx([-1.0, 0.0, 127 / 128])
    assert to_mono_float(np.array([-32768, 16384], dtype=np.int16)).tolist() == [-1.0, 0.5]
    stereo = np.array([[1000, -1000], [2000, 0]], dtype=np.int16)
    assert to_mono_float(stereo).tolist() == pytest.approx([0.0, 1000 / 32768])


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_tone_is_the_same_tone(rate):
    t = np.arange(rate * 2) / rate
    y = resample(np.sin(2 * np.pi * 440.0 * t).astype(np.float32), rate, 16000)
    assert y.size == 32000
    expected = np.sin(2 * np.pi * 440.0 * np.arange(y.size) / 16000)
    assert np.abs(y - expected)[100:-100].max() < 1e-3  # edges see the silence before and after


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_resampler_removes_what_the_new_rate_cannot_hold(rate):
    t = np.arange(rate) / rate
    y = resample(np.sin(2 * np.pi * 8800.0 * t).astype(np.float32), rate, 16000)  # above 8 kHz Nyquist
    assert rms_dbfs(y[100:-100]) < -50.0  # would alias to 7.2 kHz at full level without the filter


def test_streaming_resampler_equals_one_shot():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(48000).astype(np.float32)
    whole = resample(x, 48000, 16000)
    r = Resampler(48000, 16000)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 5000))
        parts.append(r.process(x[i:i + n]))
        i += n
    parts.append(r.flush())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_spec_round_trip_and_errors():
    spec = LogMelSpec(mean=-6.5, std=3.25)
    assert LogMelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert normalise(np.zeros((2, 96, 64), np.float32), spec).shape == (2, 96, 64, 1)
    with pytest.raises(FeatureSpecError, match=r"audio\.n_mels: expected an integer"):
        LogMelSpec.from_dict({"n_mels": 64.5})
    with pytest.raises(FeatureSpecError, match="unknown key"):
        LogMelSpec.from_dict({"pcen": True})
    with pytest.raises(FeatureSpecError, match="fmax"):
        LogMelSpec.from_dict({"fmax": 9000.0})
    with pytest.raises(FeatureSpecError, match="features"):
        LogMelSpec.from_dict({"features": "mfcc"})


def _log_mel_at_once(samples: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """log_mel as it was before the FFT went in blocks: every frame in one matrix."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    count = 1 + (x.size - spec.win_length) // spec.hop_length
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(count, spec.win_length), strides=(spec.hop_length * x.strides[0], x.strides[0]), writeable=False)
    spectrum = np.fft.rfft(frames * hann(spec.win_length), n=spec.n_fft, axis=1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    return np.log(np.maximum(power @ mel_matrix(spec), spec.log_floor))


@pytest.mark.parametrize("frames", [1, 2, FRAME_BLOCK - 1, FRAME_BLOCK, FRAME_BLOCK + 1, FRAME_BLOCK * 3 // 2 - 1,
                                    FRAME_BLOCK * 3 // 2, FRAME_BLOCK * 3 // 2 + 1, 255, 256, 257, 1498, 12001])
def test_log_mel_in_blocks_is_bit_for_bit_the_whole_at_once(frames):
    spec = LogMelSpec()
    x = (0.2 * np.random.default_rng(frames).standard_normal(spec.win_length + (frames - 1) * spec.hop_length))
    assert np.array_equal(log_mel(x, spec), _log_mel_at_once(x, spec))
    blocks = frame_blocks(frames)
    assert blocks[0][0] == 0 and blocks[-1][1] == frames and all(b[1] == c[0] for b, c in zip(blocks, blocks[1:]))
    assert all(stop - start >= min(frames, FRAME_BLOCK // 2) for start, stop in blocks)
