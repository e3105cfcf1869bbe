"""The audio classifier, one for files and the microphone: windows -> model -> decisions -> events
-> records.

    samples -> log-mel windows (edge.features.logmel) -> normalise -> model (batched for files) -> scores
            -> Decision per window (edge.decisions.alerts) -> EventTracker (edge.decisions.events) -> records (edge.records.record)

Windows quieter than the RMS gate are not classified: they make no window record, and to the event
tracker they are a gap (a long one ends an active event, see `EventRules.max_gap_s`). Decisions and
events are per alert group (edge/decisions/groups.py); a score log (edge/audio/score_log.py), when
given, gets every classified window.

Times. A clip's windows are placed from the clip's start, taken as the file's modification time
minus its duration (a recorder writes the file as it records: the mtime is its end); records say
`time_source: "file-mtime"` and carry each window's offset into the clip. A live window's time is
the wall clock of its first sample (`"received"`).

A long file is classified in blocks of windows, so memory follows the block, not the file; the
windows are exactly those `edge.features.logmel.clip_windows` gives for the whole clip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from edge.audio.alert_recording import AlertRecorder
from edge.audio.audiofile import DEFAULT_MAX_BYTES, read_audio
from edge.audio.microphone import DEFAULT_HOP_S, DEFAULT_RMS_GATE_DBFS, LiveWindow, hop_samples
from edge.audio.records import audio_window_record
from edge.audio.score_log import ScoreLog
from edge.decisions.alerts import Decision, decide
from edge.decisions.events import EventRules, EventTracker
from edge.decisions.groups import alert_groups
from edge.features.logmel import LogMelSpec, Window, clip_windows, log_mel, normalise
from edge.model.bundle import BundleError
from edge.model.loaded import Model
from edge.records.record import event_record, source_time

log = logging.getLogger("nv.audio")

DEFAULT_BATCH = 4  # windows per invoke for files: as fast as 16, and the interpreter's arena is 2 MB smaller
BLOCK_WINDOWS = 256  # windows per block of a long file: ~2 minutes of audio at a 0.5 s hop


@dataclass(frozen=True)
class AudioOptions:
    thresholds: dict[str, float]
    hop_s: float = DEFAULT_HOP_S
    rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS  # None: classify every window
    batch_size: int = DEFAULT_BATCH
    per_window: bool = True  # a record for every classified window
    events: EventRules | None = None  # None: no events


@dataclass(frozen=True)
class WindowScore:
    offset_s: float
    duration_s: float
    rms_dbfs: float
    scores: np.ndarray | None  # None: below the RMS gate, not classified
    decision: Decision | None


class AudioClassifier:
    """An audio model with its front end and options."""

    def __init__(self, model: Model, options: AudioOptions):
        if model.manifest.task != "audio":
            raise BundleError(f"{model.path}: is an {model.manifest.task} model, not an audio model; "
                              "pass an audio model bundle (--audio-model)")
        self.model = model
        self.options = options
        self.spec = LogMelSpec.from_dict(model.manifest.audio, f"{model.path}: manifest.json: audio")
        self.hop = hop_samples(self.spec, options.hop_s)

    def score(self, features: np.ndarray, places: list[Window]) -> list[WindowScore]:
        """Log-mel windows (W, frames, n_mels) and where they are -> one WindowScore each."""
        gate = self.options.rms_gate_dbfs
        loud = [i for i, place in enumerate(places) if gate is None or place.rms_dbfs >= gate]
        scores: dict[int, np.ndarray] = {}
        for start in range(0, len(loud), self.options.batch_size):
            chunk = loud[start:start + self.options.batch_size]
            out = self.model.predict(normalise(features[chunk], self.spec))
            scores.update(zip(chunk, out))
        result = []
        for i, place in enumerate(places):
            s = scores.get(i)
            decision = None if s is None else decide(s, self.model.manifest, self.options.thresholds)
            result.append(WindowScore(place.offset_s, place.duration_s, place.rms_dbfs, s, decision))
        return result

    def score_clip(self, samples: np.ndarray) -> Iterator[WindowScore]:
        """Every window of a clip at the model's rate, block by block."""
        size, hop = self.spec.window_samples, self.hop
        span = BLOCK_WINDOWS * hop  # samples from one block's first window to the next block's
        begin = 0
        # A block is cut exactly at window starts; the last takes the rest, whose tail window
        # clip_windows aligns to the clip's end as it would for the whole clip.
        while samples.size - begin >= span + size:
            block = samples[begin:begin + (BLOCK_WINDOWS - 1) * hop + size]
            yield from self._score_block(block, begin)
            begin += span
        yield from self._score_block(samples[begin:], begin)

    def _score_block(self, block: np.ndarray, begin: int) -> list[WindowScore]:
        features, places = clip_windows(block, self.spec, self.options.hop_s)
        shift = begin / self.spec.sample_rate
        places = [Window(p.offset_s + shift, p.duration_s, p.rms_dbfs) for p in places]
        return self.score(features, places)

    def score_live(self, window: LiveWindow) -> WindowScore:
        place = Window(window.offset_s, window.duration_s, window.rms_dbfs)
        if window.silent:
            return WindowScore(place.offset_s, place.duration_s, place.rms_dbfs, None, None)
        return self.score(log_mel(window.samples, self.spec)[None], [place])[0]


