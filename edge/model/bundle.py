"""Model bundle: one `.nvm` file = a zip holding `model.tflite` and `manifest.json`.

The manifest says everything the edge needs to use the model the way it was trained: labels, which
labels raise alerts (and, optionally, the groups they are decided in), the input spec, what data it
learnt from, recommended thresholds and event rules, and its metrics. It carries two checksums (bundle format 2):

- `model_sha256`: SHA-256 of the bytes of `model.tflite`;
- `manifest_sha256`: SHA-256 of the manifest itself, in canonical JSON without that one key
  (`manifest_checksum`: `json.dumps(manifest, sort_keys=True, separators=(",", ":"))`). It
  covers the labels, alert labels, thresholds, input spec and `model_sha256`, hence the model too.

`read_bundle` refuses a bundle whose manifest or model changed after `write_bundle` made it (a bad
copy, a hand-edited manifest). These are checksums, not signatures: they do not stop someone who
recomputes them. Format 1 (bundles written before `manifest_sha256`) still loads, with a warning
that its manifest is unprotected; `write_bundle` always writes format 2, so `write_bundle(path,
bundle.model_bytes, bundle.manifest)` re-seals a format-1 bundle as it is. Loading also checks the
runtime version; `edge.model.loaded.load_model` then checks the manifest against the interpreter's
real tensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge import __version__
from edge.features.logmel import FeatureSpecError, LogMelSpec
from edge.features.pixels import InputSpec
from edge.model.runtime import runtime_needed, version_tuple
from edge.model.trained_on import TrainedOn, parse_trained_on

FORMAT_VERSION = 2  # what write_bundle writes
_WARNED: set[tuple[Path, str]] = set()  # format-1 bundles already warned about
READABLE_FORMATS = (1, 2)  # 1: no manifest_sha256 (loads with a warning)
MODEL_ENTRY = "model.tflite"
MANIFEST_ENTRY = "manifest.json"
TASKS = ("image", "audio")
COLOURS = {"image": "rgb", "audio": "log-mel"}  # what the input tensor holds, per task
INPUT_DTYPES = ("int8", "uint8", "float32")
RESIZE_RULES = ("bilinear", "nearest", "bicubic")

log = logging.getLogger("nv.model")


class BundleError(Exception):
    """A bundle that cannot be used: the message names the file and says what to do."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    task: str
    labels: tuple[str, ...]
    alert_labels: tuple[str, ...]
    thresholds: dict[str, float]
    input: InputSpec
    trained_on: TrainedOn
    converter_version: str
    min_runtime: str
    model_sha256: str = ""
    manifest_sha256: str = ""  # "" in format 1
    audio: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    # Alert groups: name -> alert labels whose probabilities add up to the group's score; thresholds
    # are then keyed by group. None: every alert label is its own group (edge.decisions.groups).
    groups: dict[str, tuple[str, ...]] | None = None
    events: dict[str, Any] | None = None  # recommended event rules; edge.decisions.events checks the keys

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    model_bytes: bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_checksum(data: dict) -> str:
    """SHA-256 of a manifest (as parsed from JSON) in canonical form, without its own `manifest_sha256`."""
    rest = {key: value for key, value in data.items() if key != "manifest_sha256"}
    return sha256_hex(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def write_bundle(path: str | Path, model_bytes: bytes, manifest: Manifest) -> Manifest:
    """Write `path` in the current format with the model and its manifest; both checksums are
    computed here, and `min_runtime` is raised to what the manifest's features need. Returns the
    manifest as written."""
    needed = max(manifest.min_runtime, runtime_needed(manifest), key=version_tuple)
    manifest = replace(manifest, format=FORMAT_VERSION, model_sha256=sha256_hex(model_bytes), manifest_sha256="",
                       min_runtime=needed)
    manifest = replace(manifest, manifest_sha256=manifest_checksum(json.loads(manifest.to_json())))
    parse_manifest(json.loads(manifest.to_json()), Path(path))  # never write what we cannot load
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST_ENTRY, manifest.to_json())
        zf.writestr(MODEL_ENTRY, model_bytes)
    tmp.replace(path)
    return manifest


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle and verify its format, runtime version and both checksums (format 1: the model's)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such model bundle; pass --model PATH to a .nvm file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for entry in (MANIFEST_ENTRY, MODEL_ENTRY):
                if entry not in names:
                    raise BundleError(f"{path}: bundle has no {entry}; rebuild it with nv-convert")
            raw_manifest = zf.read(MANIFEST_ENTRY)
            model_bytes = zf.read(MODEL_ENTRY)
    except zipfile.BadZipFile as exc:
        hint = " (a bare .tflite file? models must be .nvm bundles made by nv-convert)" if _is_tflite(path) else ""
        raise BundleError(f"{path}: not a model bundle{hint}: {exc}") from None
    try:
        data = json.loads(raw_manifest)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: manifest.json is not valid JSON: {exc}") from None
    manifest = parse_manifest(data, path)
    actual = sha256_hex(model_bytes)
    if actual != manifest.model_sha256:
        raise BundleError(
            f"{path}: model checksum mismatch: manifest says {manifest.model_sha256}, "
            f"model.tflite is {actual}; the file is damaged or was edited: copy it again"
        )
    if not manifest.manifest_sha256 and (path, manifest.model_sha256) not in _WARNED:
        _WARNED.add((path, manifest.model_sha256))  # once per bundle and process: config check, then the pipeline
        log.warning("%s: bundle format %d: manifest.json (labels, alert labels, thresholds) has no checksum, so an "
                    "edit to it would go unnoticed; get a format-%d copy of the bundle (nv-convert writes one)",
                    path, manifest.format, FORMAT_VERSION)
    return Bundle(path=path, manifest=manifest, model_bytes=model_bytes)


def _is_tflite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8)[4:8] == b"TFL3"


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Validate a manifest dict into a Manifest; every error names the key and what is expected."""
    where = f"{path}: manifest.json"
    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object")
    fmt = _get(data, "format", int, where)
    if fmt not in READABLE_FORMATS:
        raise BundleError(
            f"{where}: bundle format {fmt}, this runtime reads formats {' and '.join(map(str, READABLE_FORMATS))}; "
            "upgrade naturevision or convert the model again"
        )
    sealed = _check_manifest_checksum(data, fmt, path)
    min_runtime = _get(data, "min_runtime", str, where)
    try:
        too_new = version_tuple(min_runtime) > version_tuple(__version__)
    except ValueError as exc:
        raise BundleError(f"{where}: min_runtime: {exc}") from None
    if too_new:
        raise BundleError(f"{where}: model needs naturevision >= {min_runtime}, this is {__version__}: upgrade")
    task = _get(data, "task", str, where)
    if task not in TASKS:
        raise BundleError(f"{where}: task: expected one of {TASKS}, got {task!r}")
    labels = tuple(_get(data, "labels", list, where))
    if len(labels) < 2 or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise BundleError(f"{where}: labels: expected at least two distinct non-empty strings, got {list(labels)}")
    alert_labels = tuple(_get(data, "alert_labels", list, where))
    unknown = [x for x in alert_labels if x not in labels]
    if unknown:
        raise BundleError(f"{where}: alert_labels: {unknown} are not in labels {list(labels)}")
    groups = _parse_groups(data.get("groups"), labels, alert_labels, where)
    keyed = "groups" if groups is not None else "labels"  # what thresholds are keyed by
    names = tuple(groups) if groups is not None else labels
    thresholds = _get(data, "thresholds", dict, where)
    for label, value in thresholds.items():
        if label not in names:
            raise BundleError(f"{where}: thresholds: {label!r} is not in {keyed} {list(names)}")
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise BundleError(f"{where}: thresholds.{label}: expected a number in [0, 1], got {value!r}")
    missing = [x for x in (groups or alert_labels) if x not in thresholds]
    if missing:
        raise BundleError(f"{where}: thresholds: alert {keyed} {missing} have no threshold")
    events = data.get("events")
    if events is not None and not isinstance(events, dict):
        raise BundleError(f"{where}: events: expected an object of event rules, got {type(events).__name__}")
    input_spec = _parse_input(_get(data, "input", dict, where), where)
    trained_on = _parse_trained_on(_get(data, "trained_on", dict, where), where)
    audio = data.get("audio")
    if task == "audio":
        if not isinstance(audio, dict):
            raise BundleError(f"{where}: audio: an audio model needs its feature spec (an object)")
        try:
            LogMelSpec.from_dict(audio, "audio")
        except FeatureSpecError as exc:
            raise BundleError(f"{where}: {exc}") from None
    if input_spec.colour != COLOURS[task]:
        raise BundleError(f"{where}: input.colour: a {task} model takes {COLOURS[task]!r}, got {input_spec.colour!r}")
    sha = _get(data, "model_sha256", str, where)
    if len(sha) != 64:
        raise BundleError(f"{where}: model_sha256: expected 64 hex digits, got {sha!r}")
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        raise BundleError(f"{where}: metrics: expected an object")
    return Manifest(
        name=_get(data, "name", str, where),
        version=_get(data, "version", str, where),
        task=task,
        labels=labels,
        alert_labels=alert_labels,
        thresholds={k: float(v) for k, v in thresholds.items()},
        input=input_spec,
        trained_on=trained_on,
        converter_version=_get(data, "converter_version", str, where),
        min_runtime=min_runtime,
        model_sha256=sha,
        manifest_sha256=sealed,
        audio=audio,
        metrics=metrics,
        format=fmt,
        groups=groups,
        events=events,
    )


def _check_manifest_checksum(data: dict, fmt: int, path: Path) -> str:
    """The manifest's `manifest_sha256`, verified: first of all, so an edited manifest is named as such
    rather than by whatever key the edit broke. Format 1 has none ("")."""
    if fmt < 2 and "manifest_sha256" not in data:
        return ""
    stated = _get(data, "manifest_sha256", str, f"{path}: manifest.json")
    actual = manifest_checksum(data)
    if stated != actual:
        raise BundleError(
            f"{path}: manifest.json was changed after the bundle was made (manifest_sha256 says {stated}, the "
            f"manifest is {actual}): its labels, alert labels or thresholds cannot be trusted; copy the bundle "
            "again from its release, or rebuild it with nv-convert"
        )
    return stated


def _parse_groups(raw: Any, labels: tuple[str, ...], alert_labels: tuple[str, ...],
                  where: str) -> dict[str, tuple[str, ...]] | None:
    """Each alert label in exactly one group; a group's name is no label's, unless the group is
    that one label (an image model's {"mining": ["mining"]})."""
    if raw is None:
        return None
    where = f"{where}: groups"
    if not isinstance(raw, dict) or not raw:
        raise BundleError(f"{where}: expected an object of group name -> alert labels, got {raw!r}")
    groups = {}
    for name, members in raw.items():
        if not (name and isinstance(members, list) and members and all(isinstance(m, str) for m in members)
                and len(set(members)) == len(members)):
            raise BundleError(f"{where}.{name}: expected a non-empty list of distinct alert labels, got {members!r}")
        strays = [m for m in members if m not in alert_labels]
        if strays:
            raise BundleError(f"{where}.{name}: {strays} are not alert labels {list(alert_labels)}")
        if name in labels and members != [name]:
            raise BundleError(f"{where}.{name}: a group may take a label's name only when it is that label alone; "
                              "rename the group")
        groups[name] = tuple(members)
    grouped = [m for members in groups.values() for m in members]
    twice = sorted({m for m in grouped if grouped.count(m) > 1})
    if twice:
        raise BundleError(f"{where}: {twice} are in more than one group; put each alert label in exactly one")
    loose = [label for label in alert_labels if label not in grouped]
    if loose:
        raise BundleError(f"{where}: alert labels {loose} are in no group; put each alert label in exactly one")
    return groups


def _parse_input(raw: dict, where: str) -> InputSpec:
    where = f"{where}: input"
    size = raw.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise BundleError(f"{where}.size: expected [width, height] in pixels, got {size!r}")
    colour = _get(raw, "colour", str, where)
    if colour not in COLOURS.values():
        raise BundleError(f"{where}.colour: expected one of {tuple(COLOURS.values())}, got {colour!r}")
    resize = _get(raw, "resize", str, where)
    if resize not in RESIZE_RULES:
        raise BundleError(f"{where}.resize: expected one of {RESIZE_RULES}, got {resize!r}")
    dtype = _get(raw, "dtype", str, where)
    if dtype not in INPUT_DTYPES:
        raise BundleError(f"{where}.dtype: expected one of {INPUT_DTYPES}, got {dtype!r}")
    stats = {}
    for key in ("mean", "std"):
        value = raw.get(key)
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)):
            raise BundleError(f"{where}.{key}: expected three numbers (R, G, B), got {value!r}")
        stats[key] = tuple(float(v) for v in value)
    if any(v <= 0 for v in stats["std"]):
        raise BundleError(f"{where}.std: values must be > 0, got {list(stats['std'])}")
    try:
        return InputSpec(size=(size[0], size[1]), colour=colour, resize=resize, dtype=dtype, tta=raw.get("tta", 1), **stats)
    except ValueError as exc:  # tta: a bundle without it (older) is read as 1
        raise BundleError(f"{where}.{exc}") from None


def _parse_trained_on(raw: dict, where: str) -> TrainedOn:
    try:
        return parse_trained_on(raw, f"{where}: trained_on")
    except (ValueError, TypeError) as exc:
        raise BundleError(str(exc)) from None


def _get(data: dict, key: str, kind: type, where: str):
    if key not in data:
        raise BundleError(f"{where}: missing key {key!r}")
    value = data[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise BundleError(f"{where}: {key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value
