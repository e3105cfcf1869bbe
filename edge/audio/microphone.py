"""Live capture from a microphone: model-sized windows every hop, never blocked by inference.

PortAudio (through `sounddevice`, imported only when a microphone is opened) calls `_callback` from
its own thread with each block of samples. The callback does nothing but average the channels and
copy the block into a fixed-size ring buffer of `buffer_s` seconds: it never waits for the model.
The consumer (`Microphone.windows()`, a generator) takes what is new from the ring, resamples it
to the model's rate when the device cannot record at that rate (`edge.features.logmel.Resampler`, streaming
and chunk-exact) and cuts windows of the model's length every `hop_s`, on the same STFT frame grid
as `edge.features.logmel.clip_windows`, so a live window is the window a file would give.

Falling behind. When inference is slower than real time, windows pile up. Up to `max_lag_s` of
backlog is worked through (a hiccup costs nothing); beyond that the generator skips to the newest
complete window and counts the skipped ones as `dropped`. If the consumer stalls longer than the
ring holds, the overwritten audio is lost (counted too) and capture goes on after the gap. Memory
never grows with the backlog. PortAudio's own input overflows (`status.input_overflow`) are
counted as `overflows`. `stats()` gives the counts for logs and the health heartbeat.

Silence. A window quieter than `rms_gate_dbfs` is yielded with `silent=True` so that the caller
does not spend the model on it.

Nothing is written to disk here. `edge.audio.alert_recording.AlertRecorder`, given a folder explicitly,
keeps WAV segments of alert windows only (see its docstring).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge.features.logmel import LogMelSpec, Resampler, rms_dbfs

DEFAULT_HOP_S = 0.5
DEFAULT_RMS_GATE_DBFS = -60.0  # as edge/config/ [audio] rms_gate_dbfs
DEFAULT_BLOCK_S = 0.1  # PortAudio block: 10 callbacks a second
DEFAULT_BUFFER_S = 30.0
DEFAULT_MAX_LAG_S = 2.0
DEFAULT_STALL_S = 10.0  # no audio for this long: the device is gone
PORTAUDIO_HINT = "PortAudio is missing: sudo apt install libportaudio2"
_RESAMPLE_BLOCK = 1 << 14  # device samples per resampler call (its work matrix is outputs x taps)


class MicrophoneError(Exception):
    """The microphone cannot be used; the message names the device and says what to do."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int  # most input channels it offers
    default_rate: int

    def __str__(self) -> str:
        return f"[{self.index}] {self.name} ({self.channels} ch, {self.default_rate} Hz)"


@dataclass(frozen=True)
class LiveWindow:
    samples: np.ndarray  # mono float32 at the model's rate, one model window long
    number: int  # windows since capture started, dropped ones included
    offset_s: float  # start, in audio seconds since capture started
    start_time: float  # Unix time of the first sample (wall clock, anchored to the latest block; never
    # earlier than the previous window's, so a clock stepped back by NTP holds still until it catches up)
    duration_s: float
    rms_dbfs: float
    silent: bool  # below the RMS gate: not worth classifying


@dataclass(frozen=True)
class CaptureStats:
    device: str
    device_rate: int
    rate: int  # the model's
    windows: int  # yielded
    silent: int  # of those, below the RMS gate
    dropped: int  # skipped because the consumer fell behind (or their audio was lost)
    overflows: int  # blocks PortAudio flagged with input_overflow
    lost_s: float  # audio overwritten in the ring before it was read


def import_sounddevice():
    """The sounddevice module, imported on first use: it needs the system's PortAudio library."""
    try:
        import sounddevice
    except OSError as exc:  # the Python package is there, the C library is not
        raise MicrophoneError(f"{PORTAUDIO_HINT} ({exc})") from None
    except ImportError:
        raise MicrophoneError("the microphone needs the sounddevice package: pip install sounddevice "
                              "(and PortAudio: sudo apt install libportaudio2)") from None
    return sounddevice


def input_devices(sd=None) -> list[InputDevice]:
    sd = sd or import_sounddevice()
    found = []
    for index, info in enumerate(sd.query_devices()):
        if int(info.get("max_input_channels", 0)) > 0:
            found.append(InputDevice(int(info.get("index", index)), str(info["name"]),
                                     int(info["max_input_channels"]), int(round(info["default_samplerate"]))))
    return found


