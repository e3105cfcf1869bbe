"""`nv-edge`: the field unit's command line.

    nv-edge classify PATH...   classify image and audio files or folders, one JSON record per frame/window on stdout
    nv-edge listen             classify a microphone until stopped (edge/listen_command.py)
    nv-edge info MODEL         show what a model bundle holds
    nv-edge publish            send an outbox to the broker until stopped (edge/publish_command.py)
    nv-edge config check PATH  check the unit's config file (edge/config_command.py)
    nv-edge doctor             check a unit: config, models, sources, disk, clock, broker (edge/doctor_command.py)
    nv-edge run --config PATH  the field service: pipelines + publisher until SIGTERM (edge/service.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge import __version__, config_command, doctor_command, listen_command, publish_command
from edge.audiofile import AUDIO_SUFFIXES, is_audio_file
from edge.bundle import BundleError
from edge.classify import DEFAULT_BATCH, DEFAULT_OVERLAP, ClassifyOptions, classify_frame
from edge.decision import resolve_thresholds
from edge.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageError
from edge.interpreter import BACKENDS
from edge.model import Model, load_model
from edge.outbox import Outbox, OutboxError
from edge.progress import Progress
from edge.record import default_device, error_record, image_record
from edge.thumbnail import best_tile_jpeg
from edge.tiling import MAX_OVERLAP

DEFAULT_MODEL_NAME = "mining-s2/mining-s2.nvm"  # models/<name>/ holds the bundle, its report and metrics.json
EXIT_USAGE = 2


def default_model_path() -> Path | None:
    """$NV_MODEL, else the shipped default beside the source tree, else the system install."""
    candidates = [os.environ.get("NV_MODEL")] if os.environ.get("NV_MODEL") else []
    candidates += [
        Path(__file__).resolve().parent.parent / "models" / DEFAULT_MODEL_NAME,
        Path("/usr/share/naturevision/models") / DEFAULT_MODEL_NAME,
    ]
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def iter_inputs(paths: list[str]):
    """Named files as given (whatever their suffix); folders walked recursively for image and audio files."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for file in sorted(files):
                    if not file.startswith(".") and file.lower().endswith(IMAGE_SUFFIXES + AUDIO_SUFFIXES):
                        yield Path(root) / file
        else:
            yield path


