"""Audio front end: samples -> log-mel patches, the model's input. One implementation: the converter
imports this module to make its training data, so the edge computes exactly what the model learnt from.

The recipe (stored in the bundle manifest under `audio`, see `LogMelSpec`):
resample to `sample_rate` (mono float in [-1, 1]) -> frames of `win_length` samples every `hop_length`
samples (no centring, no padding) -> periodic Hann window -> |rFFT(n_fft)|^2 -> mel filterbank (HTK mel
scale, triangles in mel space, `n_mels` bands from `fmin` to `fmax`, DC excluded: the definition of
`tf.signal.linear_to_mel_weight_matrix`) -> natural log of max(power, `log_floor`) -> (x - mean) / std.

A model window is `frames` consecutive frames: 96 frames of 10 ms inside 0.975 s of audio by default, the
patch size of Google's YAMNet/VGGish. It is long enough to hold several cycles of an engine, a saw or a
drill, and short enough that most UrbanSound8K slices (0.1 to 4 s) give at least one window; clips shorter
than a window are looped to fill it (`fit_window`), never padded with silence, which the model would learn
as a class cue.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np


class FeatureSpecError(ValueError):
    """A manifest `audio` spec that cannot be used; the message names the key."""


@dataclass(frozen=True)
class LogMelSpec:
    sample_rate: int = 16_000
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 64
    fmin: float = 60.0
    fmax: float = 7_800.0
    frames: int = 96  # frames per model window
    log_floor: float = 1e-6
    mean: float = 0.0  # the model's input is (log-mel - mean) / std; set by the converter from training data
    std: float = 1.0

    @property
    def window_samples(self) -> int:
        """Samples in one model window."""
        return self.win_length + (self.frames - 1) * self.hop_length

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.frames, self.n_mels, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"features": "log-mel", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "audio") -> "LogMelSpec":
        if not isinstance(data, dict):
            raise FeatureSpecError(f"{where}: expected an object with the log-mel parameters")
        if data.get("features", "log-mel") != "log-mel":
            raise FeatureSpecError(f"{where}.features: {data.get('features')!r} is not supported (only 'log-mel'); "
                                   "update nv-edge or rebuild the model")
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known) - {"features"})
        if unknown:
            raise FeatureSpecError(f"{where}: unknown key(s) {', '.join(unknown)}: this model needs a newer nv-edge")
        values = {}
        for name in known:
            if name not in data:
                continue
            value = data[name]
            integer = name in ("sample_rate", "win_length", "hop_length", "n_fft", "n_mels", "frames")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
                raise FeatureSpecError(f"{where}.{name}: expected {'an integer' if integer else 'a number'}, got {value!r}")
            values[name] = value if integer else float(value)
        spec = cls(**values)
        spec.check(where)
        return spec

    def check(self, where: str = "audio") -> None:
        problems = []
        if self.sample_rate < 1000:
            problems.append(f"sample_rate {self.sample_rate} is below 1000 Hz")
        if not 0 < self.win_length <= self.n_fft:
            problems.append(f"win_length {self.win_length} must be in 1..n_fft ({self.n_fft})")
        if self.hop_length < 1 or self.frames < 1 or self.n_mels < 1:
            problems.append("hop_length, frames and n_mels must be at least 1")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin {self.fmin}, fmax {self.fmax}")
        if self.log_floor <= 0 or self.std <= 0:
            problems.append("log_floor and std must be positive")
        if problems:
            raise FeatureSpecError(f"{where}: " + "; ".join(problems))


# -- signal helpers -------------------------------------------------------------------------------

def to_mono_float(samples: np.ndarray) -> np.ndarray:
    """(N,) or (N, channels) samples of any PCM type -> mono float32 in [-1, 1] (channels averaged)."""
    x = np.asarray(samples)
    if x.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(-np.iinfo(x.dtype).min)
    else:
        x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    elif x.ndim != 1:
        raise ValueError(f"expected samples shaped (N,) or (N, channels), got {x.shape}")
    return x


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness of float samples in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    if samples.size == 0:
        return -math.inf
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def fit_window(samples: np.ndarray, length: int) -> np.ndarray:
    """A clip shorter than one window is looped to fill it (silence padding would teach the model that
    silence means the clip's class)."""
    if samples.size >= length or samples.size == 0:
        return samples
    return np.resize(samples, length)


# -- resampling -----------------------------------------------------------------------------------

_ZERO_CROSSINGS = 16  # filter half-length in input periods of the lower rate
_KAISER_BETA = 8.6  # about 80 dB stop band


@lru_cache(maxsize=8)
def _polyphase_table(up: int, down: int) -> tuple[np.ndarray, int]:
    """Windowed-sinc filter taps for each of the `up` output phases: (up, 2 * half) and half."""
    cutoff = 0.95 * min(1.0, up / down)  # of the input Nyquist; 5 % guard band against aliasing
    half = int(math.ceil(_ZERO_CROSSINGS / cutoff))
    phases = np.arange(up, dtype=np.float64)[:, None] / up  # fractional input position of each output phase
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)[None, :]
    t = taps - phases  # input sample offset relative to the output instant
    window = np.kaiser(2 * half + 1, _KAISER_BETA)
    # evaluate the continuous Kaiser window at t (it is sampled at integers -half..half)
    w = np.interp(t, np.arange(-half, half + 1), window, left=0.0, right=0.0)
    table = cutoff * np.sinc(cutoff * t) * w
    table /= table.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
    return table.astype(np.float32), half


