"""`nv-edge doctor` on real parts: the shipped bundle and a tiny real audio model, a real mosquitto with
TLS, client certificates and passwords (tests/broker.py), real folders, outboxes and an HTTP camera on
127.0.0.1. Only the microphone is faked, at the sounddevice import boundary (this machine has none)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import types
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from broker import Broker, free_port, wait_for
from delivery import pki  # noqa: F401  (fixture)
from detections import detections
from imagefiles import GREEN, encode, solid

from edge.cli import main as cli
from edge.config import HttpSource, load_config
from edge.delivery.outbox import Outbox, OutboxLimits
from edge.doctor import models as doctor_models
from edge.doctor import (FAIL, OK, WARN, check_broker, check_clock, check_disk, check_microphone, check_models,
                         check_outbox, check_snapshot, check_sources, disk_status, run_checks)
from edge.features.logmel import LogMelSpec
from edge.model.bundle import MANIFEST_ENTRY, MODEL_ENTRY

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
DEVICE = "unit-1"  # a user of the session PKI in tests/delivery.py
PASSWORD = "pw-doctor-unit-1"
STATUSES = (OK, WARN, FAIL)
JPEG = encode(solid(GREEN, (64, 48)), "JPEG")


# -- a unit's disk: /etc/naturevision, a watched folder, the state dir -------------------------------------

class Unit:
    def __init__(self, dir: Path, pki):
        self.dir = dir
        self.etc = dir / "etc"
        self.incoming = dir / "incoming"
        self.state = dir / "state"
        for folder in (self.etc, self.incoming, self.state):
            folder.mkdir()
        cert, key = pki.clients[DEVICE]
        for name, source in (("ca.crt", pki.ca), (f"{DEVICE}.crt", cert), (f"{DEVICE}.key", key)):
            (self.etc / name).write_bytes(source.read_bytes())
        self.password(PASSWORD)

    def password(self, text: str) -> None:
        (self.etc / "mqtt.password").write_text(text + "\n")

    def config(self, port: int | None = None, *, model: Path = SHIPPED, audio: str = "", device: str = DEVICE,
               protocol: str = "5", ca: str = "ca.crt") -> Path:
        mqtt = "" if port is None else f'''
[mqtt]
host = "127.0.0.1"
port = {port}
protocol = "{protocol}"
password_file = "{self.etc}/mqtt.password"
[mqtt.tls]
ca = "{self.etc}/{ca}"
cert = "{self.etc}/{DEVICE}.crt"
key = "{self.etc}/{DEVICE}.key"
'''
        path = self.dir / "edge.toml"
        path.write_text(f'''
[device]
id = "{device}"
state_dir = "{self.state}"
[image]
model = "{model}"
[[image.sources]]
type = "folder"
path = "{self.incoming}"
after = "delete"
{audio}{mqtt}''')
        return path


@pytest.fixture
def unit(tmp_path, pki) -> Unit:
    return Unit(tmp_path, pki)


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    b = Broker(tmp_path_factory.mktemp("broker"), pki, {DEVICE: PASSWORD}).start()
    yield b
    b.kill()


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


def lines_by_name(out: str) -> dict[str, str]:
    """`STATUS  name  found ...` lines of the table, keyed by check name (names may hold one space)."""
    found = {}
    for line in out.splitlines():
        status, rest = line.split(None, 1)
        assert status in STATUSES, line
        name = next(n for n in ("model image", "model audio", "source folder", "broker reach", "broker tls",
                                "broker login", *rest.split()[:1]) if rest.startswith(n + " "))
        found[name] = line
    return found


# -- the whole run ----------------------------------------------------------------------------------------

def test_a_good_unit_against_a_real_broker_prints_ok_lines_and_exits_0(unit, broker, capsys):
    for n in range(2):
        (unit.incoming / f"frame{n}.jpg").write_bytes(JPEG)
    path = unit.config(broker.port)
    assert cli.main(["doctor", "--config", str(path)]) == 0
    lines = lines_by_name(capsys.readouterr().out)
    assert list(lines) == ["config", "model image", "interpreter", "source folder", "disk", "outbox", "clock",
                           "broker reach", "broker tls", "broker login"]
    assert lines["config"].startswith(f"OK    config         {path}: device {DEVICE}, image model mining-s2")
    assert lines["model image"].split()[0] in (OK, WARN)  # WARN only on a board too slow: never a FAIL
    assert "mining-s2 1.1.0 on " in lines["model image"]
    assert "per batch of 4 tiles, each in 4 orientations (median of 20 runs" in lines["model image"]  # the model's TTA
    assert lines["interpreter"].startswith("OK ")
    assert lines["source folder"].startswith("OK ") and f"{unit.incoming}: readable and writable, 2 file(s) waiting" in lines["source folder"]
    assert lines["outbox"].startswith("OK ") and "not created yet" in lines["outbox"]
    assert lines["broker reach"].startswith("OK ") and f"127.0.0.1:{broker.port} answers" in lines["broker reach"]
    # The test PKI's certificates live 2 days: the doctor warns, and says what to do.
    assert lines["broker tls"].startswith("WARN") and "broker certificate verified for 127.0.0.1" in lines["broker tls"]
    assert ("the broker certificate, CA and this unit's certificate expire within 30 days  "
            "fix: Renew the broker certificate, CA and this unit's certificate before then") in lines["broker tls"]
    assert lines["broker login"].startswith(f"OK    broker login   accepted as {DEVICE} (client id nv-doctor-{DEVICE}")
    # Its own client id, and a clean goodbye: the service's session is not taken over.
    assert f"as nv-doctor-{DEVICE} (p5, c1" in broker.log_text()  # c1: a clean start, nothing kept
    wait_for(lambda: f"Client nv-doctor-{DEVICE} disconnected." in broker.log_text(), 10, "the doctor's DISCONNECT in the log")

    tls, login = check_broker(load_config(path), cert_warn_days=1)[1:]
    assert (tls.status, login.status) == (OK, OK) and tls.found.startswith("TLSv1.")


def test_json_format_gives_the_same_checks_as_a_list(unit, broker, capsys):
    path = unit.config(broker.port)
    assert cli.main(["doctor", "--config", str(path), "--format", "json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in checks][:3] == ["config", "model image", "interpreter"]
    assert all(set(c) == {"name", "status", "found", "fix"} and c["status"] in STATUSES for c in checks)
    assert all(c["fix"] for c in checks if c["status"] != OK) and not any(c["fix"] for c in checks if c["status"] == OK)


def test_a_wrong_password_fails_naming_the_refusal(unit, broker, capsys):
    unit.password("not-the-password")
    path = unit.config(broker.port)
    assert cli.main(["doctor", "--config", str(path), "--format", "json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["broker reach"]["status"] == OK and checks["broker tls"]["status"] != FAIL
    login = checks["broker login"]
    assert login["status"] == FAIL
    assert login["found"].startswith(f"the broker at 127.0.0.1:{broker.port} refused user '{DEVICE}': Not authorized")
    assert "mosquitto_passwd" in login["fix"]


def test_mqtt_3_1_1_logs_in_too(unit, broker):
    (login,) = [c for c in check_broker(load_config(unit.config(broker.port, protocol="3.1.1"))) if c.name == "broker login"]
    assert login.status == OK and login.found.startswith(f"accepted as {DEVICE} (client id nv-doctor-{DEVICE}, MQTT 3.1.1)")


def test_a_ca_that_did_not_sign_the_brokers_certificate_fails_the_handshake(unit, broker, pki):
    (unit.etc / "rogue-ca.crt").write_bytes(pki.rogue_ca.read_bytes())
    reach, tls, login = check_broker(load_config(unit.config(broker.port, ca="rogue-ca.crt")))
    assert reach.status == OK and tls.status == FAIL
    assert tls.found.startswith(f"TLS: the broker at 127.0.0.1:{broker.port} presented a certificate that does not verify")
    assert "the CA that signed the broker's certificate" in tls.fix
    assert login.found == "skipped: the TLS handshake failed"


def test_a_broker_that_is_down_cannot_be_reached_and_the_later_steps_are_skipped(unit):
    port = free_port()  # nothing listens there
    checks = by_name(run_checks(unit.config(port)))
    reach = checks["broker reach"]
    assert reach.status == FAIL and reach.found.startswith(f"cannot reach the broker at 127.0.0.1:{port}: connection refused")
    assert "mosquitto" in reach.fix
    assert checks["broker tls"].found == checks["broker login"].found == "skipped: cannot reach the broker"
    assert checks["config"].status == OK and checks["source folder"].status == OK  # the rest still ran


# -- config ------------------------------------------------------------------------------------------------

def test_a_bad_config_fails_and_the_checks_that_do_not_need_it_still_run(unit, capsys):
    path = unit.dir / "edge.toml"
    path.write_text(f'[device]\nid = "Unit 7"\nstate_dir = "{unit.state}"\n')
    assert cli.main(["doctor", "--config", str(path)]) == 1
    checks = by_name(run_checks(path))
    assert checks["config"].status == FAIL
    assert checks["config"].found.startswith(f"{path}: [device.id]: 'Unit 7' cannot be a device id")
    assert "systemd/edge.example.toml" in checks["config"].fix
    for name in ("model", "microphone", "sources", "outbox", "broker"):
        assert checks[name].found == "skipped: config failed", name
    assert checks["disk"].status in STATUSES and checks["disk"].found.startswith(f"{unit.state}: ")  # the config's state_dir
    assert checks["clock"].status in STATUSES and "UTC" in checks["clock"].found
    assert checks["interpreter"].status in STATUSES


def test_a_missing_folder_fails(unit):
    path = unit.config()
    cfg = load_config(path)
    unit.incoming.rmdir()  # the SD card was pulled after the service started
    (check,) = check_sources(cfg)
    assert check.status == FAIL and check.found == f"{unit.incoming}: no such folder (an SD card not mounted?)"
    assert "create the folder" in check.fix
    # Missing when the config is read: the config line names the key, and the other checks still run.
    checks = by_name(run_checks(path))
    assert checks["config"].status == FAIL
    assert f"[image.sources[1].path]: {unit.incoming}: no such folder" in checks["config"].found
    assert checks["disk"].status in STATUSES and checks["clock"].status in STATUSES


def test_the_folder_check_counts_what_the_service_reads_and_warns_of_what_it_skips(unit):
    """The doctor counts with the folder source's own rules: a FIFO or a symlink to /dev/zero named like a
    frame is not a file waiting, it is an entry the service will skip, and the doctor says so."""
    cfg = load_config(unit.config())
    (unit.incoming / "frame0.jpg").write_bytes(JPEG)
    os.mkfifo(unit.incoming / "stuck.png")
    (unit.incoming / "zero.jpg").symlink_to("/dev/zero")
    (check,) = check_sources(cfg)
    assert check.status == WARN
    assert f"{unit.incoming}: readable and writable, 1 file(s) waiting; 2 entries named like a frame or clip" in check.found
    assert "stuck.png is a FIFO, not a file" in check.found
    assert "regular files" in check.fix


# -- models ------------------------------------------------------------------------------------------------

def corrupt(bundle: Path) -> None:
    """Flip one byte of model.tflite and keep the manifest: what a bad copy to an SD card does."""
    with zipfile.ZipFile(bundle) as zf:
        manifest, model = zf.read(MANIFEST_ENTRY), bytearray(zf.read(MODEL_ENTRY))
    model[len(model) // 2] ^= 0xFF
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr(MANIFEST_ENTRY, manifest)
        zf.writestr(MODEL_ENTRY, bytes(model))


def test_a_corrupted_bundle_fails_its_checksum(unit):
    bundle = unit.dir / "mining-s2.nvm"
    bundle.write_bytes(SHIPPED.read_bytes())
    path = unit.config(model=bundle)
    cfg = load_config(path)
    corrupt(bundle)
    (check,) = check_models(cfg)  # damaged after the service loaded the config
    assert check.name == "model image" and check.status == FAIL
    assert check.found.startswith(f"{bundle}: model checksum mismatch")
    assert check.fix.startswith("Copy the bundle (.nvm) to the unit again")
    checks = by_name(run_checks(path))  # damaged before: the config line says so
    assert checks["config"].status == FAIL and "model checksum mismatch" in checks["config"].found
    assert checks["model"].found == "skipped: config failed"


def audio_section(model: Path, device: str) -> str:
    return f'[audio]\nmodel = "{model}"\nhop_s = 0.5\n[audio.source]\ntype = "microphone"\ndevice = "{device}"\n'


def test_an_audio_model_is_timed_per_window_against_the_hop(unit, tiny_audio_models):
    cfg = load_config(unit.config(audio=audio_section(tiny_audio_models["int8"], "USB")))
    image, audio = check_models(cfg, runs=5)
    assert image.name == "model image" and audio.name == "model audio"
    assert audio.status in (OK, WARN)  # WARN only if this board needs more than 125 ms a window
    assert " ms per window (median of 5 runs on this board; limit 125 ms)" in audio.found


@pytest.mark.parametrize("backend", ["litert", "tflite-runtime"])
def test_the_fix_for_a_slow_model_fits_the_backend_it_runs_on(unit, tiny_int8, tiny_audio_models, backend, monkeypatch):
    """Every board is "too slow" with the limits at (nearly) 0 s: on LiteRT the advice is what is left (threads, the
    board's load, the model, the board), on tflite-runtime it is to install LiteRT."""
    monkeypatch.setattr(doctor_models, "IMAGE_BATCH_MAX_S", 0.0)
    monkeypatch.setattr(doctor_models, "AUDIO_HOP_SHARE", 1e-9)
    path = unit.config(model=tiny_int8, audio=audio_section(tiny_audio_models["int8"], "USB"))
    text = path.read_text().replace("[[image.sources]]", f'backend = "{backend}"\nthreads = 1\n[[image.sources]]')
    path.write_text(text.replace("hop_s = 0.5", f'hop_s = 0.5\nbackend = "{backend}"'))
    image, audio = check_models(load_config(path), runs=2)
    assert image.status == WARN and audio.status == WARN
    assert f"on {backend} " in image.found and f"on {backend} " in audio.found
    if backend == "litert":
        assert "pip install" not in image.fix and "pip install" not in audio.fix
        assert image.fix.startswith("It already runs on LiteRT") and "raise [image] threads (now 1)" in image.fix
        assert "smaller model or a faster board" in image.fix
        assert audio.fix.startswith("Set [audio] hop_s to at least") and "set [audio] threads = 2" in audio.fix
    else:
        assert "pip install ai-edge-litert" in image.fix and "tflite-runtime does not" in image.fix
        assert "remove [image] backend" in image.fix and "pip install ai-edge-litert" in audio.fix


# -- microphone: a fake sounddevice module, the boundary PortAudio sits behind -------------------------------

DEVICES = [
    {"name": "bcm2835 Headphones", "index": 0, "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 44100.0},
    {"name": "USB PnP Sound Device: Audio (hw:1,0)", "index": 1, "max_input_channels": 1, "max_output_channels": 0,
     "default_samplerate": 44100.0},
]


def fake_sounddevice(rates: tuple[int, ...]) -> types.ModuleType:
    module = types.ModuleType("sounddevice")
    module.query_devices = lambda: [dict(d) for d in DEVICES]
    module.default = types.SimpleNamespace(device=(1, 0))

    def check_input_settings(device=None, channels=None, dtype=None, samplerate=None):
        if samplerate not in rates or channels > DEVICES[device]["max_input_channels"]:
            raise ValueError("Invalid sample rate [PaErrorCode -9997]")  # what PortAudio says

    module.check_input_settings = check_input_settings
    return module


@pytest.fixture
def mic_config(unit, tiny_audio_models):
    def make(device: str):
        return load_config(unit.config(audio=audio_section(tiny_audio_models["int8"], device)))
    return make


def test_microphone_found_at_the_models_rate(mic_config, monkeypatch):
    cfg = mic_config("USB")
    rate = LogMelSpec.from_dict(cfg.audio.manifest.audio).sample_rate
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice((rate, 44100)))
    (check,) = check_microphone(cfg)
    assert check == check.__class__("microphone", OK, f"[1] USB PnP Sound Device: Audio (hw:1,0) (1 ch, 44100 Hz): "
                                                      f"records 1 ch at {rate} Hz (the model's rate)")
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice((44100,)))
    (check,) = check_microphone(cfg)
    assert check.status == OK and check.found.endswith(f"records 1 ch at 44100 Hz (resampled to the model's {rate} Hz)")


