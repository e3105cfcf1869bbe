"""Real audio for the tests: synthetic hum and hiss, WAV files in any layout (written byte by byte,
so the reader is tested against files the stdlib `wave` module could not write), and the committed
ESC-10 clips in samples/audio/.

The tiny audio model (tests/build_models.py) scores "engine" from low bands over high bands: a low
hum is "engine", hiss is "background".
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "audio"
CHAINSAW = SAMPLES / "chainsaw_169127.wav"
RAIN = SAMPLES / "rain_21189.wav"
COMPOSITE = SAMPLES / "composite_rain_chainsaw_rain.wav"  # rain 0-5 s, chainsaw 5-10 s, rain 10-15 s
RATE = 16_000


def hum(seconds: float, rate: int = RATE, amplitude: float = 0.3, f0: float = 110.0) -> np.ndarray:
    """An idling engine, crudely: a low fundamental and its first harmonics, all below 1 kHz."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 8))
    return (amplitude * x / np.max(np.abs(x))).astype(np.float32)


def hiss(seconds: float, rate: int = RATE, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise: with the mel filterbank's wider high bands, most of its energy lands high."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, amplitude, int(round(seconds * rate))), -1, 1).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)


def scripted(*parts: tuple[str, float], rate: int = RATE) -> np.ndarray:
    """e.g. scripted(("hiss", 5), ("hum", 5), ("hiss", 5))."""
    make = {"hum": hum, "hiss": hiss, "silence": silence}
    return np.concatenate([make[kind](seconds, rate) for kind, seconds in parts])


def pcm_bytes(samples: np.ndarray, bits: int, code: int = 1) -> bytes:
    """(N,) or (N, channels) float samples -> interleaved little-endian sample bytes."""
    x = np.asarray(samples, dtype=np.float64)
    if code == 3:
        return x.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.clip(np.rint(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    full = 2 ** (bits - 1)
    ints = np.clip(np.rint(x * full), -full, full - 1).astype("<i8")
    if bits == 24:
        return ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return ints.astype({16: "<i2", 32: "<i4"}[bits]).tobytes()


def wav_bytes(samples: np.ndarray, rate: int = RATE, bits: int = 16, *, code: int = 1, extensible: bool = False,
              data_size: int | None = None, extra_chunks: bytes = b"") -> bytes:
    """A complete WAV file. `data_size` overrides the data chunk's size field (a lying header)."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    payload = pcm_bytes(samples, bits, code)
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", code) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", code, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(payload) if data_size is None else data_size) + payload
    if len(payload) % 2:
        body += b"\0"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, bits: int = 16, **kwargs) -> Path:
    path.write_bytes(wav_bytes(samples, rate, bits, **kwargs))
    return path
