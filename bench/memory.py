"""Where the memory of `nv-edge run` goes, in one process: resident memory (VmRSS) after each start-up step
as the service takes them, then the peak (VmHWM, reset before each item through /proc/self/clear_refs) of
a 1080p JPEG frame and of the 15 s clip, each three times, with both shipped models loaded.

    python bench/memory.py [--no-unit-env]

Runs with the Environment= of systemd/naturevision-edge.service (the malloc setting), as the service does.
To compare with older code, run it with PYTHONPATH pointing at a checkout of that code: the figures come
from whichever `edge` is imported.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unit_environment() -> dict[str, str]:
    """The Environment= of the service's unit (bench/soak.py's, without its imports: they would be counted)."""
    env = {}
    for line in (ROOT / "systemd" / "naturevision-edge.service").read_text().splitlines():
        if line.startswith("Environment="):
            env.update(item.split("=", 1) for item in shlex.split(line.split("=", 1)[1]))
    return env


def status(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> float:
    """Start VmHWM again from VmRSS (Linux: clear_refs 5); returns VmRSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return status()


class Steps:
    def __init__(self):
        self.last = status()
        print(f"{'Python started':58s} {self.last:6.1f} MB")

    def __call__(self, name: str) -> None:
        now = status()
        print(f"{name:58s} {now:6.1f} MB  {now - self.last:+5.1f}")
        self.last = now


def main() -> int:
    if "--no-unit-env" not in sys.argv:
        env = unit_environment()
        if any(os.environ.get(k) != v for k, v in env.items()):  # malloc reads it at start: start again with it
            os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **env))
    step = Steps()
    import numpy  # noqa: F401
    step("import numpy")
    import PIL.Image
    step("import PIL.Image")
    import paho.mqtt.client  # noqa: F401
    step("import paho.mqtt.client (ssl, libssl, libcrypto)")
    import sqlite3  # noqa: F401
    step("import sqlite3")
    import edge.cli.main
    import edge.cli.run
    step("edge.cli.main with the run command")
    import edge.service.run  # noqa: F401
    step("edge.service.run (config, pipelines, publisher, sources)")
    from edge.model.interpreter import _select

    _select(None)
    step("the interpreter (LiteRT) imported")
    from edge.audio.listen import AudioClassifier, AudioOptions, classify_clip
    from edge.image.classify import ClassifyOptions, classify_frame
    from edge.model.loaded import load_model

    image = load_model(ROOT / "models" / "mining-s2" / "mining-s2.nvm", num_threads=1)
    step("image model (mining-s2, TTA 4)")
    audio = load_model(ROOT / "models" / "mining-audio" / "mining-audio.nvm", num_threads=1)
    step("audio model (mining-audio)")

    frame = Path(tempfile.mkdtemp(prefix="nv-memory-")) / "frame1080.jpg"
    scene = PIL.Image.open(ROOT / "samples" / "scenes" / "mosaic_a.png").convert("RGB")
    scene.resize((1920, 1080), PIL.Image.Resampling.BILINEAR).save(frame, quality=90)  # as bench/soak.py makes it
    clip = ROOT / "samples" / "audio" / "composite_rain_chainsaw_rain.wav"
    options = ClassifyOptions(thresholds=dict(image.manifest.thresholds), overlap=0)
    listener = AudioClassifier(audio, AudioOptions(thresholds=dict(audio.manifest.thresholds)))
    for name, work in (("1080p JPEG frame (880 tiles)", lambda: classify_frame(image, frame, options)),
                       ("15 s clip", lambda: list(classify_clip(listener, clip, "bench")))):
        for i in range(3):
            before = reset_peak()
            work()
            print(f"{name}, #{i + 1}: peak {status('VmHWM'):.1f} MB = {before:.1f} before "
                  f"+ {status('VmHWM') - before:.1f} in flight; {status():.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
