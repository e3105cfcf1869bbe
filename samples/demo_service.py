"""The whole path on one machine, offline: a local mosquitto on a free loopback port, `nv-edge run` on the
shipped sample frames and clip, `nv-base listen` storing what arrives, `nv-base list` printing it. Then
everything it started is stopped. Run by `make demo`:

    python samples/demo_service.py OUTDIR

The broker uses the project's own ACL (systemd/mosquitto/naturevision.acl) and passwords, so the unit may
only write under naturevision/<its id>/, as in the field; TLS is left out on loopback (the field config
in systemd/edge.example.toml has it).
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from basestation.localbroker import LocalBroker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEVICE = "demo-unit"
IMAGE_MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
AUDIO_MODEL = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
FRAMES = sorted((ROOT / "samples" / "tiles").glob("*.png")) + [ROOT / "samples" / "scenes" / "mosaic_a.png"]
CLIP = ROOT / "samples" / "audio" / "composite_rain_chainsaw_rain.wav"


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return con.execute("SELECT count(*) FROM detections").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def main(out: Path) -> int:
    work = out.resolve() / "service"
    shutil.rmtree(work, ignore_errors=True)
    for d in ("state", "incoming", "clips"):
        (work / d).mkdir(parents=True)
    broker = LocalBroker(work / "broker", [DEVICE])
    config = work / "edge.toml"
    text = f"""[device]
id = "{DEVICE}"
state_dir = "{work / 'state'}"
location = {{ lat = -3.4653, lon = -62.2159 }}

[image]
model = "{IMAGE_MODEL}"
overlap = 0

[[image.sources]]
type = "folder"
path = "{work / 'incoming'}"
settle_s = 0.3
poll_s = 0.2

[mqtt]
host = "127.0.0.1"
port = {broker.port}
password_file = "{broker.password_file(DEVICE)}"
heartbeat_s = 10
"""
    if AUDIO_MODEL.exists():
        text += f"""
[audio]
model = "{AUDIO_MODEL}"

[audio.source]
type = "files"
path = "{work / 'clips'}"
settle_s = 0.3
poll_s = 0.2
"""
    config.write_text(text)
    db = work / "base.db"
    procs: list[subprocess.Popen] = []

    def spawn(name: str, argv: list[str]) -> subprocess.Popen:
        log = open(work / f"{name}.log", "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        print(f"== mosquitto on 127.0.0.1:{broker.port} (passwords + the project's ACL; logs in {work})")
        broker.start()
        print("== nv-base listen: stores what arrives in", db)
        spawn("nv-base-listen", [str(BIN / "nv-base"), *broker.listen_argv(db, "nv-base-demo")])
        print("== nv-edge run --config", config)
        edge = spawn("nv-edge-run", [str(BIN / "nv-edge"), "run", "--config", str(config)])
        wait(lambda: "msg=started" in (work / "nv-edge-run.log").read_text() or edge.poll() is not None, 60, "nv-edge run")
        if edge.poll() is not None:
            raise SystemExit("demo: nv-edge run exited:\n" + (work / "nv-edge-run.log").read_text())
        for frame in FRAMES:  # copied in as a drone controller or SD card reader would
            shutil.copy(frame, work / "incoming" / frame.name)
        expected = len(FRAMES)
        if AUDIO_MODEL.exists():
            shutil.copy(CLIP, work / "clips" / CLIP.name)
        print(f"== dropped {len(FRAMES)} frame(s){' and 1 clip' if AUDIO_MODEL.exists() else ''} into the watched folders")
        wait(lambda: stored(db) >= expected + (2 if AUDIO_MODEL.exists() else 0), 120, "the detections at the base station")
        time.sleep(2)  # late phases (an event's end) and the first heartbeat
        print("== nv-edge run: SIGTERM (a clean stop says `stopped`)")
        edge.send_signal(signal.SIGTERM)
        edge.wait(timeout=60)
        time.sleep(1)
        print("== nv-base list")
        subprocess.run([str(BIN / "nv-base"), "list", "--db", str(db), "--limit", "30"], check=True)
        print("== the service's log (logfmt for journald), last lines:")
        for line in (work / "nv-edge-run.log").read_text().splitlines()[-4:]:
            print("  ", line)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        broker.stop()
        print("== stopped everything the demo started")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")))
