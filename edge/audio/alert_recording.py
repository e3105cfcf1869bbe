"""Recording alert audio to disk, only when asked (`nv-edge listen --record-dir`): SD cards wear out,
so the microphone path writes nothing by default."""

from __future__ import annotations

import wave
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.audio.microphone import LiveWindow, MicrophoneError


class AlertRecorder:
    """Keeps the audio of alert windows, and nothing else, as 16-bit mono WAV segments in `folder`.

    Consecutive alert windows overlap (hop < window): they go into one segment, each window adding
    only its new samples, so nothing is written twice. A segment ends at the first window that is not
    an alert, or after `max_segment_s`. Files are named `<UTC start>_<label>.wav` (`-2`, `-3` ... added
when a segment of that name exists: two segments may start in one millisecond when the clock steps or
a buffer of windows arrives at once, and none may overwrite another); the header is
    rewritten after every window, so a power cut leaves a readable file (and `edge.audio.audiofile` reads
    a torn one anyway)."""

    def __init__(self, folder: str | Path, rate: int, max_segment_s: float = 60.0):
        self.folder = Path(folder)
        self.rate = rate
        self.max_samples = int(max_segment_s * rate)
        self.written: list[Path] = []
        self._out: wave.Wave_write | None = None
        self._file = None  # the segment's file: wave.open does not close a file it was given
        self._end = 0  # model-rate sample after the last one written
        self._length = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MicrophoneError(f"{self.folder}: cannot create the recording folder: {exc.strerror or exc}") from None

    def add(self, window: LiveWindow, alert: bool, label: str, hop: int) -> None:
        """`hop`: model-rate samples between windows (window.number * hop is where it starts)."""
        if not alert:
            self.close()
            return
        begin = window.number * hop
        pcm = np.clip(np.rint(window.samples * 32767.0), -32768, 32767).astype("<i2")
        if self._out is not None and begin <= self._end and self._length < self.max_samples:
            pcm = pcm[self._end - begin:]
        else:
            self.close()
            stamp = datetime.fromtimestamp(window.start_time, timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3]
            name = f"{stamp}Z_{''.join(c if c.isalnum() or c in '-.' else '_' for c in label)}"
            path, handle = _create_new(self.folder, name)
            self._out = wave.open(handle, "wb")
            self._file = handle
            self._out.setnchannels(1)
            self._out.setsampwidth(2)
            self._out.setframerate(self.rate)
            self.written.append(path)
            self._length = 0
        self._out.writeframes(pcm.tobytes())
        self._length += pcm.size
        self._end = begin + window.samples.size

    def close(self) -> None:
        out, self._out = self._out, None
        handle, self._file = self._file, None
        if out is not None:
            out.close()
        if handle is not None:
            handle.close()


def _create_new(folder: Path, name: str):
    """The first of `name.wav`, `name-2.wav`, ... that does not exist, created exclusively (never truncating)."""
    for n in range(1, 1000):
        path = folder / (f"{name}.wav" if n == 1 else f"{name}-{n}.wav")
        try:
            return path, open(path, "xb")  # noqa: SIM115 (closed by AlertRecorder.close)
        except FileExistsError:
            continue
        except OSError as exc:
            raise MicrophoneError(f"{path}: cannot write the recording: {exc.strerror or exc}") from None
    raise MicrophoneError(f"{folder}: 999 recordings named {name}: clear the folder")