def find_device(selector: str | int | None, sd=None) -> InputDevice:
    """An input device by index, by (part of) its name, case-insensitive, or the system default."""
    sd = sd or import_sounddevice()
    devices = input_devices(sd)
    listing = "; ".join(map(str, devices)) or "none"
    if not devices:
        raise MicrophoneError("no input device found (is the USB microphone plugged in? `arecord -l` lists "
                              "what ALSA sees)")
    if selector is None or selector == "":
        default = sd.default.device
        index = default[0] if isinstance(default, (list, tuple)) else default
        chosen = [d for d in devices if d.index == index]
        return chosen[0] if chosen else devices[0]
    if isinstance(selector, int) or str(selector).strip().isdigit():
        chosen = [d for d in devices if d.index == int(selector)]
        if not chosen:
            raise MicrophoneError(f"no input device with index {selector}; input devices: {listing}")
        return chosen[0]
    text = str(selector).lower()
    exact = [d for d in devices if d.name.lower() == text]
    chosen = exact or [d for d in devices if text in d.name.lower()]
    if not chosen:
        raise MicrophoneError(f"no input device named like {selector!r}; input devices: {listing}")
    if len(chosen) > 1:
        raise MicrophoneError(f"{selector!r} matches {len(chosen)} input devices ({'; '.join(map(str, chosen))}); "
                              "give more of the name, or the index")
    return chosen[0]


def hop_samples(spec: LogMelSpec, hop_s: float) -> int:
    """The hop rounded to whole STFT frames, as `edge.features.logmel.clip_windows` rounds it."""
    if hop_s <= 0:
        raise ValueError(f"hop must be positive, got {hop_s} s")
    return max(1, round(hop_s * spec.sample_rate / spec.hop_length)) * spec.hop_length


