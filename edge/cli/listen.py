"""The audio side of `nv-edge`: `nv-edge listen` (a microphone, until stopped) and the audio files
of `nv-edge classify` (dispatched here by suffix, see `AudioFiles`).

`listen` prints the records it makes (JSON lines or a table) and, with `--outbox`, queues them:
event records always, a record per window only with `--per-window`; with `--score-log`, every
window's scores go to a file for calibration. SIGINT/SIGTERM end open events, print the capture
counts (windows, silent, dropped, overflows) on stderr and exit 0.

Events follow the rules the model's manifest recommends (its `events`; the defaults when it has
none), with any `--event KEY=VALUE` over them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from edge.audio.alert_recording import AlertRecorder
from edge.audio.audiofile import AudioFileError
from edge.audio.listen import AudioClassifier, AudioOptions, LiveSession, classify_clip
from edge.audio.microphone import (
    DEFAULT_HOP_S,
    DEFAULT_RMS_GATE_DBFS,
    Microphone,
    MicrophoneError,
    import_sounddevice,
    input_devices,
)
from edge.audio.score_log import DEFAULT_HOURS, DEFAULT_MAX_MB, ScoreLog, ScoreLogError
from edge.cli.arguments import EXIT_FAILED, EXIT_USAGE, event_rule, positive, shipped_model, threshold
from edge.cli.table import TableWriter
from edge.decisions.alerts import resolve_thresholds
from edge.decisions.events import EventRules, layered_rules
from edge.decisions.groups import alert_groups
from edge.delivery.outbox import Outbox
from edge.model.bundle import BundleError
from edge.model.interpreter import BACKENDS
from edge.model.loaded import load_model
from edge.records.record import default_device, error_record

DEFAULT_AUDIO_MODEL_NAME = "mining-audio/mining-audio.nvm"


def default_audio_model_path() -> Path | None:
    return shipped_model("NV_AUDIO_MODEL", DEFAULT_AUDIO_MODEL_NAME)


def _hop(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 0.5, got {text!r}") from None
    if not 0.01 <= value <= 60:
        raise argparse.ArgumentTypeError(f"hop must be from 0.01 to 60 s, got {value}")
    return value


def _gate(text: str) -> float | None:
    if text.lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dBFS like -60 (or 'off'), got {text!r}") from None
    if not -200 <= value <= 0:
        raise argparse.ArgumentTypeError(f"the RMS gate is in dBFS, from -200 to 0, got {value}")
    return value


def _amount(what: str):
    """A positive number of `what` (seconds, hours, MB)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{what} must be positive, got {value}")
        return value

    return parse


def _audio_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio-model", type=Path, metavar="PATH",
                   help=f"audio model bundle; default: $NV_AUDIO_MODEL or models/{DEFAULT_AUDIO_MODEL_NAME}")
    p.add_argument("--hop", type=_hop, default=DEFAULT_HOP_S, metavar="S",
                   help=f"seconds between audio windows (default {DEFAULT_HOP_S}; a window is ~1 s)")
    p.add_argument("--rms-gate", type=_gate, default=DEFAULT_RMS_GATE_DBFS, metavar="DBFS",
                   help=f"windows quieter than this are not classified (default {DEFAULT_RMS_GATE_DBFS:g}; 'off')")
    p.add_argument("--event", type=event_rule, action="append", default=[], metavar="KEY=VALUE",
                   help="an event rule over the model's recommended ones (repeatable), e.g. rule=mean, window=6, "
                        "k=2, n=3, hysteresis=0.1, cooldown_s=30")