def test_a_microphone_that_is_not_there_fails_listing_the_input_devices(mic_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice((16000,)))
    (check,) = check_microphone(mic_config("Blue Yeti"))
    assert check.status == FAIL
    assert check.found == ("no input device named like 'Blue Yeti'; input devices: "
                           "[1] USB PnP Sound Device: Audio (hw:1,0) (1 ch, 44100 Hz)")
    assert "set [audio.source] device" in check.fix


class _NoPortAudio:
    """A meta-path finder: `import sounddevice` raises OSError, as it does where libportaudio2 is absent."""

    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


def test_without_portaudio_the_microphone_check_names_libportaudio2(mic_config, monkeypatch):
    cfg = mic_config("USB")
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    (check,) = check_microphone(cfg)
    assert check.status == FAIL and "PortAudio is missing: sudo apt install libportaudio2" in check.found
    assert check.fix == "Install PortAudio: sudo apt install libportaudio2."


# -- an IP camera on 127.0.0.1 ---------------------------------------------------------------------------------

class Camera(BaseHTTPRequestHandler):
    def do_GET(self):
        body, kind = (JPEG, "image/jpeg") if self.path == "/snap.jpg" else (b"<html>Please log in</html>", "text/html")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def camera():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_snapshot_url_answers_with_an_image_or_fails(camera):
    check = check_snapshot(HttpSource(url=f"{camera}/snap.jpg", timeout_s=5))
    assert check.status == OK and check.found.startswith(f"{camera}/snap.jpg: an image of {len(JPEG):,} bytes in ")
    check = check_snapshot(HttpSource(url=f"{camera}/login", timeout_s=5))
    assert check.status == FAIL and "not an image" in check.found and "browser" in check.fix