class Resampler:
    """Streaming rational resampler (windowed sinc, polyphase). Feed chunks of any size: the output is
    the same as resampling the whole signal at once. The filter is centred, so the newest outputs wait
    for `half` more input samples; `flush` returns them at the end of a stream."""

    def __init__(self, from_rate: int, to_rate: int):
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        g = math.gcd(int(from_rate), int(to_rate))
        self.up, self.down = int(to_rate) // g, int(from_rate) // g
        self.identity = self.up == self.down
        self._table, self._half = (None, 0) if self.identity else _polyphase_table(self.up, self.down)
        self._buffer = np.zeros(self._half, dtype=np.float32)  # a silent past before the first sample
        self._start = -self._half  # input index of self._buffer[0]
        self._total = 0  # input samples seen
        self._next = 0  # index of the next output sample

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.identity:
            return chunk
        self._buffer = np.concatenate([self._buffer, chunk])
        self._total += chunk.size
        # output n needs inputs up to (n * down) // up + half
        last = self._start + self._buffer.size - 1
        return self._emit(-(-(last - self._half + 1) * self.up // self.down))

    def flush(self) -> np.ndarray:
        if self.identity:
            return np.zeros(0, dtype=np.float32)
        self._buffer = np.concatenate([self._buffer, np.zeros(self._half, dtype=np.float32)])
        return self._emit(-(-self._total * self.up // self.down))  # every output inside the input

    def _emit(self, stop: int) -> np.ndarray:
        n = np.arange(self._next, max(self._next, stop), dtype=np.int64)
        if n.size == 0:
            return np.zeros(0, dtype=np.float32)
        base = (n * self.down) // self.up
        first = base - self._half + 1 - self._start  # buffer index of each output's first tap
        idx = first[:, None] + np.arange(2 * self._half)[None, :]
        out = np.einsum("ij,ij->i", self._buffer[idx], self._table[(n * self.down) % self.up])
        self._next = int(n[-1]) + 1
        keep_from = (self._next * self.down) // self.up - self._half + 1 - self._start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._start += keep_from
        return out.astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole float signal."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    r = Resampler(from_rate, to_rate)
    # In chunks: one call gathers an (outputs x taps) matrix, ~300 MB for 10 s at 48 kHz. Same output.
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    step = 1 << 14
    return np.concatenate([r.process(x[i:i + step]) for i in range(0, x.size, step)] + [r.flush()])


# -- log-mel --------------------------------------------------------------------------------------

def hertz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def mel_matrix(spec: LogMelSpec) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) weights; the DC bin has none."""
    bins = spec.n_fft // 2 + 1
    linear = np.linspace(0.0, spec.sample_rate / 2.0, bins)[1:]
    mel = hertz_to_mel(linear)[:, None]
    edges = np.linspace(hertz_to_mel(spec.fmin), hertz_to_mel(spec.fmax), spec.n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (centre - lower), (upper - mel) / (upper - centre)))
    return np.vstack([np.zeros((1, spec.n_mels)), weights]).astype(np.float32)


@lru_cache(maxsize=8)
def hann(length: int) -> np.ndarray:
    """Periodic Hann window (the STFT convention)."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)


def frame_count(samples: int, spec: LogMelSpec) -> int:
    return 0 if samples < spec.win_length else 1 + (samples - spec.win_length) // spec.hop_length


def log_mel(samples: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """Mono float samples at spec.sample_rate -> (frames, n_mels) float32 log-mel (not normalised).

    Frames go through the FFT in blocks (`frame_blocks`): the float64 spectra of a whole 15 s clip took
    ~18 MB at once, of a 2-minute block ~130 MB; a block of 64 frames takes ~1 MB. Every frame is
    computed on its own, so the result is the same as in one go."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    count = frame_count(x.size, spec)
    if count == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(count, spec.win_length), strides=(spec.hop_length * x.strides[0], x.strides[0]), writeable=False)
    out = np.empty((count, spec.n_mels), dtype=np.float32)
    for start, stop in frame_blocks(count):
        spectrum = np.fft.rfft(frames[start:stop] * hann(spec.win_length), n=spec.n_fft, axis=1)
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
        out[start:stop] = np.log(np.maximum(power @ mel_matrix(spec), spec.log_floor))
    return out


FRAME_BLOCK = 64  # frames per FFT block (0.64 s of audio at a 10 ms hop); 256 took 3 MB more for a moment


def frame_blocks(count: int) -> list[tuple[int, int]]:
    """(start, stop) blocks of FRAME_BLOCK frames; a short tail joins the block before it, so no block
    (but a lone frame's) has fewer than FRAME_BLOCK // 2 rows: a one-row matrix product goes through
    another BLAS routine (gemv) and rounds differently in the last bit."""
    bounds = list(range(0, count, FRAME_BLOCK))
    if len(bounds) > 1 and count - bounds[-1] < FRAME_BLOCK // 2:
        bounds.pop()
    return list(zip(bounds, bounds[1:] + [count]))


def normalise(features: np.ndarray, spec: LogMelSpec) -> np.ndarray:
    """Log-mel (..., frames, n_mels) -> model input (..., frames, n_mels, 1)."""
    return ((features - spec.mean) / spec.std)[..., None].astype(np.float32)


@dataclass(frozen=True)
class Window:
    """One model window of a clip: where it is and how loud."""

    offset_s: float
    duration_s: float
    rms_dbfs: float


def clip_windows(samples: np.ndarray, spec: LogMelSpec, hop_s: float) -> tuple[np.ndarray, list[Window]]:
    """A whole clip (mono float at spec.sample_rate) -> log-mel windows (W, frames, n_mels) every `hop_s`
    seconds, and where each lies. The STFT is computed once for the clip and windows slice it, so the
    result is identical to `log_mel` of each window's samples. A clip shorter than a window is looped;
    the tail that does not fill a whole window gets one last window aligned to the clip's end."""
    if hop_s <= 0:
        raise ValueError(f"hop must be positive, got {hop_s} s")
    x = fit_window(np.asarray(samples, dtype=np.float32), spec.window_samples)
    if x.size == 0:
        return np.zeros((0, spec.frames, spec.n_mels), dtype=np.float32), []
    looped = x.size != np.asarray(samples).size
    hop_frames = max(1, round(hop_s * spec.sample_rate / spec.hop_length))
    features = log_mel(x, spec)
    starts = list(range(0, features.shape[0] - spec.frames + 1, hop_frames))
    last = features.shape[0] - spec.frames
    if starts and starts[-1] != last and x.size - (starts[-1] * spec.hop_length + spec.window_samples) > 0:
        starts.append(last)
    windows = np.stack([features[s:s + spec.frames] for s in starts])
    places = []
    for s in starts:
        begin = s * spec.hop_length
        chunk = x[begin:begin + spec.window_samples]
        duration = (np.asarray(samples).size if looped else chunk.size) / spec.sample_rate
        places.append(Window(begin / spec.sample_rate, duration, rms_dbfs(chunk)))
    return windows, places
