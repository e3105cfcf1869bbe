"""End to end: `nv-edge run` as a subprocess with a config file, a watched folder of frames, a folder of
clips, a real mosquitto with TLS and passwords, and `nv-base listen` storing what arrives.

SIGTERM leaves `stopped` retained, SIGKILL leaves `offline` (the Last Will), and a restart classifies
nothing twice. sd_notify goes to a datagram socket the test binds, as systemd's would be."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import wait_for
from delivery import pki, site  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
IMAGE_MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
AUDIO_MODEL = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
TILES = sorted((ROOT / "samples" / "tiles").glob("*.png"))
CLIP = ROOT / "samples" / "audio" / "composite_rain_chainsaw_rain.wav"


class NotifySocket:
    """What systemd would receive on $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def count(self, line: str) -> int:
        return sum(line in m.split("\n") for m in list(self.messages))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def write_config(tmp: Path, site, *, audio: bool) -> Path:
    cert, key = site.pki.clients["unit-1"]
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "clips").mkdir(exist_ok=True)
    text = f"""
[device]
id = "unit-1"
state_dir = "{tmp / 'state'}"
location = {{ lat = -3.4653, lon = -62.2159 }}

[image]
model = "{IMAGE_MODEL}"

[[image.sources]]
type = "folder"
path = "{tmp / 'in'}"
settle_s = 0.3
poll_s = 0.1
after = "move"
done_dir = "{tmp / 'done'}"

[mqtt]
host = "127.0.0.1"
port = {site.broker.port}
tls = {{ ca = "{site.pki.ca}", cert = "{cert}", key = "{key}" }}
password_file = "{site.password_file('unit-1')}"
heartbeat_s = 5
max_backoff_s = 1
receipt_timeout_s = 2
"""
    if audio:
        text += f"""
[audio]
model = "{AUDIO_MODEL}"
hop_s = 0.5
per_window = true

[audio.source]
type = "files"
path = "{tmp / 'clips'}"
settle_s = 0.3
poll_s = 0.1
"""
    path = tmp / "edge.toml"
    path.write_text(text)
    return path


def start_service(log_dir: Path, config: Path, notify: NotifySocket) -> subprocess.Popen:
    log = open(log_dir / f"service-{time.monotonic_ns()}.log", "w")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="2000000",
               WATCHDOG_PID="")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    proc.log_path = Path(log.name)
    return proc


def stored(db: Path) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=30) as con:
            con.row_factory = sqlite3.Row
            return con.execute("SELECT id, kind, source, label, alert, lat FROM detections").fetchall()
    except sqlite3.OperationalError:  # no such table: nv-base is still migrating the new file
        return []


def classified_by_cli() -> dict[str, str]:
    from edge.cli.classify import classify_path
    from edge.decisions.alerts import resolve_thresholds
    from edge.image.classify import ClassifyOptions
    from edge.model.loaded import load_model

    model = load_model(IMAGE_MODEL)
    options = ClassifyOptions(thresholds=resolve_thresholds(model.manifest))
    return {t.name: classify_path(model, t, options, "x")["label"] for t in TILES}