def add_classify_arguments(c: argparse.ArgumentParser) -> None:
    """The audio options of `nv-edge classify`."""
    a = c.add_argument_group("audio files (.wav, .flac, .ogg)")
    _audio_options(a)
    a.add_argument("--events", action="store_true",
                   help="one record per event (start, end) instead of one per window (--event implies it)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", metavar="NAME|INDEX", help="input device: part of its name, or its index "
                   "(default: the system's default input); see --list-devices")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    _audio_options(p)
    p.add_argument("--threshold", type=threshold, action="append", default=[], metavar="[GROUP=]T",
                   help="alert threshold in [0, 1], or GROUP=T for one alert group (an alert label when the model "
                        "has no groups; repeatable); default: the manifest's")
    p.add_argument("--duration", type=_amount("seconds"), metavar="S", help="stop after S seconds of audio (default: until stopped)")
    p.add_argument("--outbox", type=Path, help="queue records in this outbox for `nv-edge publish` (events always)")
    p.add_argument("--per-window", action="store_true", help="also a record for every classified window")
    p.add_argument("--record-dir", type=Path, metavar="DIR",
                   help="keep WAV segments of alert windows here (nothing is recorded without it)")
    p.add_argument("--score-log", type=Path, metavar="PATH",
                   help="also write every window's scores to this JSON-lines file, for calibration (docs/score-log.md)")
    p.add_argument("--score-log-hours", type=_amount("hours"), default=DEFAULT_HOURS, metavar="H",
                   help=f"stop the score log this long after it was started (default {DEFAULT_HOURS:g})")
    p.add_argument("--score-log-mb", type=_amount("MB"), default=DEFAULT_MAX_MB, metavar="MB",
                   help=f"stop the score log at this size (default {DEFAULT_MAX_MB:g})")
    p.add_argument("--format", choices=("json", "table"), default="json", help="json: one record per line (default)")
    p.add_argument("--unit", metavar="ID", help="device id in records (default: $NV_DEVICE or the host name)")
    p.add_argument("--backend", choices=tuple(BACKENDS), help="force an interpreter")
    p.add_argument("--threads", type=positive("threads"), default=1, help="interpreter threads (default 1)")


def open_classifier(path: Path | None, overrides: dict[str, float], *, hop_s: float, rms_gate_dbfs: float | None,
                    per_window: bool, events: dict | None, backend: str | None = None,
                    threads: int | None = None, strict: bool = True) -> AudioClassifier:
    """Load the audio model and its options. `events`: None for no events, else the command line's
    rule keys (over the manifest's). `strict=False` ignores threshold overrides naming neither groups
    nor labels this model alerts on (they are for the image model of the same run). A bad override
    is a ValueError naming its option."""
    path = path or default_audio_model_path()
    if path is None:
        raise BundleError(f"no audio model given and no default found (models/{DEFAULT_AUDIO_MODEL_NAME}); "
                          "pass --audio-model PATH or set $NV_AUDIO_MODEL")
    model = load_model(path, backend=backend, num_threads=threads, task="audio")
    if not strict:
        overrides = {k: v for k, v in overrides.items() if k == "*" or k in threshold_keys(model.manifest)}
    try:
        thresholds = resolve_thresholds(model.manifest, overrides)
    except ValueError as exc:
        raise ValueError(f"--threshold: {exc}") from None
    rules = None if events is None else event_rules(model, events)
    options = AudioOptions(thresholds=thresholds, hop_s=hop_s, rms_gate_dbfs=rms_gate_dbfs, per_window=per_window,
                           events=rules)
    return AudioClassifier(model, options)


def threshold_keys(manifest) -> set[str]:
    """What a --threshold NAME=T may name for this model (an alert label inside a group is refused
    later, with the groups named)."""
    return set(alert_groups(manifest)) | set(manifest.alert_labels)


def event_rules(model, keys: dict) -> EventRules:
    """The manifest's recommended rules with the command line's keys over them. A bad manifest table
    is a BundleError, a bad key a ValueError naming --event."""
    recommended = (model.manifest.events, f"{model.path}: manifest.json: events")
    try:
        layered_rules(recommended)
    except ValueError as exc:
        raise BundleError(f"{exc}; convert the model again") from None
    return layered_rules(recommended, (keys or None, "--event"))


class AudioFiles:
    """The audio files of one `nv-edge classify` run. The model is loaded on first use; when none
    was named and no default exists, each audio file gets an error record saying so (a folder of
    images with a stray clip still classifies its images). A named model that fails to load
    stops the run (BundleError), as a broken image model does."""

    def __init__(self, args: argparse.Namespace, overrides: dict[str, float], *, strict: bool):
        self.args = args
        self.overrides = overrides
        self.strict = strict
        self._classifier: AudioClassifier | None = None
        self._missing: str | None = None
        if args.audio_model is None and default_audio_model_path() is None:
            self._missing = (f"no audio model: pass --audio-model PATH or set $NV_AUDIO_MODEL "
                             f"(models/{DEFAULT_AUDIO_MODEL_NAME} is not there)")
        else:
            events = args.events or bool(args.event)
            self._classifier = open_classifier(
                args.audio_model, overrides, hop_s=args.hop, rms_gate_dbfs=args.rms_gate, per_window=not events,
                events=dict(args.event) if events else None, backend=args.backend, threads=args.threads,
                strict=strict)

    @property
    def threshold_keys(self) -> set[str]:
        """The --threshold names that are this audio model's, not the image model's."""
        return threshold_keys(self._classifier.model.manifest) if self._classifier else set()

    def records(self, path: Path, device: str):
        """Records of one file; an unreadable file gives one error record naming it."""
        source = str(path)
        if self._classifier is None:
            yield error_record(source=source, error=f"{source}: {self._missing}", device=device, kind="audio")
            return
        identity = self._classifier.model.identity
        try:
            yield from classify_clip(self._classifier, path, device, max_bytes=self.args.max_bytes)
        except AudioFileError as exc:
            yield error_record(source=source, error=str(exc), device=device, kind="audio", model=identity)
        except Exception as exc:  # noqa: BLE001 - one bad clip must never stop a batch
            yield error_record(source=source, error=f"{source}: unexpected {type(exc).__name__}: {exc}",
                               device=device, kind="audio", model=identity)


