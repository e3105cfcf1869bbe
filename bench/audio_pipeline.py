"""How much of one core the microphone path needs: live-style streaming of a long recording through
the real capture path (edge.audio.microphone: callback -> ring buffer -> resampler -> windows every hop),
the front end (log-mel), the model, decisions, events and records, with no real-time sleeping.

The recording is the clips in samples/audio/ (read at the device's rate) looped to --minutes. The stream plays one device block
each time the consumer looks at it, so the consumer is never behind and nothing is dropped: every
window is classified, and the RMS gate is off (the worst case: nothing is skipped as silence).

It prints the real-time factor (processing time / audio time; 1.0 = one core just keeps up), the
time per window of each stage, windows/s, and the peak RSS of the process.

    .venv/bin/python bench/audio_pipeline.py [--model models/mining-audio/mining-audio.nvm] [--minutes 10]
        [--device-rate 48000] [--hop 0.5] [--threads 1] [--backend litert]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.audio.audiofile import read_audio  # noqa: E402
from edge.audio.listen import AudioClassifier, AudioOptions, RecordMaker, WindowScore  # noqa: E402
from edge.audio.microphone import Microphone  # noqa: E402
from edge.decisions.alerts import decide, resolve_thresholds  # noqa: E402
from edge.decisions.events import EventRules  # noqa: E402
from edge.features.logmel import log_mel, normalise  # noqa: E402
from edge.model.loaded import load_model  # noqa: E402

DEFAULT_MODEL = ROOT / "models" / "mining-audio" / "mining-audio.nvm"


class SteppedStream:
    """The InputStream surface edge.audio.microphone uses. Reading `active` plays the next block of the
    looped recording into the callback, on the consumer's thread: capture runs as fast as the
    consumer takes it, and the long recording is never held in memory."""

    def __init__(self, loop: np.ndarray, total: int, *, blocksize: int, callback, **_):
        self.loop, self.total, self.blocksize, self.callback = loop, total, blocksize, callback
        self.position = 0
        self.feed_s = 0.0

    def start(self):
        pass

    @property
    def active(self) -> bool:
        if self.position >= self.total:
            return False
        start = time.perf_counter()
        size = min(self.blocksize, self.total - self.position)
        block = np.take(self.loop, np.arange(self.position, self.position + size), mode="wrap")
        self.position += size
        self.callback(block[:, None], size, None, types.SimpleNamespace(input_overflow=False))
        self.feed_s += time.perf_counter() - start
        return True

    def stop(self):
        pass

    def close(self):
        pass


def stepped_sounddevice(loop: np.ndarray, total: int, rate: int) -> types.ModuleType:
    module = types.ModuleType("sounddevice")
    module.query_devices = lambda: [{"name": "bench recording", "index": 0, "max_input_channels": 1,
                                     "default_samplerate": float(rate)}]
    module.default = types.SimpleNamespace(device=[0, -1])

    def check_input_settings(device=None, channels=None, dtype=None, samplerate=None):
        if samplerate != rate:
            raise ValueError("Invalid sample rate")

    module.check_input_settings = check_input_settings
    module.InputStream = lambda **kwargs: module.__dict__.setdefault("stream", SteppedStream(loop, total, **kwargs))
    return module


def one_loop(rate: int) -> np.ndarray:
    """The sample clips back to back (25 s), at the device's rate."""
    return np.concatenate([read_audio(path, rate).samples for path in sorted((ROOT / "samples" / "audio").glob("*.wav"))])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None,
                        required=not DEFAULT_MODEL.is_file(), help="audio model bundle (default: the shipped one)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--device-rate", type=int, default=None,
                        help="the microphone's rate (default: the model's; 48000 adds the resampler)")
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()

    model = load_model(args.model, backend=args.backend, num_threads=args.threads)
    classifier = AudioClassifier(model, AudioOptions(thresholds=resolve_thresholds(model.manifest), hop_s=args.hop,
                                                     rms_gate_dbfs=None, per_window=True, events=EventRules()))
    spec = classifier.spec
    device_rate = args.device_rate or spec.sample_rate
    total = int(args.minutes * 60 * device_rate)
    audio_s = total / device_rate
    sys.modules["sounddevice"] = stepped_sounddevice(one_loop(device_rate), total, device_rate)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    maker = RecordMaker(classifier, source="microphone:bench", device="bench", origin=None, time_source="received")
    capture = front = invoke = rest = 0.0
    windows = alerts = events = 0
    started = time.perf_counter()
    with Microphone(spec, 0, hop_s=args.hop, rms_gate_dbfs=None) as mic:
        stream = sys.modules["sounddevice"].stream
        it = mic.windows()
        while True:
            t0 = time.perf_counter()
            window = next(it, None)
            t1 = time.perf_counter()
            capture += t1 - t0
            if window is None:
                break
            x = normalise(log_mel(window.samples, spec)[None], spec)
            t2 = time.perf_counter()
            scores = model.runner.run(x)[0]
            t3 = time.perf_counter()
            scored = WindowScore(window.offset_s, window.duration_s, window.rms_dbfs, scores,
                                 decide(scores, model.manifest, classifier.options.thresholds))
            records = maker.add(scored, window.offset_s)
            t4 = time.perf_counter()
            front += t2 - t1
            invoke += t3 - t2
            rest += t4 - t3
            windows += 1
            alerts += scored.decision.alert
            events += sum("event" in r for r in records)
    total = time.perf_counter() - started
    events += len(maker.close())
    stats = mic.stats()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    per = 1000.0 / max(1, windows)
    print(f"model {args.model.name} ({model.manifest.version}), backend {model.runner.backend} "
          f"{model.runner.backend_version}, {args.threads} thread(s); {audio_s / 60:.1f} min of samples/audio looped, "
          f"device {device_rate} Hz -> model {spec.sample_rate} Hz, hop {args.hop} s, window {spec.window_s:.3f} s")
    print(f"{'stage':<44} {'ms/window':>10} {'share':>7}")
    for name, seconds in (("capture: callback + ring + resample + cut", capture),
                          ("  of which the callback (ring copy)", stream.feed_s),
                          ("front end: log-mel + normalise", front),
                          ("invoke (quantize + interpreter)", invoke),
                          ("decision + events + records", rest)):
        print(f"{name:<44} {seconds * per:>10.3f} {seconds / total:>6.1%}")
    print(f"{'whole path':<44} {total * per:>10.3f}")
    print(f"windows {windows} ({stats.dropped} dropped), {windows / total:,.0f} windows/s, "
          f"{alerts} alert windows, {events} event records")
    print(f"real-time factor {total / audio_s:.4f} (processing / audio time; one core keeps up below 1.0)")
    print(f"peak RSS {peak:.0f} MB ({rss_before:.0f} MB before streaming)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