# -- disk, outbox, clock ------------------------------------------------------------------------------------

def test_disk_gives_a_status_with_the_free_space(tmp_path):
    check = check_disk(tmp_path)
    assert check.status in STATUSES and check.found.startswith(f"{tmp_path}: ") and " GB free of " in check.found
    missing = check_disk(tmp_path / "not" / "yet")
    assert f"measured at {tmp_path}" in missing.found
    assert disk_status(50 * 2**20, 100 * 2**30) == FAIL
    assert disk_status(900 * 2**20, 2 * 2**30) == WARN  # under 1 GB
    assert disk_status(5 * 2**30, 100 * 2**30) == WARN  # under 10 %
    assert disk_status(5 * 2**30, 10 * 2**30) == OK


def test_the_outbox_reports_depth_and_warns_of_old_or_evicted_records(unit):
    cfg = load_config(unit.config())
    with Outbox(cfg.outbox.path) as outbox:
        outbox.put(detections(DEVICE, 1)[0])
    check = check_outbox(cfg)
    assert check.status == OK and check.found.startswith(f"{cfg.outbox.path}: 1 record(s), 1 not yet taken by the broker")
    with Outbox(cfg.outbox.path, clock=lambda: time.time() - 2 * 86400) as outbox:
        outbox.put(detections(DEVICE, 1, start=1)[0])
    check = check_outbox(cfg)
    assert check.status == WARN and "oldest 2.0 days" in check.found and "waited more than a day" in check.found
    with Outbox(cfg.outbox.path, batch=500, limits=OutboxLimits(max_records=100)) as outbox:
        for record in detections(DEVICE, 110, start=2):
            outbox.put(record)
    check = check_outbox(cfg)
    assert check.status == WARN and "evicted 12 (12 routine)" in check.found and "max_mb" in check.fix