def test_service_end_to_end(site, tmp_path):
    audio = AUDIO_MODEL.exists()
    site.broker.start()
    db = tmp_path / "base.db"
    listener = site.listener(db)
    listener.wait_log("listening on")
    config = write_config(tmp_path, site, audio=audio)
    notify = NotifySocket(tmp_path / "notify.sock")
    service = start_service(site.dir, config, notify)
    try:
        wait_for(lambda: notify.count("READY=1") == 1 or service.poll() is not None, 60, "READY=1")
        assert service.poll() is None, service.log_path.read_text()
        os.mkfifo(tmp_path / "in" / "pipe.png")  # named like a frame; opening it would block the pipeline
        for tile in TILES:
            shutil.copy(tile, tmp_path / "in" / tile.name)
        if audio:
            shutil.copy(CLIP, tmp_path / "clips" / CLIP.name)
        wait_for(lambda: len([r for r in stored(db) if r["kind"] == "image"]) == len(TILES), 60,
                 "every frame's record at the base station")
        images = [r for r in stored(db) if r["kind"] == "image"]
        assert sorted(Path(r["source"]).name for r in images) == sorted(t.name for t in TILES)
        assert all(r["lat"] == pytest.approx(-3.4653) for r in images)  # the config's static location
        # the service decides as `nv-edge classify` does with the same model
        assert {Path(r["source"]).name: r["label"] for r in images} == classified_by_cli()
        assert sorted(p.name for p in (tmp_path / "done").iterdir()) == sorted(t.name for t in TILES)
        if audio:
            # 15 s of audio at a 0.5 s hop: 29 windows, every one recorded (per_window), events besides
            wait_for(lambda: sum(r["kind"] == "audio" for r in stored(db)) >= 29, 60, "the clip's window records")
        wait_for(lambda: notify.count("WATCHDOG=1") >= 1, 30, "a watchdog ping")
        assert site.retained("naturevision/unit-1/status")["state"] == "online"
        # the FIFO is skipped, counted in the heartbeat and STATUS=, and named once in the journal
        wait_for(lambda: site.retained("naturevision/unit-1/health").get("skipped_files") == 1, 30,
                 "skipped_files = 1 in the heartbeat", interval=1)
        wait_for(lambda: any("; 1 file(s) skipped" in m for m in notify.messages), 10, "the skipped file in STATUS=")
        assert (tmp_path / "in" / "pipe.png").exists() and not (tmp_path / "done" / "pipe.png").exists()

        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, service.log_path.read_text()
        assert notify.count("STOPPING=1") == 1
        assert site.retained("naturevision/unit-1/status")["state"] == "stopped"
        assert service.log_path.read_text().count(f'file={tmp_path / "in" / "pipe.png"} msg="skipped: is a FIFO') == 1
        first = {r["id"] for r in stored(db)}

        # A restart: the ledger knows every file; nothing is classified or sent twice. Files put
        # back into the watched folder (same name, size and time) are not new either.
        for tile in TILES[:2]:
            shutil.copy2(tmp_path / "done" / tile.name, tmp_path / "in" / tile.name)
        service = start_service(site.dir, config, notify)
        wait_for(lambda: notify.count("READY=1") == 2, 60, "READY=1 after the restart")
        new = tmp_path / "in" / "new__frame.png"
        shutil.copy(TILES[0], new)
        wait_for(lambda: len(stored(db)) > len(first), 60, "the new frame")
        time.sleep(2)  # give a wrongly re-classified old file time to arrive
        again = [r for r in stored(db) if r["id"] not in first]
        assert [Path(r["source"]).name for r in again] == ["new__frame.png"]

        service.send_signal(signal.SIGKILL)
        service.wait(timeout=20)
        wait_for(lambda: site.retained("naturevision/unit-1/status")["state"] == "offline", 30, "offline (Last Will)")
    finally:
        if service.poll() is None:
            service.kill()
        notify.close()


def test_a_stuck_pipeline_stops_the_watchdog_pings(tmp_path):
    """One item that takes longer than `stall_s` (here a frame of 10,000 tiles with stall_s = 1 s):
    the service stops pinging WATCHDOG=1 while it is stuck, says why in STATUS=, and pings again after."""
    import numpy as np
    from PIL import Image

    (tmp_path / "in").mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-1"
state_dir = "{tmp_path / 'state'}"
stall_s = 1

[image]
model = "{IMAGE_MODEL}"
tile = 12
overlap = 0