class RecordMaker:
    """WindowScores of one source, in time order -> records: per window and/or event phases.

    `origin` is the clip's start when times are offsets into a clip; None for a live source, whose
    times are Unix times."""

    def __init__(self, classifier: AudioClassifier, *, source: str, device: str, origin: datetime | None,
                 time_source: str, score_log: ScoreLog | None = None):
        self.classifier = classifier
        self.source = source
        self.device = device
        self.origin = origin
        self.time_source = time_source
        self.score_log = score_log
        m = classifier.model.manifest
        rules = classifier.options.events
        self.tracker = (None if rules is None else
                        EventTracker(m.labels, classifier.options.thresholds, rules, groups=alert_groups(m)))
        self.classified = 0
        self.gated = 0
        self.alerts = 0
        self._last_end: float | None = None

    def add(self, window: WindowScore, start: float) -> list[dict]:
        """`start`: the window's start in this maker's time base (clip offset, or Unix time)."""
        if window.scores is None:
            self.gated += 1
            return []
        self.classified += 1
        self.alerts += window.decision.alert
        end = start + window.duration_s
        self._last_end = end
        model = self.classifier.model
        records = []
        moment = (self.origin + timedelta(seconds=start) if self.origin is not None
                  else datetime.fromtimestamp(start, timezone.utc))
        if self.score_log is not None:
            self.score_log.add(moment, window.rms_dbfs, window.scores)
        if self.classifier.options.per_window:
            records.append(audio_window_record(
                scores=window.scores, labels=model.manifest.labels, decision=window.decision, model=model.identity,
                source=self.source, device=self.device, moment=moment, time_source=self.time_source,
                offset_s=window.offset_s, duration_s=window.duration_s, rms_dbfs=window.rms_dbfs,
                sample_rate=self.classifier.spec.sample_rate))
        if self.tracker is not None:
            records += [self._event(e) for e in self.tracker.observe(start, end, window.scores)]
        return records

    def close(self, time: float | None = None) -> list[dict]:
        """End open events at `time` (default: the end of the last classified window)."""
        if self.tracker is None:
            return []
        time = self._last_end if time is None else time
        return [self._event(e) for e in self.tracker.close(time)]

    def _event(self, event) -> dict:
        return event_record(event, kind="audio", source=self.source, device=self.device,
                            model=self.classifier.model.identity, rules=self.classifier.options.events,
                            origin=self.origin, labels=self.classifier.model.manifest.labels,
                            time_source=self.time_source)


def classify_clip(classifier: AudioClassifier, path: str | Path, device: str, *,
                  max_bytes: int = DEFAULT_MAX_BYTES, score_log: ScoreLog | None = None) -> Iterator[dict]:
    """Records for one audio file. Raises edge.audio.audiofile.AudioFileError (before the first record)
    when the file cannot be read; a torn file is read as far as it goes, with a warning logged."""
    path = Path(path)
    clip = read_audio(path, classifier.spec.sample_rate, max_bytes=max_bytes)
    if clip.warning:
        log.warning("%s", clip.warning)
    end, time_source = source_time(path)
    maker = RecordMaker(classifier, source=str(path), device=device,
                        origin=end - timedelta(seconds=clip.duration_s), time_source=time_source, score_log=score_log)
    for window in classifier.score_clip(clip.samples):
        yield from maker.add(window, window.offset_s)
    yield from maker.close(clip.duration_s)
    if maker.gated:
        gate = classifier.options.rms_gate_dbfs
        level = logging.WARNING if not maker.classified else logging.INFO
        log.log(level, "%s: %d of %d windows are below the RMS gate (%s dBFS) and were not classified%s", path,
                maker.gated, maker.gated + maker.classified, gate,
                "" if maker.classified else "; lower it with --rms-gate")


class LiveSession:
    """Microphone windows -> records, for one stream. `close()` ends open events."""

    def __init__(self, classifier: AudioClassifier, *, source: str, device: str,
                 recorder: AlertRecorder | None = None, score_log: ScoreLog | None = None):
        self.classifier = classifier
        self.maker = RecordMaker(classifier, source=source, device=device, origin=None, time_source="received",
                                 score_log=score_log)
        self.recorder = recorder

    def add(self, window: LiveWindow) -> list[dict]:
        scored = self.classifier.score_live(window)
        if self.recorder is not None:
            alert = scored.decision is not None and scored.decision.alert
            self.recorder.add(window, alert, scored.decision.label if alert else "", self.classifier.hop)
        return self.maker.add(scored, window.start_time)

    def run(self, windows: Iterable[LiveWindow]) -> Iterator[dict]:
        for window in windows:
            yield from self.add(window)

    def close(self) -> list[dict]:
        if self.recorder is not None:
            self.recorder.close()
        return self.maker.close()
