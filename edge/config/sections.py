"""The parsed config: one frozen dataclass per TOML table, with the defaults a missing key takes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from edge.audio.score_log import DEFAULT_HOURS, DEFAULT_MAX_MB
from edge.config.secret_files import read_secret
from edge.decisions.alerts import resolve_thresholds, takes_threshold
from edge.decisions.events import EventRules
from edge.delivery.outbox import OutboxLimits
from edge.image.classify import DEFAULT_BATCH, DEFAULT_OVERLAP
from edge.model.bundle import Manifest

DEFAULT_PATH = Path("/etc/naturevision/edge.toml")
DEFAULT_STATE_DIR = Path("/var/lib/naturevision")
DEVICE_ID = re.compile(r"[a-z0-9_-]{1,64}")
AFTER_ACTIONS = ("keep", "delete", "move")
_LIMITS = OutboxLimits()


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    alt_m: float | None = None


@dataclass(frozen=True)
class DeviceConfig:
    id: str  # the records' `device`, the MQTT user name and the topic prefix naturevision/<id>/
    state_dir: Path
    location: Location | None = None  # added to records that carry no GPS of their own
    stall_s: float = 300.0  # a pipeline stuck on one item this long stops the watchdog pings (systemd restarts us)


@dataclass(frozen=True)
class FolderSource:
    """A watched folder: files copied in (drone card, camera trap, audio clips) are read once settled."""

    type: ClassVar[str] = "folder"
    path: Path
    settle_s: float = 2.0  # a file must be unchanged this long: a copy in progress is not read half-written
    poll_s: float = 1.0
    after: str = "keep"  # keep | delete | move, once the file's record is in the outbox
    done_dir: Path | None = None  # where after = "move" puts it (created when missing)
    suffixes: tuple[str, ...] | None = None  # None = every image (or audio) suffix the edge reads
    recursive: bool = False
    name: str | None = None  # the ledger keys files by it; None = "folder:<path>"


@dataclass(frozen=True)
class HttpSource:
    """A camera's snapshot URL, fetched every `interval_s`."""

    type: ClassVar[str] = "http"
    url: str
    interval_s: float = 60.0
    timeout_s: float = 10.0
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None  # https with a private CA (self-signed camera)
    tls_verify: bool = True
    max_bytes: int | None = None  # refuse larger snapshots; None = the source's default
    name: str | None = None

    def password(self) -> str | None:
        return None if self.password_file is None else read_secret(self.password_file)


@dataclass(frozen=True)
class PicameraSource:
    type: ClassVar[str] = "picamera2"
    interval_s: float = 30.0
    camera: int = 0  # index in Picamera2.global_camera_info()
    size: tuple[int, int] | None = None  # (width, height) of the still; None = the sensor's full size
    name: str | None = None


@dataclass(frozen=True)
class MicrophoneSource:
    type: ClassVar[str] = "microphone"
    device: str | int | None = None  # a name substring or an index; None = the system default
    name: str | None = None


ImageSource = FolderSource | HttpSource | PicameraSource
AudioSource = MicrophoneSource | FolderSource


@dataclass(frozen=True)
class ImageModelConfig:
    path: Path
    manifest: Manifest = field(repr=False, compare=False)  # read and checked at load time
    events: EventRules | None = None  # None: one record per frame, no events; else the manifest's rules under [image.events]


@dataclass(frozen=True)
class ImageConfig:
    models: tuple[ImageModelConfig, ...]  # one or more; each frame goes to the one whose scale fits it best
    sources: tuple[ImageSource, ...]
    thresholds: dict[str, float] = field(default_factory=dict)  # overrides of the manifests', by alert group
    tile: int | None = None  # None = the model's training tile (at its scale); 0 = the whole frame
    overlap: float = DEFAULT_OVERLAP
    backend: str | None = None
    threads: int | None = None
    batch: int = DEFAULT_BATCH
    thumbnails: bool = False
    video_fps: float = 1.0  # frames classified per second of a video file (the `video` extra)
    gsd: float | None = None  # metres per pixel of frames whose files do not say (a video without telemetry)
    allow_out_of_domain: bool = False  # frames a model cannot judge may alert all the same

    @property
    def model(self) -> Path:
        """The first model's bundle (the only one in the single-model form)."""
        return self.models[0].path

    @property
    def manifest(self) -> Manifest:
        return self.models[0].manifest

    @property
    def events(self) -> EventRules | None:
        return self.models[0].events

    def resolved_thresholds(self, manifest: Manifest | None = None) -> dict[str, float]:
        """A model's thresholds (the first's by default) with the overrides it has alert groups for."""
        manifest = manifest or self.manifest
        return resolve_thresholds(manifest, {k: v for k, v in self.thresholds.items() if takes_threshold(manifest, k)})


@dataclass(frozen=True)
class AudioConfig:
    model: Path
    manifest: Manifest = field(repr=False, compare=False)
    source: AudioSource
    thresholds: dict[str, float] = field(default_factory=dict)
    hop_s: float = 0.5
    rms_gate_dbfs: float = -60.0
    per_window: bool = False
    backend: str | None = None
    threads: int | None = None
    events: EventRules = EventRules()  # audio always runs through events: a record per window is noise
    score_log: Path | None = None  # log every window's scores here for a while (edge/audio/score_log.py)
    score_log_hours: float = DEFAULT_HOURS
    score_log_mb: float = DEFAULT_MAX_MB

    def resolved_thresholds(self) -> dict[str, float]:
        return resolve_thresholds(self.manifest, self.thresholds)


@dataclass(frozen=True)
class OutboxConfig:
    path: Path
    max_mb: float = _LIMITS.max_bytes / 2**20
    max_records: int = _LIMITS.max_records
    routine_max_age_days: float = _LIMITS.routine_max_age_s / 86400
    alert_max_age_days: float = _LIMITS.alert_max_age_s / 86400


@dataclass(frozen=True)
class TlsConfig:
    ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    protocol: str = "5"
    tls: TlsConfig | None = None
    password_file: Path | None = None
    confirm: str = "receipt"
    keepalive_s: int = 60
    heartbeat_s: float = 60.0
    window: int = 100
    receipt_timeout_s: float = 60.0
    max_backoff_s: float = 60.0


@dataclass(frozen=True)
class EdgeConfig:
    path: Path
    device: DeviceConfig
    outbox: OutboxConfig
    image: ImageConfig | None = None  # None: no image pipeline
    audio: AudioConfig | None = None  # None: no audio pipeline
    mqtt: MqttConfig | None = None  # None: records stay in the outbox

    def models(self) -> tuple[Manifest, ...]:
        image = tuple(m.manifest for m in self.image.models) if self.image is not None else ()
        return image + ((self.audio.manifest,) if self.audio is not None else ())