# -- nv-edge listen -------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        return _list_devices()
    try:
        classifier = open_classifier(args.audio_model, dict(args.threshold), hop_s=args.hop,
                                     rms_gate_dbfs=args.rms_gate, per_window=args.per_window, events=dict(args.event),
                                     backend=args.backend, threads=args.threads)
    except ValueError as exc:
        print(f"nv-edge listen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    device = args.unit or default_device()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    outbox = recorder = mic = scores = None
    try:
        outbox = Outbox(args.outbox) if args.outbox else None
        recorder = AlertRecorder(args.record_dir, classifier.spec.sample_rate) if args.record_dir else None
        if args.score_log:
            scores = ScoreLog(args.score_log, classifier.model, hours=args.score_log_hours,
                              max_bytes=int(args.score_log_mb * 2**20), hop_s=args.hop)
        mic = Microphone(classifier.spec, args.device, hop_s=args.hop, rms_gate_dbfs=args.rms_gate)
        emit = _emitter(args.format, outbox)
        with mic:
            session = LiveSession(classifier, source=f"microphone:{mic.device.name}", device=device, recorder=recorder,
                                  score_log=scores)
            print(f"nv-edge listen: {mic.device}, {mic.device_rate} Hz"
                  f"{'' if mic.device_rate == mic.rate else f' resampled to {mic.rate} Hz'}, hop {args.hop} s, "
                  f"model {classifier.model.path.name}; Ctrl-C to stop", file=sys.stderr)
            try:
                for window in mic.windows(stop, args.duration):
                    for record in session.add(window):
                        emit(record)
                if not stop.is_set() and args.duration is None:
                    print(f"nv-edge listen: the input stream from {mic.device} ended by itself", file=sys.stderr)
            finally:
                for record in session.close():  # open events end where the audio did
                    emit(record)
    except (MicrophoneError, ScoreLogError) as exc:
        print(f"nv-edge listen: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if outbox is not None:
            outbox.close()
        if recorder is not None:
            recorder.close()
        if scores is not None:
            scores.close()
            print(f"nv-edge listen: {scores.lines} score line(s) added to {scores.path}"
                  f"{f' (stopped: {scores.stopped})' if scores.stopped else ''}", file=sys.stderr)
        if mic is not None and mic.device is not None:
            s = mic.stats()
            saved = f", {len(recorder.written)} WAV segment(s) in {args.record_dir}" if recorder else ""
            print(f"nv-edge listen: {s.windows} windows ({s.silent} below the RMS gate), {s.dropped} dropped "
                  f"(inference behind), {s.overflows} input overflows, {s.lost_s:.1f} s of audio lost{saved}",
                  file=sys.stderr)
    return 0


def _emitter(fmt: str, outbox: Outbox | None):
    writer = None
    if fmt == "table":
        writer = TableWriter(sys.stdout)

    def emit(record: dict) -> None:
        if outbox is not None:  # first: a record on its way somewhere is a record on the card
            outbox.put(record)
        if writer is not None:
            writer.write(record)
        else:
            sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
            sys.stdout.flush()

    return emit


def _list_devices() -> int:
    try:
        sd = import_sounddevice()
        devices = input_devices(sd)
    except MicrophoneError as exc:
        print(f"nv-edge listen: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not devices:
        print("no input devices (is the microphone plugged in? `arecord -l` lists what ALSA sees)")
    for d in devices:
        print(d)
    return 0

