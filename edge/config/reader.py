"""Loading: the TOML walker that checks every key and builds the dataclasses of `sections.py`.

Every error is a `ConfigError` that names the file and the key: "<file>: [section.key]: problem;
expected ...". Array tables are counted from 1 as people count them: `image.sources[1]` is the first
`[[image.sources]]`. Relative paths resolve against `device.state_dir` (the outbox) or the config file's
folder (all else).
"""

from __future__ import annotations

import importlib.util
import re
import ssl
import tomllib
from pathlib import Path
from typing import Any

from edge.audio.score_log import DEFAULT_HOURS, DEFAULT_MAX_MB
from edge.config.errors import ConfigError
from edge.config.secret_files import read_secret
from edge.config.sections import (AFTER_ACTIONS, DEFAULT_STATE_DIR, DEVICE_ID, AudioConfig, AudioSource, DeviceConfig,
                                  EdgeConfig, FolderSource, HttpSource, ImageConfig, ImageSource, Location,
                                  MicrophoneSource, MqttConfig, OutboxConfig, PicameraSource, TlsConfig)
from edge.config.models import ModelValues
from edge.config.values import leaf, shown
from edge.delivery.connection import DEFAULT_PORT, PROTOCOLS
from edge.delivery.publisher import CONFIRM_MODES
from edge.image.classify import DEFAULT_BATCH, DEFAULT_OVERLAP
from edge.image.tiling import MAX_OVERLAP
from edge.model.interpreter import BACKENDS


def load_config(path: str | Path) -> EdgeConfig:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; expected a TOML file like systemd/edge.example.toml") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); expected a file this user can read") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax there") from None
    return _Reader(path).edge(data)


