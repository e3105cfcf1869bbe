"""`nv-edge doctor`: what a technician with a laptop checks on a unit, one `Check` per line.

Each check is a plain function returning `Check`s. `run_checks` runs them in a fixed order and never
lets one stop the others: a check that raises becomes a FAIL naming the exception, and the checks
that need the config say "skipped: config failed" when it does not load (disk, clock and interpreter
still run). Nothing here changes the unit or its link: the outbox is only read; the broker sees one
CONNECT with a client id of its own and a clean session (never a publish, never a Last Will), so the
service's session is not taken over and nothing is left behind; the camera and the microphone are not
opened (the running service holds them).

Run it as the service's user (`sudo -u naturevision nv-edge doctor`): then a file the service could not
read fails here too, and the outbox is not touched by root.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import ssl
import statistics
import time
import tomllib
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt

from edge.bundle import BundleError
from edge.config import (DEFAULT_STATE_DIR, AudioConfig, ConfigError, EdgeConfig, FolderSource, HttpSource,
                         ImageConfig, MicrophoneSource, PicameraSource, broker_settings, load_config)
from edge.connection import PROTOCOLS, BrokerSettings, explain_socket_error
from edge.health import clock_synchronised
from edge.image import IMAGE_SUFFIXES
from edge.interpreter import available_backends, backend_version
from edge.logmel import LogMelSpec
from edge.microphone import PORTAUDIO_HINT, MicrophoneError, find_device, import_sounddevice
from edge.model import Model, load_model
from edge.outbox import Outbox
from edge.sources.folder import AUDIO_SUFFIXES, IN_PROGRESS_SUFFIXES
from edge.sources.item import SourceError
from edge.sources.picamera import import_picamera2
from edge.sources.snapshot import SnapshotSource
from edge.sources.timed import CaptureError

OK, WARN, FAIL = "OK", "WARN", "FAIL"

# The thresholds, in one place (systemd/README.md states them too).
LATENCY_RUNS = 20  # timed runs of each model; the median is reported
AUDIO_HOP_SHARE = 0.25  # an audio model may use a quarter of the hop: the rest is capture, features, events, the image model
IMAGE_BATCH_MAX_S = 1.0  # per batch of [image] batch tiles: slower and a large frame takes minutes
DISK_FAIL_BYTES = 100 * 2**20  # below this the outbox soon cannot commit
DISK_WARN_BYTES = 2**30
DISK_WARN_FRACTION = 0.10
OUTBOX_OLD_S = 86400.0  # a record waiting longer means the link has been down for a day
CLOCK_MIN_YEAR = 2025  # earlier: the clock was never set (a Pi without RTC, no NTP, no GPS)
CLOCK_BACKWARDS_S = 86400.0  # the newest outbox record may be this far "in the future" before we call it
CERT_WARN_DAYS = 30
NETWORK_TIMEOUT_S = 5.0

SET_CLOCK = ("Set it from the laptop's clock: sudo date -u -s 'YYYY-MM-DD HH:MM:SS' (the laptop's UTC time); "
             "for good, a GPS receiver with gpsd and chrony keeps it right without a network.")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    found: str  # what the check saw, with the numbers
    fix: str = ""  # for WARN and FAIL: one sentence saying what to do

    def to_dict(self) -> dict:
        return asdict(self)


def ok(name: str, found: str) -> Check:
    return Check(name, OK, found)


def warn(name: str, found: str, fix: str) -> Check:
    return Check(name, WARN, found, fix)


def fail(name: str, found: str, fix: str) -> Check:
    return Check(name, FAIL, found, fix)


def skipped(name: str, why: str = "config failed", fix: str = "Fix the config first (the config line says how), "
            "then run nv-edge doctor again.") -> Check:
    # WARN, not OK: nothing is known about it; not FAIL: the failure is counted once, where it is.
    return Check(name, WARN, f"skipped: {why}", fix)


# -- all of them ---------------------------------------------------------------------------------------

def run_checks(config_path: str | Path) -> list[Check]:
    """Every check, in order; one failing (or raising) never stops the others."""
    path = Path(config_path)
    cfg, config = check_config(path)
    state_dir = cfg.device.state_dir if cfg else fallback_state_dir(path)
    steps = (
        ("model", lambda: check_models(cfg)),
        ("interpreter", lambda: [check_interpreter()]),
        ("microphone", lambda: check_microphone(cfg)),
        ("sources", lambda: check_sources(cfg)),
        ("disk", lambda: [check_disk(state_dir)]),
        ("outbox", lambda: [check_outbox(cfg)]),
        ("clock", lambda: [check_clock(cfg)]),
        ("broker", lambda: check_broker(cfg)),
    )
    checks = [config]
    for name, step in steps:
        try:
            checks += step()
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            checks.append(fail(name, f"the check itself failed: {type(exc).__name__}: {exc}",
                               "Report this with the output of nv-edge doctor --format json."))
    return checks


# -- 1. config -------------------------------------------------------------------------------------------

def check_config(path: Path) -> tuple[EdgeConfig | None, Check]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fix = ("Pass --config PATH, or copy systemd/edge.example.toml there and edit it."
               if "no such config file" in str(exc) else
               "Edit the key named there (systemd/edge.example.toml explains every key), then run nv-edge doctor again.")
        return None, fail("config", str(exc), fix)
    parts = [f"device {cfg.device.id}"]
    parts += [f"{kind} model {s.manifest.name} {s.manifest.version}"
              for kind, s in (("image", cfg.image), ("audio", cfg.audio)) if s is not None]
    parts.append(f"mqtt {cfg.mqtt.host}:{cfg.mqtt.port}" if cfg.mqtt else "no mqtt (records stay in the outbox)")
    return cfg, ok("config", f"{path}: {', '.join(parts)}")


def fallback_state_dir(path: Path) -> Path:
    """device.state_dir from a config that does not load, when the TOML at least parses: the disk
    check then measures the right disk."""
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("device", {}).get("state_dir")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return DEFAULT_STATE_DIR
    if not isinstance(value, str) or not value.strip():
        return DEFAULT_STATE_DIR
    state = Path(value).expanduser()
    return state if state.is_absolute() else path.resolve().parent / state


# -- 2. models -------------------------------------------------------------------------------------------

def check_models(cfg: EdgeConfig | None, runs: int = LATENCY_RUNS) -> list[Check]:
    if cfg is None:
        return [skipped("model")]
    return [check_model(kind, section, runs) for kind, section in (("image", cfg.image), ("audio", cfg.audio))
            if section is not None]


def check_model(kind: str, section: ImageConfig | AudioConfig, runs: int = LATENCY_RUNS) -> Check:
    """Checksum and manifest (read again: a bundle can be damaged after the config was checked), load
    on the configured or best backend, and the median latency of `runs` runs on this board."""
    name = f"model {kind}"
    try:
        model = load_model(section.model, backend=section.backend, num_threads=section.threads)
    except BundleError as exc:
        text = str(exc)
        if "checksum" in text or "not a model bundle" in text:
            fix = "Copy the bundle (.nvm) to the unit again from the release: this copy is damaged."
        elif "no TFLite interpreter" in text or "not usable here" in text:
            fix = "Install an interpreter into the service's venv: pip install ai-edge-litert."
        else:
            fix = "Replace the bundle with one made by nv-convert for this nv-edge version."
        return fail(name, text, fix)
    m = model.manifest
    where = f"{m.name} {m.version} on {model.runner.backend} {model.runner.backend_version}"
    if kind == "audio":
        batch = np.zeros((1, *LogMelSpec.from_dict(m.audio).input_shape), dtype=np.float32)
        budget, unit = AUDIO_HOP_SHARE * section.hop_s, "per window"
    else:
        width, height = m.input.size
        batch = np.full((section.batch, height, width, 3), 128, dtype=np.uint8)  # grey tiles
        budget, unit = IMAGE_BATCH_MAX_S, f"per batch of {section.batch} tiles"
    median = median_latency_s(model, batch, runs)
    found = f"{where}: {median * 1000:.1f} ms {unit} (median of {runs} runs on this board; limit {budget * 1000:.0f} ms)"
    if median <= budget:
        return ok(name, found)
    if kind == "audio":
        return warn(name, f"{found}: it cannot keep up with hop_s = {section.hop_s:g} s",
                    f"Set [audio] hop_s to at least {median / AUDIO_HOP_SHARE:.2f} s, or run LiteRT "
                    f"(pip install ai-edge-litert) with [audio] threads = 2.")
    return warn(name, f"{found}: large frames will take minutes",
                "Run LiteRT (pip install ai-edge-litert), raise [image] threads, or use a smaller model.")


def median_latency_s(model: Model, batch: np.ndarray, runs: int) -> float:
    model.predict(batch)  # the first run allocates the tensors for this batch size: not a steady-state time
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- 3. interpreter --------------------------------------------------------------------------------------

def check_interpreter() -> Check:
    found = available_backends()  # imports LiteRT and tflite-runtime; TensorFlow is only looked up
    if not found:
        return fail("interpreter", "no TFLite interpreter imports here (tried litert, tflite-runtime, tensorflow)",
                    "Install LiteRT into the service's venv: pip install ai-edge-litert.")
    versions = ", ".join(f"{name} {backend_version(name)}" for name in found)
    if found == ["tflite-runtime"]:
        return warn("interpreter", f"{versions} only: no XNNPACK for int8 models, about 20x slower than LiteRT",
                    "Install LiteRT into the service's venv: pip install ai-edge-litert.")
    return ok("interpreter", f"{versions}; models run on {found[0]} unless the config names another")


# -- 4. microphone ---------------------------------------------------------------------------------------

def check_microphone(cfg: EdgeConfig | None) -> list[Check]:
    if cfg is None:
        return [skipped("microphone")]
    if cfg.audio is None or not isinstance(cfg.audio.source, MicrophoneSource):
        return []
    return [check_input_device(cfg.audio.source.device, LogMelSpec.from_dict(cfg.audio.manifest.audio).sample_rate)]


def check_input_device(selector: str | int | None, rate: int) -> Check:
    """The device is there and takes the model's rate, or a rate we resample from. Only asks
    PortAudio (check_input_settings); no stream is opened."""
    name = "microphone"
    try:
        sd = import_sounddevice()
    except MicrophoneError as exc:
        fix = ("Install PortAudio: sudo apt install libportaudio2." if PORTAUDIO_HINT in str(exc)
               else "Install sounddevice into the service's venv: pip install sounddevice.")
        return fail(name, str(exc), fix)
    try:
        device = find_device(selector, sd)
    except MicrophoneError as exc:
        return fail(name, str(exc), "Plug the microphone in, or set [audio.source] device to a name or index "
                                    "of an input device listed here (`arecord -l` shows what ALSA sees).")
    tried = []
    # The order of edge.microphone.Microphone: the model's rate (no resampling), else the device's own.
    for device_rate in dict.fromkeys((rate, device.default_rate)):
        for channels in dict.fromkeys((1, min(2, device.channels))):
            try:
                sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=device_rate)
            except Exception as exc:  # noqa: BLE001 - sounddevice raises PortAudioError, ValueError, ...
                tried.append(f"{device_rate} Hz x {channels} ch: {exc}")
                continue
            how = "the model's rate" if device_rate == rate else f"resampled to the model's {rate} Hz"
            return ok(name, f"{device}: records {channels} ch at {device_rate} Hz ({how})")
    return fail(name, f"input device {device} takes none of the settings tried ({'; '.join(tried)})",
                "Use another input device: set [audio.source] device to it.")


# -- 5. sources ------------------------------------------------------------------------------------------

def check_sources(cfg: EdgeConfig | None) -> list[Check]:
    if cfg is None:
        return [skipped("sources")]
    checks = []
    for source in cfg.image.sources if cfg.image else ():
        checks.append(check_source(source, IMAGE_SUFFIXES))
    if cfg.audio is not None and isinstance(cfg.audio.source, FolderSource):
        checks.append(check_source(cfg.audio.source, AUDIO_SUFFIXES))
    return checks


def check_source(source, suffixes: tuple[str, ...]) -> Check:
    if isinstance(source, FolderSource):
        return check_folder(source, suffixes)
    if isinstance(source, HttpSource):
        return check_snapshot(source)
    if isinstance(source, PicameraSource):
        return check_picamera(source)
    return fail(f"source {source.name}", f"unknown source type {type(source).__name__}", "Update nv-edge.")


def check_folder(source: FolderSource, suffixes: tuple[str, ...]) -> Check:
    path = source.path
    name = f"source {source.name or 'folder'}"
    if not path.is_dir():
        return fail(name, f"{path}: no such folder (an SD card not mounted?)",
                    "Mount the card or create the folder (systemd-tmpfiles --create naturevision.conf makes the "
                    "default ones), or fix its path in the config.")
    writes = source.after != "keep"
    if not os.access(path, os.R_OK | os.X_OK | (os.W_OK if writes else 0)):
        need = "read and write (after = " + repr(source.after) + ")" if writes else "read"
        return fail(name, f"{path}: this user cannot {need} it",
                    "Give the service's user access (chown or chmod the folder), and run the doctor as that "
                    "user: sudo -u naturevision nv-edge doctor.")
    if source.after == "move" and source.done_dir is not None:
        target = source.done_dir if source.done_dir.is_dir() else source.done_dir.parent
        if not os.access(target, os.W_OK | os.X_OK):
            return fail(name, f"done_dir {source.done_dir}: this user cannot write there",
                        "Give the service's user write access to it, or fix done_dir in the config.")
    count = count_files(path, source.suffixes or suffixes, source.recursive)
    access = "readable and writable" if writes else "readable"
    waiting = (f"{count} file(s) waiting" if writes
               else f"{count} file(s) in it (after = \"keep\": read files stay, the ledger knows which)")
    return ok(name, f"{path}: {access}, {waiting}")


def count_files(folder: Path, suffixes: tuple[str, ...], recursive: bool) -> int:
    """Files the folder source would look at (the same name rules as edge/sources/folder.py)."""
    suffixes = tuple(s.lower() for s in suffixes)
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        count += sum(1 for f in files if not f.startswith(".") and f.lower().endswith(suffixes)
                     and not f.lower().endswith(IN_PROGRESS_SUFFIXES))
    return count


def check_snapshot(source: HttpSource) -> Check:
    """One GET, as the service would make it."""
    name = f"source {source.name or source.url}"
    fix = ("Open the URL in a browser on the laptop: check the camera is on and on this network, "
           "and the url, username and password_file in the config.")
    try:
        camera = SnapshotSource(source.name or source.url, source.url, interval_s=source.interval_s,
                                timeout_s=source.timeout_s, username=source.username, password=source.password(),
                                ca_file=source.ca_file, tls_verify=source.tls_verify,
                                **({"max_bytes": source.max_bytes} if source.max_bytes else {}))
        start = time.perf_counter()
        data = camera.capture()
    except (CaptureError, SourceError, ConfigError) as exc:
        return fail(name, str(exc), fix)
    ms = (time.perf_counter() - start) * 1000
    return ok(name, f"{source.url}: an image of {len(data):,} bytes in {ms:.0f} ms (timeout {source.timeout_s:g} s)")


def check_picamera(source: PicameraSource) -> Check:
    name = f"source {source.name or f'picamera2:{source.camera}'}"
    try:
        picamera2 = import_picamera2()
    except SourceError as exc:
        return fail(name, str(exc), "sudo apt install python3-picamera2, and make the service's venv with "
                                    "--system-site-packages.")
    try:  # lists cameras without opening one: the service may hold it
        cameras = picamera2.Picamera2.global_camera_info()
    except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds
        return fail(name, f"picamera2 imports but cannot list cameras: {type(exc).__name__}: {exc}",
                    "Check the ribbon cable and run rpicam-hello --list-cameras.")
    if source.camera >= len(cameras):
        return fail(name, f"camera {source.camera} not found; cameras: {cameras or 'none'}",
                    "Check the ribbon cable (rpicam-hello --list-cameras), or set camera to an index listed here.")
    info = cameras[source.camera]
    return ok(name, f"picamera2 imports; camera {source.camera}: {info.get('Model', info) if isinstance(info, dict) else info}")


# -- 6. disk and outbox ----------------------------------------------------------------------------------

def disk_status(free: int, total: int) -> str:
    if free < DISK_FAIL_BYTES:
        return FAIL
    if free < DISK_WARN_BYTES or (total and free / total < DISK_WARN_FRACTION):
        return WARN
    return OK


def check_disk(state_dir: Path) -> Check:
    where = Path(state_dir)
    while not where.exists() and where != where.parent:  # not created yet: measure the disk it will be on
        where = where.parent
    usage = shutil.disk_usage(where)
    found = (f"{state_dir}: {usage.free / 2**30:.1f} GB free of {usage.total / 2**30:.1f} GB "
             f"({100 * usage.free / max(1, usage.total):.0f} %)")
    if where != Path(state_dir):
        found += f" (the folder does not exist yet; measured at {where})"
    status = disk_status(usage.free, usage.total)
    if status == FAIL:
        return fail("disk", f"{found}: below {DISK_FAIL_BYTES // 2**20} MB the outbox cannot keep detections",
                    "Free space now: copy the watched folders' images off the card and delete them.")
    if status == WARN:
        return warn("disk", f"{found}: below 1 GB or 10 %",
                    "Free some space soon: old images in the watched folders, or the journal "
                    "(journalctl --vacuum-size=50M).")
    return ok("disk", found)


def check_outbox(cfg: EdgeConfig | None, now: float | None = None) -> Check:
    if cfg is None:
        return skipped("outbox")
    path = cfg.outbox.path
    if not path.exists():  # opening it would create it, and the doctor changes nothing
        return ok("outbox", f"{path}: not created yet (nothing queued so far)")
    with Outbox(path) as outbox:
        stats = outbox.stats()
    age = stats.oldest_age_s(now)
    evicted = sum(stats.evicted.values())
    found = (f"{path}: {stats.depth} record(s), {stats.unsent} not yet taken by the broker, "
             f"oldest {'-' if age is None else _duration(age)}, evicted {evicted}"
             + (f" ({', '.join(f'{n} {k}' for k, n in stats.evicted.items() if n)})" if evicted else ""))
    problems, fixes = [], []
    if evicted:
        problems.append("records were evicted to stay within the outbox's bounds: the base station never got them")
        fixes.append("raise [outbox] max_mb if the card has room")
    if age is not None and age > OUTBOX_OLD_S:
        problems.append("records have waited more than a day")
        fixes.append("get the link to the base station working (see the broker lines)")
    if problems:
        return warn("outbox", f"{found}: {'; '.join(problems)}", f"{' and '.join(reversed(fixes)).capitalize()}.")
    return ok("outbox", found)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- 7. clock --------------------------------------------------------------------------------------------

def check_clock(cfg: EdgeConfig | None, *, now: float | None = None, sync: dict | None = None) -> Check:
    """`now` and `sync` (edge.health.clock_synchronised's answer) default to this machine's."""
    now = time.time() if now is None else now
    sync = clock_synchronised() if sync is None else sync
    stamp = _iso(now)
    if datetime.fromtimestamp(now, timezone.utc).year < CLOCK_MIN_YEAR:
        return fail("clock", f"the clock says {stamp}: it was never set (a unit without a real-time clock "
                             f"starts from its last saved time)", SET_CLOCK)
    newest = newest_queued(cfg.outbox.path) if cfg is not None else None
    if newest is not None and newest - now > CLOCK_BACKWARDS_S:
        return fail("clock", f"the clock went backwards: it says {stamp}, but the newest outbox record was "
                             f"queued at {_iso(newest)}", SET_CLOCK)
    source = sync.get("source") or "no way to tell here"
    if sync.get("synchronized") is True:
        return ok("clock", f"{stamp}, synchronised ({source})")
    state = "not synchronised" if sync.get("synchronized") is False else "cannot tell whether it is synchronised"
    return warn("clock", f"{stamp}, {state} ({source}): records are marked clock_synchronized: false and their "
                         f"times are only as good as this clock; compare it with the laptop", SET_CLOCK)


def newest_queued(outbox: Path) -> float | None:
    """When the newest outbox record was queued; None when there is none. Read-only."""
    if not outbox.exists():
        return None
    try:
        with sqlite3.connect(f"{outbox.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT max(queued) FROM outbox").fetchone()[0]
    except sqlite3.Error:
        return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- 8. broker -------------------------------------------------------------------------------------------

def check_broker(cfg: EdgeConfig | None, *, timeout_s: float = NETWORK_TIMEOUT_S,
                 cert_warn_days: float = CERT_WARN_DAYS) -> list[Check]:
    """TCP, then TLS, then MQTT CONNECT: each step only if the one before passed."""
    if cfg is None:
        return [skipped("broker")]
    if cfg.mqtt is None:
        return []
    m = cfg.mqtt
    settings = BrokerSettings(host=m.host, port=m.port, protocol=m.protocol, client_id=f"nv-doctor-{cfg.device.id}",
                              username=cfg.device.id, cafile=m.tls.ca if m.tls else None,
                              certfile=m.tls.cert if m.tls else None, keyfile=m.tls.key if m.tls else None,
                              keepalive=max(int(timeout_s) * 2, 5))
    checks = [check_broker_reach(settings, timeout_s)]
    if checks[-1].status == FAIL:
        return checks + [skipped("broker tls", "cannot reach the broker", "Fix the line above first."),
                         skipped("broker login", "cannot reach the broker", "Fix the line above first.")]
    if settings.cafile is None:
        checks.append(warn("broker tls", "off: detections (and the password, if any) cross the link in clear text",
                           "Add [mqtt.tls] with the base station's CA certificate (docs/mqtt.md)."))
    else:
        checks.append(check_broker_tls(settings, timeout_s, cert_warn_days))
        if checks[-1].status == FAIL:
            return checks + [skipped("broker login", "the TLS handshake failed", "Fix the line above first.")]
    try:
        password = broker_settings(cfg).password
    except ConfigError as exc:
        return checks + [fail("broker login", str(exc), "Make the password file readable by the service's user.")]
    return checks + [check_broker_login(replace(settings, password=password), timeout_s)]


def check_broker_reach(settings: BrokerSettings, timeout_s: float) -> Check:
    start = time.perf_counter()
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout_s):
            pass
    except socket.gaierror as exc:
        return fail("broker reach", explain_socket_error(exc, settings),
                    "Check [mqtt] host; with no DNS on the site, put the base station's name in /etc/hosts.")
    except OSError as exc:
        return fail("broker reach", explain_socket_error(exc, settings),
                    "Check the link to the base station (radio, cable, Wi-Fi) and that mosquitto runs there "
                    "on this port (systemctl status mosquitto).")
    return ok("broker reach", f"{settings.address} answers (TCP connect in {(time.perf_counter() - start) * 1000:.0f} ms)")


def check_broker_tls(settings: BrokerSettings, timeout_s: float, cert_warn_days: float = CERT_WARN_DAYS) -> Check:
    name = "broker tls"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    try:
        context.load_verify_locations(cafile=str(settings.cafile))
    except (ssl.SSLError, OSError) as exc:
        return fail(name, f"CA file {settings.cafile} is not a usable CA certificate ({exc})",
                    "Copy the base station's CA certificate (PEM) to that path again.")
    if settings.certfile is not None:
        try:
            context.load_cert_chain(str(settings.certfile), str(settings.keyfile))
        except (ssl.SSLError, OSError) as exc:
            return fail(name, f"{settings.certfile} with key {settings.keyfile} cannot be used ({exc})",
                        "Copy this unit's certificate and the key that matches it again.")
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout_s) as raw, \
                context.wrap_socket(raw, server_hostname=settings.host) as tls:
            peer, version = tls.getpeercert(), tls.version()
    except ssl.SSLCertVerificationError as exc:
        return fail(name, explain_socket_error(exc, settings),
                    "Use the CA that signed the broker's certificate, and set [mqtt] host to a name in that certificate.")
    except (ssl.SSLError, OSError) as exc:
        return fail(name, explain_socket_error(exc, settings),
                    "Check that this unit's certificate is signed by the broker's CA and that the port speaks TLS.")
    now = time.time()
    ends = [("broker certificate", ssl.cert_time_to_seconds(peer["notAfter"]) if peer.get("notAfter") else None),
            ("CA", _not_after(settings.cafile))]
    if settings.certfile is not None:
        ends.append(("this unit's certificate", _not_after(settings.certfile)))
    days = {what: None if end is None else (end - now) / 86400 for what, end in ends}
    found = f"{version}, broker certificate verified for {settings.host}; expiry: " + ", ".join(
        f"{what} unknown" if d is None else f"{what} {_iso(now + d * 86400)[:10]} ({d:.0f} days)" for what, d in days.items())
    expired = [what for what, d in days.items() if d is not None and d < 0]
    soon = [what for what, d in days.items() if d is not None and 0 <= d < cert_warn_days]
    if expired:
        return fail(name, f"{found}: the {_listing(expired)} {'has' if len(expired) == 1 else 'have'} expired",
                    f"Get a renewed {_listing(expired)} from the base station's operator (docs/mqtt.md).")
    if soon:
        return warn(name, f"{found}: the {_listing(soon)} {'expires' if len(soon) == 1 else 'expire'} within "
                          f"{cert_warn_days:g} days",
                    f"Renew the {_listing(soon)} before then (docs/mqtt.md): the unit cannot connect once one has expired.")
    return ok(name, found)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _not_after(path: Path) -> float | None:
    """The first certificate's expiry in a PEM file. The standard library has no public parser for a
    certificate file (and the unit has no `cryptography`): this is CPython's own test decoder."""
    try:
        return ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(str(path))["notAfter"])  # noqa: SLF001
    except (AttributeError, KeyError, ValueError, ssl.SSLError, OSError):
        return None