[[image.sources]]
type = "folder"
path = "{tmp_path / 'in'}"
settle_s = 0.2
poll_s = 0.1
""")
    notify = NotifySocket(tmp_path / "notify.sock")
    service = start_service(tmp_path, config, notify)
    try:
        wait_for(lambda: notify.count("READY=1") == 1 or service.poll() is not None, 60, "READY=1")
        wait_for(lambda: notify.count("WATCHDOG=1") >= 2, 30, "watchdog pings while idle")
        pixels = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "big.png")
        shutil.move(tmp_path / "big.png", tmp_path / "in" / "big.png")
        wait_for(lambda: any(m.startswith("STATUS=stalled: image on") for m in notify.messages), 60, "STATUS=stalled")
        stalled_at = next(i for i, m in enumerate(notify.messages) if m.startswith("STATUS=stalled"))
        wait_for(lambda: any("WATCHDOG=1" in m.split("\n") for m in notify.messages[stalled_at:]), 120,
                 "pings again once the frame is done")
        resumed_at = next(i for i, m in enumerate(notify.messages) if i > stalled_at and "WATCHDOG=1" in m.split("\n"))
        between = notify.messages[stalled_at:resumed_at]
        assert between and all("WATCHDOG=1" not in m.split("\n") for m in between)
        log = service.log_path.read_text()
        assert "pipeline stalled: watchdog pings stopped" in log and "big.png" in log
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        notify.close()


def test_service_listens_to_the_microphone(tmp_path, tiny_audio_models):
    """The live path of `nv-edge run`: a USB microphone (a stand-in module at the sounddevice boundary,
    playing the real sample clip at 48 kHz in real time) -> resampling -> windows -> events -> outbox.
    The tiny model hears the chainsaw in the middle of rain|chainsaw|rain as `engine`; SIGTERM ends
    any event still open."""
    import json

    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-1"
state_dir = "{tmp_path / 'state'}"

[audio]
model = "{tiny_audio_models['int8']}"
hop_s = 0.5

[audio.source]
type = "microphone"
device = "USB"
""")
    notify = NotifySocket(tmp_path / "notify.sock")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "fakemic"), str(ROOT)]),
               NV_FAKE_MIC_WAV=str(CLIP), NOTIFY_SOCKET=str(notify.path))
    log = tmp_path / "service.log"
    service = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "msg=listening" in log.read_text() or service.poll() is not None, 60, "listening")
        assert "USB PnP Sound Device" in log.read_text() and "rate=48000" in log.read_text()
        wait_for(lambda: 'msg="event end"' in log.read_text() or service.poll() is not None, 60,
                 "an event heard and ended")
        wait_for(lambda: notify.count("WATCHDOG=1") >= 1, 30, "a watchdog ping")
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, log.read_text()
        notify.close()
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as con:
        records = [json.loads(p) for (p,) in con.execute("SELECT payload FROM outbox WHERE leaf = 'detection'")]
    phases = [(r["label"], r["event"]["phase"]) for r in records]
    assert ("engine", "start") in phases and ("engine", "end") in phases
    assert phases.count(("engine", "start")) == phases.count(("engine", "end"))  # nothing left open
    start = next(r for r in records if r["event"]["phase"] == "start")
    assert start["source"] == "mic:USB" and start["time_source"] == "received"
    assert 'msg="microphone closed"' in log.read_text()


def test_service_polls_an_ip_camera_snapshot_url(tmp_path):
    """An HTTP snapshot source: frames come as bytes, are classified as files are, and are stamped with
    the time they were received."""
    import http.server
    import io
    import json

    from PIL import Image

    jpeg = io.BytesIO()
    Image.open(TILES[0]).convert("RGB").resize((480, 480)).save(jpeg, "JPEG")
    served = []

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg.getvalue())))
            self.end_headers()
            self.wfile.write(jpeg.getvalue())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/ISAPI/Streaming/channels/101/picture"
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-1"
state_dir = "{tmp_path / 'state'}"

[image]
model = "{IMAGE_MODEL}"

[[image.sources]]
type = "http"
url = "{url}"
interval_s = 0.5
timeout_s = 0.5
""")
    notify = NotifySocket(tmp_path / "notify.sock")
    service = start_service(tmp_path, config, notify)
    try:
        wait_for(lambda: service.log_path.read_text().count("msg=classified") >= 3 or service.poll() is not None, 60,
                 "three snapshots classified")
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, service.log_path.read_text()
        server.shutdown()
        notify.close()
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as con:
        records = [json.loads(p) for (p,) in con.execute("SELECT payload FROM outbox WHERE leaf = 'detection'")]
    assert len(records) >= 3 and len(served) >= len(records)
    assert {r["source"] for r in records} == {url}
    assert all(r["time_source"] == "received" and r["frame"] == {"width": 480, "height": 480} for r in records)
    assert len({r["id"] for r in records}) == len(records)