class _Reader(ModelValues):
    """Walks the parsed TOML; `where` is the key path an error names, e.g. "image.sources[2].url"."""

    # -- sections

    def edge(self, data: dict) -> EdgeConfig:
        t = self.table(data, "", required=("device",), optional=("image", "audio", "outbox", "mqtt"))
        device = self.device(t["device"])
        image = self.image(t["image"]) if "image" in t else None
        audio = self.audio(t["audio"], device.state_dir) if "audio" in t else None
        outbox = self.outbox(t.get("outbox", {}), device.state_dir)
        mqtt = self.mqtt(t["mqtt"]) if "mqtt" in t else None
        return EdgeConfig(path=self.path, device=device, outbox=outbox, image=image, audio=audio, mqtt=mqtt)

    def device(self, raw: Any) -> DeviceConfig:
        t = self.table(raw, "device", required=("id",), optional=("state_dir", "location", "stall_s"))
        device_id = self.string(t, "device.id")
        if not DEVICE_ID.fullmatch(device_id):
            raise self.fail("device.id", f"{device_id!r} cannot be a device id",
                            "1 to 64 lower-case letters, digits, '-' or '_' (it is the MQTT user name and topic level)")
        state_dir = self.path_of(t, "device.state_dir", self.here) if "state_dir" in t else DEFAULT_STATE_DIR
        location = None
        if "location" in t:
            loc = self.table(t["location"], "device.location", required=("lat", "lon"), optional=("alt_m",))
            location = Location(
                lat=self.number(loc, "device.location.lat", low=-90, high=90),
                lon=self.number(loc, "device.location.lon", low=-180, high=180),
                alt_m=self.number(loc, "device.location.alt_m") if "alt_m" in loc else None,
            )
        stall_s = self.number(t, "device.stall_s", low=1, high=86400, default=300.0)
        return DeviceConfig(id=device_id, state_dir=state_dir, location=location, stall_s=stall_s)

    def image(self, raw: Any) -> ImageConfig:
        t = self.table(raw, "image", required=("sources",),
                       optional=("model", "models", "tile", "overlap", "thresholds", "backend", "threads", "batch",
                                 "thumbnails", "events", "gsd", "allow_out_of_domain", "video_fps"))
        backend = self.choice(t, "image.backend", tuple(BACKENDS))
        threads = self.integer(t, "image.threads", low=1) if "threads" in t else None
        models = self.image_models(t, backend, threads)
        sources = t["sources"]
        if not isinstance(sources, list) or not sources or not all(isinstance(s, dict) for s in sources):
            raise self.fail("image.sources", f"got {shown(sources)}", "one or more [[image.sources]] tables")
        return ImageConfig(
            models=models,
            sources=tuple(self.image_source(s, f"image.sources[{i}]") for i, s in enumerate(sources, 1)),
            thresholds=self.image_thresholds(t, models),
            tile=self.integer(t, "image.tile", low=0) if "tile" in t else None,
            overlap=self.number(t, "image.overlap", low=0, high=MAX_OVERLAP, default=DEFAULT_OVERLAP),
            backend=backend, threads=threads,
            batch=self.integer(t, "image.batch", low=1, default=DEFAULT_BATCH),
            thumbnails=self.boolean(t, "image.thumbnails", default=False),
            video_fps=self.number(t, "image.video_fps", low=0.001, high=120, default=1.0),
            gsd=self.number(t, "image.gsd", low=1e-6, high=1e6) if "gsd" in t else None,
            allow_out_of_domain=self.boolean(t, "image.allow_out_of_domain", default=False),
        )

    def audio(self, raw: Any, state_dir: Path) -> AudioConfig:
        t = self.table(raw, "audio", required=("model", "source"),
                       optional=("thresholds", "hop_s", "rms_gate_dbfs", "per_window", "backend", "threads", "events",
                                 "score_log", "score_log_hours", "score_log_mb"))
        backend = self.choice(t, "audio.backend", tuple(BACKENDS))
        threads = self.integer(t, "audio.threads", low=1) if "threads" in t else None
        model, manifest = self.model(t, "audio", backend, threads)
        return AudioConfig(
            model=model, manifest=manifest,
            source=self.audio_source(t["source"], "audio.source"),
            thresholds=self.thresholds(t, "audio", manifest),
            hop_s=self.number(t, "audio.hop_s", low=0.01, high=60, default=0.5),
            rms_gate_dbfs=self.number(t, "audio.rms_gate_dbfs", low=-200, high=0, default=-60.0),
            per_window=self.boolean(t, "audio.per_window", default=False),
            backend=backend, threads=threads,
            events=self.events(t.get("events"), "audio.events", model, manifest),
            **self.score_log(t, state_dir),
        )

    def score_log(self, t: dict, state_dir: Path) -> dict:
        if "score_log" not in t:
            for key in ("score_log_hours", "score_log_mb"):
                if key in t:
                    raise self.fail(f"audio.{key}", "given without audio.score_log", "score_log = PATH as well, or neither")
            return {}
        path = self.path_of(t, "audio.score_log", state_dir)
        if not path.parent.is_dir():
            raise self.fail("audio.score_log", f"{path.parent}: no such folder", "a file in an existing folder the service can write")
        return {"score_log": path,
                "score_log_hours": self.number(t, "audio.score_log_hours", low=0.01, high=24 * 366, default=DEFAULT_HOURS),
                "score_log_mb": self.number(t, "audio.score_log_mb", low=0.01, default=DEFAULT_MAX_MB)}

    def outbox(self, raw: Any, state_dir: Path) -> OutboxConfig:
        t = self.table(raw, "outbox", optional=("path", "max_mb", "max_records", "routine_max_age_days", "alert_max_age_days"))
        d = OutboxConfig(path=Path())
        return OutboxConfig(
            path=self.path_of(t, "outbox.path", state_dir) if "path" in t else state_dir / "outbox.db",
            max_mb=self.number(t, "outbox.max_mb", low=1, default=d.max_mb),
            max_records=self.integer(t, "outbox.max_records", low=100, default=d.max_records),
            routine_max_age_days=self.number(t, "outbox.routine_max_age_days", low=0.01, default=d.routine_max_age_days),
            alert_max_age_days=self.number(t, "outbox.alert_max_age_days", low=0.01, default=d.alert_max_age_days),
        )

    def mqtt(self, raw: Any) -> MqttConfig:
        t = self.table(raw, "mqtt", required=("host",), optional=(
            "port", "protocol", "tls", "password_file", "confirm", "keepalive_s", "heartbeat_s", "window",
            "receipt_timeout_s", "max_backoff_s"))
        host = self.string(t, "mqtt.host")
        tls = self.tls(t["tls"]) if "tls" in t else None
        password_file = None
        if "password_file" in t:
            password_file = self.path_of(t, "mqtt.password_file", self.here)
            read_secret(password_file, config=self.path, where="mqtt.password_file")
        return MqttConfig(
            host=host,
            port=self.integer(t, "mqtt.port", low=1, high=65535, default=DEFAULT_PORT if tls else 1883),
            protocol=self.choice(t, "mqtt.protocol", tuple(PROTOCOLS), default="5"),
            tls=tls, password_file=password_file,
            confirm=self.choice(t, "mqtt.confirm", CONFIRM_MODES, default="receipt"),
            # paho refuses a keep-alive above the MQTT maximum of 65535 s
            keepalive_s=self.integer(t, "mqtt.keepalive_s", low=5, high=65535, default=60),
            heartbeat_s=self.number(t, "mqtt.heartbeat_s", low=1, default=60.0),
            window=self.integer(t, "mqtt.window", low=1, high=65535, default=100),
            receipt_timeout_s=self.number(t, "mqtt.receipt_timeout_s", low=1, default=60.0),
            max_backoff_s=self.number(t, "mqtt.max_backoff_s", low=1, default=60.0),
        )

    def tls(self, raw: Any) -> TlsConfig:
        t = self.table(raw, "mqtt.tls", required=("ca",), optional=("cert", "key"))
        ca = self.existing_file(t, "mqtt.tls.ca")
        cert = self.existing_file(t, "mqtt.tls.cert") if "cert" in t else None
        key = self.existing_file(t, "mqtt.tls.key") if "key" in t else None
        if (cert is None) != (key is None):
            raise self.fail("mqtt.tls", "cert and key must be given together", "both cert and key, or neither")
        # Loading them now turns "TLS fails at 3 a.m." into an error at check time.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            raise self.fail("mqtt.tls.ca", f"{ca} is not a usable CA certificate ({exc})", "a PEM CA certificate") from None
        if cert is not None:
            try:
                context.load_cert_chain(str(cert), str(key))
            except (ssl.SSLError, OSError) as exc:
                raise self.fail("mqtt.tls.cert", f"{cert} with key {key} cannot be used ({exc})",
                                "this unit's PEM certificate and the private key that matches it") from None
        return TlsConfig(ca=ca, cert=cert, key=key)

    # -- sources

    def image_source(self, raw: dict, where: str) -> ImageSource:
        kind = self.choice(raw, f"{where}.type", ("folder", "http", "picamera2"), required=True)
        if kind == "folder":
            return self.folder(raw, where)
        if kind == "http":
            return self.http(raw, where)
        t = self.table(raw, where, required=("type",), optional=("interval_s", "camera", "size", "name"))
        if importlib.util.find_spec("picamera2") is None:
            raise self.fail(f"{where}.type", "picamera2 is not installed here",
                            "apt install python3-picamera2 and a venv made with --system-site-packages, or another source type")
        size = t.get("size")
        if size is not None and not (isinstance(size, list) and len(size) == 2
                                     and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise self.fail(f"{where}.size", f"got {shown(size)}", "[width, height] in pixels")
        return PicameraSource(interval_s=self.number(t, f"{where}.interval_s", low=0.1, default=30.0),
                              camera=self.integer(t, f"{where}.camera", low=0, default=0),
                              size=tuple(size) if size else None, name=self.name(t, where))

    def audio_source(self, raw: Any, where: str) -> AudioSource:
        if not isinstance(raw, dict):
            raise self.fail(where, f"got {shown(raw)}", "an [audio.source] table")
        kind = self.choice(raw, f"{where}.type", ("microphone", "files"), required=True)
        if kind == "files":
            return self.folder(raw, where)
        t = self.table(raw, where, required=("type",), optional=("device", "name"))
        device = t.get("device")
        if device is not None and (isinstance(device, bool) or not isinstance(device, (str, int)) or device == ""
                                   or isinstance(device, int) and device < 0):
            raise self.fail(f"{where}.device", f"got {shown(device)}", "a device name (or part of it) or an index >= 0")
        return MicrophoneSource(device=device, name=self.name(t, where))

    def folder(self, raw: dict, where: str) -> FolderSource:
        t = self.table(raw, where, required=("type", "path"),
                       optional=("settle_s", "poll_s", "after", "done_dir", "suffixes", "recursive", "name"))
        path = self.existing_dir(t, f"{where}.path")
        after = self.choice(t, f"{where}.after", AFTER_ACTIONS, default="keep")
        done_dir = self.path_of(t, f"{where}.done_dir", self.here) if "done_dir" in t else None
        if after == "move" and done_dir is None:
            raise self.fail(f"{where}.done_dir", "missing (after = \"move\")", "the folder files are moved to")
        if after != "move" and done_dir is not None:
            raise self.fail(f"{where}.done_dir", f"given but after = {after!r} moves nothing", 'after = "move", or no done_dir')
        if done_dir is not None and done_dir.resolve() == path.resolve():
            raise self.fail(f"{where}.done_dir", "is the watched folder itself", "another folder")
        return FolderSource(
            path=path,
            settle_s=self.number(t, f"{where}.settle_s", low=0, default=2.0),
            poll_s=self.number(t, f"{where}.poll_s", low=0.05, default=1.0),
            after=after, done_dir=done_dir, suffixes=self.suffixes(t, f"{where}.suffixes"),
            recursive=self.boolean(t, f"{where}.recursive", default=False), name=self.name(t, where),
        )

    def http(self, raw: dict, where: str) -> HttpSource:
        t = self.table(raw, where, required=("type", "url"),
                       optional=("interval_s", "timeout_s", "username", "password_file", "ca_file", "tls_verify",
                                 "max_bytes", "name"))
        url = self.string(t, f"{where}.url")
        if not re.match(r"https?://[^/\s]+", url):
            raise self.fail(f"{where}.url", f"{url!r} is not an http(s) URL", "http://HOST/PATH or https://HOST/PATH")
        if "@" in url.split("/")[2]:
            raise self.fail(f"{where}.url", "has a user name or password in it (it would go into every record)",
                            "username = ... and password_file = ... instead")
        username = self.string(t, f"{where}.username") if "username" in t else None
        password_file = None
        if "password_file" in t:
            password_file = self.path_of(t, f"{where}.password_file", self.here)
            read_secret(password_file, config=self.path, where=f"{where}.password_file")
        if (username is None) != (password_file is None):
            raise self.fail(where, "username and password_file must be given together", "both, or neither")
        ca_file = self.existing_file(t, f"{where}.ca_file") if "ca_file" in t else None
        if ca_file is not None and not url.startswith("https://"):
            raise self.fail(f"{where}.ca_file", "given for a plain http URL", "an https:// URL, or no ca_file")
        interval = self.number(t, f"{where}.interval_s", low=0.1, default=60.0)
        timeout = self.number(t, f"{where}.timeout_s", low=0.1, default=10.0)
        if timeout > interval:
            raise self.fail(f"{where}.timeout_s", f"{timeout} s is longer than interval_s {interval} s",
                            "a timeout no longer than the interval, or snapshots would pile up")
        return HttpSource(url=url, interval_s=interval, timeout_s=timeout, username=username,
                          password_file=password_file, ca_file=ca_file,
                          tls_verify=self.boolean(t, f"{where}.tls_verify", default=True),
                          max_bytes=self.integer(t, f"{where}.max_bytes", low=1024) if "max_bytes" in t else None,
                          name=self.name(t, where))

    def suffixes(self, t: dict, where: str) -> tuple[str, ...] | None:
        value = t.get(leaf(where))
        if value is None:
            return None
        if not (isinstance(value, list) and value and all(isinstance(v, str) and re.fullmatch(r"\.\w+", v) for v in value)):
            raise self.fail(where, f"got {shown(value)}", 'a list of file suffixes like [".jpg", ".png"]')
        return tuple(v.lower() for v in value)

    def name(self, t: dict, where: str) -> str | None:
        return self.string(t, f"{where}.name") if "name" in t else None
