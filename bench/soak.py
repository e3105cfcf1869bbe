"""Soak: run `nv-edge run` for N minutes on a stream of frames and clips and print throughput, latency
from file arrival to the broker, and the service's memory at start and end.

    python bench/soak.py --minutes 10 [--fps 2] [--clip-every 10]

A local mosquitto (basestation/localbroker.py) and `nv-base listen` (which sends the receipts that let
records leave the outbox) run beside it. A frame "arrives" when it is renamed into the watched folder,
as a copy tool finishing would. The bench's own subscriber stamps each detection when the broker hands
it over, which is when the broker has taken the unit's PUBLISH and sent its PUBACK (QoS 1): that is
the "arrival to PUBACK" latency. Frames are a 1080p JPEG and the 576 px mosaic, alternating, both tiled
at the model's 48 px (880 and 144 tiles; the 1080p frame costs ~0.6 s of inference here); clips are the
15 s sample. Drop frames faster than the unit classifies them and the latency is the backlog's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from PIL import Image

from basestation.localbroker import BASE_USER, LocalBroker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEVICE = "soak-unit"
IMAGE_MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
AUDIO_MODEL = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
MOSAIC = ROOT / "samples" / "scenes" / "mosaic_a.png"
CLIP = ROOT / "samples" / "audio" / "composite_rain_chainsaw_rain.wav"
UNIT = ROOT / "systemd" / "naturevision-edge.service"


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """The Environment= of the service's unit file (malloc and thread settings): the bench runs the
    service as systemd would."""
    env = {}
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            env.update(item.split("=", 1) for item in shlex.split(line.split("=", 1)[1]))
    return env


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS), or its highest so far (VmHWM: a peak between two samples too)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def resident_by_mapping(pid: int, top: int = 8) -> str:
    """Where the resident memory is now (/proc/PID/smaps): anonymous mappings (malloc arenas, Python's
    object arenas, thread stacks), the main heap, and the largest files mapped (libraries)."""
    sizes: dict[str, int] = {}
    name = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            name = Path(fields[5]).name if len(fields) > 5 and fields[5].startswith("/") else (
                fields[5] if len(fields) > 5 else "anonymous")
        elif fields[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(fields[1])
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{n} {kb / 1024:.1f}" for n, kb in largest[:top])
    return f"{shown}, {len(largest) - top} more {sum(kb for _, kb in largest[top:]) / 1024:.1f} (MB)"


def make_frames(folder: Path) -> list[Path]:
    """A 1080p JPEG and the mosaic."""
    big = folder / "frame1080.jpg"
    Image.open(MOSAIC).convert("RGB").resize((1920, 1080), Image.Resampling.BILINEAR).save(big, quality=90)
    return [big, MOSAIC]


def config_text(work: Path, broker: LocalBroker, audio: bool) -> str:
    text = f"""[device]
id = "{DEVICE}"
state_dir = "{work / 'state'}"

[image]
model = "{IMAGE_MODEL}"
overlap = 0
threads = 1

[[image.sources]]
type = "folder"
path = "{work / 'incoming'}"
settle_s = 0.2
poll_s = 0.1
after = "delete"

[mqtt]
host = "127.0.0.1"
port = {broker.port}
password_file = "{broker.password_file(DEVICE)}"
heartbeat_s = 30
"""
    if audio:
        text += f"""
[audio]
model = "{AUDIO_MODEL}"
threads = 1