class Microphone:
    """One input stream. Use as a context manager, then iterate `windows()`."""

    def __init__(self, spec: LogMelSpec, device: str | int | None = None, *, hop_s: float = DEFAULT_HOP_S,
                 rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS, block_s: float = DEFAULT_BLOCK_S,
                 buffer_s: float = DEFAULT_BUFFER_S, max_lag_s: float = DEFAULT_MAX_LAG_S,
                 stall_s: float = DEFAULT_STALL_S):
        self.spec = spec
        self.selector = device
        self.rate = spec.sample_rate
        self.hop = hop_samples(spec, hop_s)
        self.rms_gate_dbfs = rms_gate_dbfs
        self.block_s = block_s
        if buffer_s < max_lag_s + 2 * spec.window_s + block_s:
            raise ValueError(f"buffer_s ({buffer_s}) must hold max_lag_s ({max_lag_s}) plus two windows and a block")
        self.buffer_s = buffer_s
        self.max_lag_windows = int(max_lag_s * self.rate // self.hop)
        self.stall_s = stall_s
        self.device: InputDevice | None = None
        self.device_rate = 0
        self._stream = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        # written by the callback, under the lock
        self._ring = np.zeros(0, dtype=np.float32)
        self._written = 0  # device samples ever written
        self._anchor: tuple[int, float] | None = None  # (_written, Unix time) at the latest block
        self._overflows = 0
        # the consumer's
        self._read = 0  # device samples taken from the ring
        self._resampler: Resampler | None = None
        self._tail = np.zeros(0, dtype=np.float32)  # model-rate samples from _tail_start on
        self._tail_start = 0
        self._produced = 0  # model-rate samples made so far (a gap counts as made)
        self._next = 0  # number of the next window
        self._last_time = -math.inf  # start_time of the last window
        self._windows = self._silent = self._dropped = 0
        self._lost = 0  # device samples overwritten unread
        self._flushed = False

    # -- the stream ------------------------------------------------------------------------------

    def open(self) -> "Microphone":
        sd = import_sounddevice()
        self.device = find_device(self.selector, sd)
        self.device_rate, channels = self._settings(sd, self.device)
        self._ring = np.zeros(int(math.ceil(self.buffer_s * self.device_rate)), dtype=np.float32)
        self._resampler = Resampler(self.device_rate, self.rate)
        try:
            self._stream = sd.InputStream(device=self.device.index, channels=channels, samplerate=self.device_rate,
                                          dtype="float32", blocksize=max(1, int(self.device_rate * self.block_s)),
                                          callback=self._callback)
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - sounddevice raises PortAudioError, ValueError, ...
            self.close()
            raise MicrophoneError(f"cannot open input device {self.device}: {type(exc).__name__}: {exc}") from None
        return self

    def _settings(self, sd, device: InputDevice) -> tuple[int, int]:
        """(rate, channels): the model's rate when the device takes it (no resampling here), mono
        when it can; else its default rate and up to two channels, averaged."""
        tried = []
        for rate in dict.fromkeys((self.rate, device.default_rate)):
            for channels in dict.fromkeys((1, min(2, device.channels))):
                try:
                    sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=rate)
                    return rate, channels
                except Exception as exc:  # noqa: BLE001
                    tried.append(f"{rate} Hz x {channels} ch: {exc}")
        raise MicrophoneError(f"input device {device} takes none of the settings tried ({'; '.join(tried)})")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def __enter__(self) -> "Microphone":
        return self.open() if self._stream is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def _callback(self, indata, frames, time_info, status) -> None:
        """PortAudio's thread: copy, nothing else."""
        if getattr(status, "input_overflow", False):
            self._overflows += 1
        mono = indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1, dtype=np.float32)
        size = self._ring.size
        with self._lock:
            if mono.size > size:  # a block longer than the ring: only its end can be kept
                self._written += mono.size - size
                mono = mono[-size:]
            pos = self._written % size
            first = min(mono.size, size - pos)
            self._ring[pos:pos + first] = mono[:first]
            self._ring[:mono.size - first] = mono[first:]
            self._written += mono.size
            self._anchor = (self._written, time.time())
        self._ready.set()

    def _active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    # -- the consumer ----------------------------------------------------------------------------

    def stats(self) -> CaptureStats:
        return CaptureStats(device=str(self.device) if self.device else str(self.selector), device_rate=self.device_rate,
                            rate=self.rate, windows=self._windows, silent=self._silent, dropped=self._dropped,
                            overflows=self._overflows, lost_s=self._lost / max(1, self.device_rate))

    def windows(self, stop: threading.Event | None = None, duration_s: float | None = None) -> Iterator[LiveWindow]:
        """Windows as they complete, until `stop` is set, `duration_s` of audio has been covered, or
        the stream ends. Raises MicrophoneError when no audio comes for `stall_s` seconds."""
        if self._stream is None:
            raise MicrophoneError("the microphone is not open: use `with Microphone(...) as mic:`")
        size = self.spec.window_samples
        limit = None if duration_s is None else int(round(duration_s * self.rate))
        last_data = time.monotonic()
        while stop is None or not stop.is_set():
            self._ready.clear()  # before pulling: a block written after this wakes the wait below
            pulled = self._pull()
            if not self._active() and not self._flushed:
                self._pull()
                self._append(self._resampler.flush())  # a finished stream: its last samples too
                self._flushed = True
            now = time.monotonic()
            if pulled:
                last_data = now
            newest = (self._produced - size) // self.hop
            if limit is not None:
                newest = min(newest, (limit - size) // self.hop)
            if newest >= self._next:
                if newest - self._next > self.max_lag_windows:
                    self._dropped += newest - self._next
                    self._next = newest
                yield self._cut(self._next)
                continue
            if limit is not None and self._next * self.hop + size > limit or self._flushed:
                return
            if now - last_data > self.stall_s:
                raise MicrophoneError(f"no audio from input device {self.device} for {self.stall_s:.0f} s: "
                                      "unplugged, or taken by another program?")
            self._ready.wait(timeout=min(0.5, self.stall_s))

    def _pull(self) -> int:
        """Move what the callback wrote since the last pull through the resampler; returns device
        samples taken."""
        with self._lock:
            written, size = self._written, self._ring.size
            start = max(self._read, written - size)
            count = written - start
            pos = start % size
            first = min(count, size - pos)
            chunk = np.concatenate([self._ring[pos:pos + first], self._ring[:count - first]])
        if start > self._read:  # the ring went round before we read it: that audio is lost
            self._lost += start - self._read
            self._skip_gap(start - self._read)
        self._read = written
        for begin in range(0, count, _RESAMPLE_BLOCK):  # bounded: the resampler's work grows with its input
            self._append(self._resampler.process(chunk[begin:begin + _RESAMPLE_BLOCK]))
        return count

    def _skip_gap(self, device_samples: int) -> None:
        """Audio lost in the ring: the timeline jumps ahead; windows over the gap are dropped."""
        self._produced += int(round(device_samples * self.rate / self.device_rate))
        self._tail = np.zeros(0, dtype=np.float32)
        self._tail_start = self._produced
        self._resampler = Resampler(self.device_rate, self.rate)
        first_after = -(-self._produced // self.hop)
        if first_after > self._next:
            self._dropped += first_after - self._next
            self._next = first_after

    def _append(self, samples: np.ndarray) -> None:
        if samples.size:
            self._tail = np.concatenate([self._tail, samples])
            self._produced += samples.size

    def _cut(self, number: int) -> LiveWindow:
        size = self.spec.window_samples
        begin = number * self.hop
        samples = self._tail[begin - self._tail_start:begin - self._tail_start + size].copy()
        self._next = number + 1
        keep = self._next * self.hop - self._tail_start
        if keep > 0:
            self._tail = self._tail[keep:]
            self._tail_start += keep
        loudness = rms_dbfs(samples)
        silent = self.rms_gate_dbfs is not None and loudness < self.rms_gate_dbfs
        self._windows += 1
        self._silent += silent
        self._last_time = max(self._wall_time(begin), self._last_time)
        return LiveWindow(samples, number, begin / self.rate, self._last_time, size / self.rate, loudness, silent)

    def _wall_time(self, model_sample: int) -> float:
        """Unix time of a model-rate sample, from the latest block's arrival: follows the system
        clock, so a sound card clock that drifts does not carry the times away over days."""
        with self._lock:
            anchor = self._anchor
        if anchor is None:
            return time.time()
        written, wall = anchor
        return wall - (written - model_sample * self.device_rate / self.rate) / self.device_rate