def check_broker_login(settings: BrokerSettings, timeout_s: float) -> Check:
    """CONNECT with the unit's user name and password under the doctor's own client id. A clean
    session that expires at once (MQTT 5) or a clean session (3.1.1), and no Last Will: the broker
    keeps nothing of this visit and the service's session is untouched."""
    name = "broker login"
    v5 = settings.v5
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                         protocol=PROTOCOLS[settings.protocol], clean_session=None if v5 else True)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.cafile:
        client.tls_set(ca_certs=str(settings.cafile), certfile=_str(settings.certfile), keyfile=_str(settings.keyfile),
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    answer: dict = {}
    client.on_connect = lambda c, userdata, flags, reason, properties: answer.setdefault("reason", reason)
    client.on_disconnect = lambda c, userdata, flags, reason, properties: answer.setdefault("gone", reason)
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive, **({"clean_start": True} if v5 else {}))
    except (OSError, ssl.SSLError) as exc:
        return fail(name, explain_socket_error(exc, settings), "Fix the broker reach and tls lines first.")
    deadline = time.monotonic() + timeout_s
    while "reason" not in answer and "gone" not in answer and time.monotonic() < deadline:
        client.loop(timeout=0.2)
    reason = answer.get("reason")
    try:
        if reason is None:
            why = "closed the connection" if "gone" in answer else f"did not answer within {timeout_s:g} s"
            return fail(name, f"the broker at {settings.address} {why} after CONNECT as {settings.username!r}",
                        "Read the broker's log at the base station (journalctl -u mosquitto).")
        if reason.is_failure:
            text = str(reason).lower()
            if "not authori" in text or "user name or password" in text:
                fix = (f"Check that the password file holds the password the base station set for "
                       f"{settings.username!r} (mosquitto_passwd), and that the broker's ACL knows that user.")
            else:
                fix = "Read the broker's log at the base station (journalctl -u mosquitto)."
            # not explain_refusal(): its hint names nv-edge publish's options, the fix here names the config's
            return fail(name, f"the broker at {settings.address} refused user {settings.username!r}: {reason}", fix)
        return ok(name, f"accepted as {settings.username} (client id {settings.client_id}, MQTT {settings.protocol}); "
                        f"nothing published")
    finally:
        _disconnect(client, answer)


def _disconnect(client: mqtt.Client, answer: dict) -> None:
    """A clean DISCONNECT, so the broker logs a goodbye and not a lost unit."""
    if "gone" in answer:  # refused: the broker already closed it
        return
    client.disconnect()
    deadline = time.monotonic() + 2
    while "gone" not in answer and time.monotonic() < deadline:
        if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            break


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