def _threshold(text: str) -> tuple[str, float]:
    label, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or LABEL=NUMBER, got {text!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be in [0, 1], got {number}")
    return (label or "*", number)


def _overlap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.25, got {text!r}") from None
    if not 0.0 <= value <= MAX_OVERLAP:
        raise argparse.ArgumentTypeError(f"overlap must be from 0 to {MAX_OVERLAP}, got {value}")
    return value


def _positive(kind: str, minimum: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{kind} must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nv-edge", description="NatureVision field unit: offline mining detector.")
    parser.add_argument("--version", action="version", version=f"nv-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("classify", help="classify image and audio files or folders (recursive)")
    c.add_argument("paths", nargs="+", metavar="PATH", help="image or audio files, or folders")
    c.add_argument("--model", type=Path, help=f"model bundle (.nvm); default: $NV_MODEL or models/{DEFAULT_MODEL_NAME}")
    c.add_argument("--format", choices=("json", "table"), default="json", help="json: one record per line (default)")
    c.add_argument(
        "--threshold", type=_threshold, action="append", default=[], metavar="[LABEL=]T",
        help="alert threshold in [0, 1] for every alert label, or LABEL=T for one (repeatable); default: the manifest's",
    )
    c.add_argument("--tile", type=_positive("tile", 0), metavar="PX",
                   help="tile edge in frame pixels; 0 = classify the whole frame; default: the model's training tile size")
    c.add_argument("--overlap", type=_overlap, default=DEFAULT_OVERLAP, help=f"tile overlap fraction (default {DEFAULT_OVERLAP})")
    c.add_argument("--backend", choices=tuple(BACKENDS), help="force an interpreter (default: the first that imports)")
    c.add_argument("--threads", type=_positive("threads"), help="interpreter threads (default: the backend's choice)")
    c.add_argument("--batch", type=_positive("batch"), default=DEFAULT_BATCH, help=f"tiles per invoke (default {DEFAULT_BATCH})")
    c.add_argument("--device", default=None, help="device id in records (default: $NV_DEVICE or the host name)")
    c.add_argument("--max-pixels", type=_positive("max-pixels"), default=DEFAULT_MAX_PIXELS, help="refuse larger frames")
    c.add_argument("--max-bytes", type=_positive("max-bytes"), default=DEFAULT_MAX_BYTES, help="refuse larger files")
    c.add_argument("--outbox", type=Path, help="also queue every record in this outbox for `nv-edge publish`")
    c.add_argument("--thumbnails", action="store_true", help="with --outbox: queue a small JPEG of each alert's best tile")
    listen_command.add_classify_arguments(c)

    i = sub.add_parser("info", help="show a model bundle's manifest and tensors")
    i.add_argument("model", type=Path, nargs="?", help="model bundle (.nvm); default: the shipped model")
    i.add_argument("--backend", choices=tuple(BACKENDS))

    publish_command.add_arguments(sub.add_parser("publish", help="send an outbox to the MQTT broker until stopped"))
    config_command.add_arguments(sub.add_parser("config", help="check the unit's config file"))
    doctor_command.add_arguments(sub.add_parser("doctor", help="check a unit: one OK/WARN/FAIL line per check"))
    listen_command.add_arguments(sub.add_parser("listen", help="classify a microphone until stopped (Ctrl-C)"))
    r = sub.add_parser("run", help="run the field service from its config file until SIGTERM")
    r.add_argument("--config", type=Path, default=Path(os.environ.get("NV_CONFIG", "/etc/naturevision/edge.toml")),
                   help="the unit's TOML config (default $NV_CONFIG or /etc/naturevision/edge.toml)")
    return parser


def _open_model(path: Path | None, backend: str | None, threads: int | None) -> Model:
    path = path or default_model_path()
    if path is None:
        raise BundleError(f"no model given and no default found (models/{DEFAULT_MODEL_NAME}); pass --model PATH")
    return load_model(path, backend=backend, num_threads=threads)


def cmd_classify(args: argparse.Namespace) -> int:
    inputs = list(iter_inputs(args.paths))
    images = [p for p in inputs if not is_audio_file(p)]
    overrides = dict(args.threshold)
    audio = model = None
    try:  # audio files go to the audio model (edge/listen_command.py); each model takes its own labels
        if len(images) < len(inputs):
            audio = listen_command.AudioFiles(args, overrides, strict=not images)
            overrides = {k: v for k, v in overrides.items() if k not in audio.alert_labels}
        if images or audio is None:
            model = _open_model(args.model, args.backend, args.threads)
            thresholds = resolve_thresholds(model.manifest, overrides)
        else:
            thresholds = {}
    except ValueError as exc:  # from resolve_thresholds: an override that names no alert label
        raise UsageError(f"--threshold: {exc}") from None
    options = ClassifyOptions(
        thresholds=thresholds,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch,
        max_pixels=args.max_pixels,
        max_bytes=args.max_bytes,
    )
    device = args.device or default_device()
    progress = Progress(len(inputs))
    writer = TableWriter(sys.stdout) if args.format == "table" else None
    outbox = Outbox(args.outbox) if args.outbox else None
    try:
        for path in inputs:
            failed = False
            for record in audio.records(path, device) if audio is not None and is_audio_file(path) else [
                    classify_path(model, path, options, device)]:
                failed |= "error" in record
                if outbox is not None:  # first: a record on its way somewhere is a record on the card
                    thumbnail = args.thumbnails and record.get("alert") and record["kind"] == "image"
                    outbox.put(record, best_tile_jpeg(path, record) if thumbnail else None)
                if writer:
                    writer.write(record)
                else:
                    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
                    sys.stdout.flush()
            progress.step(error=failed)
    finally:
        if outbox is not None:
            outbox.close()  # commits what is still buffered, even on Ctrl-C
    progress.close()
    return 0


def classify_path(model: Model, path: Path, options: ClassifyOptions, device: str) -> dict:
    """One record for one file: a detection, or an error naming the file. Never raises for bad input."""
    source = str(path)
    try:
        result = classify_frame(model, path, options)
    except ImageError as exc:
        return error_record(source=source, error=f"{source}: {exc}", device=device, model=model.identity)
    except Exception as exc:  # noqa: BLE001 - one bad frame must never stop a batch
        return error_record(source=source, error=f"{source}: unexpected {type(exc).__name__}: {exc}", device=device, model=model.identity)
    m = model.manifest
    return image_record(result, model=model.identity, labels=m.labels, alert_labels=m.alert_labels, source=source, path=path, device=device)


class TableWriter:
    COLUMNS = ("source", "label", "score", "alert", "tiles/at", "best box / audio / error")

    def __init__(self, stream):
        self.stream = stream
        self.stream.write("{:<40} {:<12} {:>6} {:<5} {:>7}  {}\n".format(*self.COLUMNS))

    def write(self, record: dict) -> None:
        source = record["source"] if len(record["source"]) <= 40 else "…" + record["source"][-39:]
        if "error" in record:
            line = f"{source:<40} {'ERROR':<12} {'':>6} {'':<5} {'':>7}  {record['error']}"
        elif record["kind"] == "audio":  # "at": the window's (or event's) offset into the clip, or its time
            alert = "YES" if record["alert"] else "no"
            place, event = record.get("audio") or record["event"], record.get("event")
            at = f"{place['offset_s']:.2f}s" if "offset_s" in place else record["time"][11:19]
            detail = (f"event {event['phase']}, {event['duration_s']:.1f} s" if event
                      else f"{place['duration_s']:.2f} s, {place['rms_dbfs']:.0f} dBFS")
            line = f"{source:<40} {record['label']:<12} {record['score']:>6.3f} {alert:<5} {at:>7}  {detail}"
        else:
            tiles = record.get("tiles")
            grid = f"{tiles['rows']}x{tiles['cols']}" if tiles else "1"
            box = ",".join(map(str, tiles["best"]["box"])) if tiles else ""
            alert = "YES" if record["alert"] else "no"
            line = f"{source:<40} {record['label']:<12} {record['score']:>6.3f} {alert:<5} {grid:>7}  {box}"
        self.stream.write(line + "\n")
        self.stream.flush()


def cmd_info(args: argparse.Namespace) -> int:
    model = _open_model(args.model, args.backend, None)
    info = {
        "path": str(model.path),
        "backend": f"{model.runner.backend} {model.runner.backend_version}",
        "input_tensor": {"shape": list(model.runner.input.shape), "dtype": model.runner.input.dtype,
                         "scale": model.runner.input.scale, "zero_point": model.runner.input.zero_point},
        "output_tensor": {"shape": list(model.runner.output.shape), "dtype": model.runner.output.dtype},
        "manifest": json.loads(model.manifest.to_json()),
    }
    print(json.dumps(info, indent=2))
    return 0


class UsageError(Exception):
    pass


def _cmd_run(args: argparse.Namespace) -> int:
    from edge import service

    return service.main(args.config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"classify": cmd_classify, "info": cmd_info, "publish": publish_command.run,
                "config": config_command.run, "run": _cmd_run, "listen": listen_command.run,
                "doctor": doctor_command.run}
    try:
        return handlers[args.command](args)
    except (BundleError, UsageError, OutboxError) as exc:
        print(f"nv-edge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