[audio.source]
type = "files"
path = "{work / 'clips'}"
settle_s = 0.2
poll_s = 0.1
after = "delete"
"""
    return text


class Arrivals:
    """Subscribes as the base station user and stamps each detection when the broker delivers it."""

    def __init__(self, broker: LocalBroker):
        self.seen: dict[str, tuple[float, dict]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-probe", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(BASE_USER, broker.passwords[BASE_USER])
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"naturevision/{DEVICE}/detection", qos=1)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        now = time.time()
        record = json.loads(message.payload)
        with self.lock:
            self.seen.setdefault(record["id"], (now, record))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=0.5, help="frames dropped per second (default 0.5)")
    parser.add_argument("--clip-every", type=float, default=10.0, help="seconds between clips (default 10; 0 = none)")
    parser.add_argument("--no-unit-env", action="store_true",
                        help="run the service without the Environment= of systemd/naturevision-edge.service")
    args = parser.parse_args()
    audio = AUDIO_MODEL.exists() and args.clip_every > 0
    work = Path(tempfile.mkdtemp(prefix="nv-soak-"))
    for d in ("state", "incoming", "clips", "staging"):
        (work / d).mkdir()
    broker = LocalBroker(work / "broker", [DEVICE]).start()
    config = work / "edge.toml"
    config.write_text(config_text(work, broker, audio))
    procs = []
    arrivals = None
    try:
        listener = subprocess.Popen([str(BIN / "nv-base"), *broker.listen_argv(work / "base.db", "nv-base-soak")],
                                    stdout=subprocess.DEVNULL, stderr=open(work / "listen.log", "w"))
        procs.append(listener)
        arrivals = Arrivals(broker)
        log = open(work / "service.log", "w")
        env = {} if args.no_unit_env else unit_environment()
        service = subprocess.Popen([str(BIN / "nv-edge"), "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, **env))
        procs.append(service)
        deadline = time.monotonic() + 60
        while "msg=started" not in (work / "service.log").read_text():
            if service.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("nv-edge run did not start:\n" + (work / "service.log").read_text())
            time.sleep(0.1)
        frames = make_frames(work)
        rss = [(0.0, rss_mb(service.pid))]
        dropped: dict[str, float] = {}  # file name -> arrival time
        start = time.monotonic()
        end = start + args.minutes * 60
        next_frame, next_clip, next_rss, i = start, start, start + 10, 0
        print(f"soak: {args.minutes} min, {args.fps} frame(s)/s{f', a 15 s clip every {args.clip_every} s' if audio else ''}; "
              f"work folder {work}; service environment from the unit file: "
              f"{' '.join(f'{k}={v}' for k, v in env.items()) or 'none'}", flush=True)
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_frame:
                src = frames[i % len(frames)]
                name = f"f{i:06d}{src.suffix}"
                shutil.copy(src, work / "staging" / name)
                os.rename(work / "staging" / name, work / "incoming" / name)  # arrives whole, at once
                dropped[name] = time.time()
                i += 1
                next_frame += 1.0 / args.fps
            if audio and now >= next_clip:
                name = f"c{int(now - start):06d}.wav"
                shutil.copy(CLIP, work / "staging" / name)
                os.rename(work / "staging" / name, work / "clips" / name)
                dropped[name] = time.time()
                next_clip += args.clip_every
            if now >= next_rss:
                rss.append((now - start, rss_mb(service.pid)))
                next_rss += 10
            time.sleep(0.01)
        # let the last items through
        settle = time.monotonic() + 30
        while time.monotonic() < settle and _images_seen(arrivals) < sum(1 for n in dropped if n.startswith("f")):
            time.sleep(0.2)
        rss.append((time.monotonic() - start, rss_mb(service.pid)))
        peak = rss_mb(service.pid, "VmHWM")
        where = resident_by_mapping(service.pid)
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        report(args, dropped, arrivals, rss, time.monotonic() - start)
        print(f"peak RSS (VmHWM, the highest it ever was): {peak:.1f} MB")
        print(f"resident at the end, by mapping: {where}")
    finally:
        if arrivals is not None:
            arrivals.close()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        broker.stop()
    return 0


def _images_seen(arrivals: Arrivals) -> int:
    with arrivals.lock:
        return sum(1 for _, r in arrivals.seen.values() if r["kind"] == "image")


def report(args, dropped: dict[str, float], arrivals: Arrivals, rss: list[tuple[float, float]], elapsed: float) -> None:
    with arrivals.lock:
        seen = list(arrivals.seen.values())
    image_lat, first_audio = [], {}
    for at, record in seen:
        name = Path(record["source"]).name
        if record["kind"] == "image" and name in dropped:
            image_lat.append(at - dropped[name])
        elif record["kind"] == "audio":
            clip = Path(record["source"]).name
            if clip in dropped:
                first_audio[clip] = min(first_audio.get(clip, at), at)
    frames = sum(1 for n in dropped if n.startswith("f"))
    clips = len(dropped) - frames
    print(f"dropped {frames} frame(s) and {clips} clip(s) in {args.minutes:.1f} min; broker delivered {len(seen)} "
          f"record(s) ({len(image_lat)} frame records, {len(seen) - len(image_lat)} audio event records)")
    print(f"throughput: {len(image_lat) / (args.minutes * 60):.2f} frames/s classified and delivered "
          f"({len(seen) / elapsed:.2f} records/s overall)")
    if image_lat:
        q = statistics.quantiles(image_lat, n=100, method="inclusive")
        print(f"frame arrival -> broker (PUBACK) latency: p50 {statistics.median(image_lat) * 1000:.0f} ms, "
              f"p99 {q[98] * 1000:.0f} ms, max {max(image_lat) * 1000:.0f} ms")
    if first_audio:
        lat = [first_audio[c] - dropped[c] for c in first_audio]
        print(f"clip arrival -> its first event record at the broker: p50 {statistics.median(lat) * 1000:.0f} ms "
              f"over {len(lat)} clip(s) (15 s of audio each)")
    shown = [r for i, r in enumerate(rss) if i in (0, len(rss) - 1) or round(r[0]) % 60 == 0]
    print("service RSS (MB), once a minute: " + ", ".join(f"{t:.0f}s {mb:.1f}" for t, mb in shown))
    later = [mb for t, mb in rss if t >= 60]
    if later:
        print(f"after the first minute: min {min(later):.1f} MB, max {max(later):.1f} MB")
    print(f"RSS at start {rss[0][1]:.1f} MB, at end {rss[-1][1]:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
