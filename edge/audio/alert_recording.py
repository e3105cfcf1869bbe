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
    an alert, or after `max_segment_s`. Files are named `<UTC start>_<label>.wav`; the header is
    rewritten after every window, so a power cut leaves a readable file (and `edge.audio.audiofile` reads
    a torn one anyway)."""

    def __init__(self, folder: str | Path, rate: int, max_segment_s: float = 60.0):
        self.folder = Path(folder)
        self.rate = rate
        self.max_samples = int(max_segment_s * rate)
        self.written: list[Path] = []
        self._out: wave.Wave_write | None = None
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
            path = self.folder / f"{stamp}Z_{''.join(c if c.isalnum() or c in '-.' else '_' for c in label)}.wav"
            self._out = wave.open(str(path), "wb")
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
        if out is not None:
            out.close()