def test_the_clock_gives_a_status_and_explains_an_unsynchronised_one(unit):
    check = check_clock(None)  # this machine's: synchronised or not, it says which
    assert check.status in (OK, WARN) and "UTC" in check.found
    assert check_clock(None, sync={"synchronized": True, "source": "timedatectl"}).status == OK
    check = check_clock(None, sync={"synchronized": False, "source": "timedatectl"})
    assert check.status == WARN and "not synchronised (timedatectl)" in check.found
    assert "records are marked clock_synchronized: false" in check.found
    assert "sudo date -u -s" in check.fix and "GPS" in check.fix
    check = check_clock(None, now=1577836800.0, sync={"synchronized": False, "source": None})  # 2020-01-01
    assert check.status == FAIL and "the clock says 2020-01-01 00:00:00 UTC: it was never set" in check.found


def test_a_clock_behind_the_newest_outbox_record_went_backwards(unit):
    cfg = load_config(unit.config())
    with Outbox(cfg.outbox.path, clock=lambda: time.time() + 3 * 86400) as outbox:  # queued by a clock since reset
        outbox.put(detections(DEVICE, 1)[0])
    check = check_clock(cfg, sync={"synchronized": False, "source": None})
    assert check.status == FAIL and check.found.startswith("the clock went backwards: it says ")
    assert "sudo date" in check.fix
