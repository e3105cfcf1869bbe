"""`nv-edge classify PATH...`: image, video and audio files or folders -> one JSON record per frame, sampled
video frame (`--fps`, `--every`; edge/image/footage.py) or audio window (or event) on stdout, or a table;
`--outbox` also queues them. A file that cannot be read gives an error record naming it, and the batch goes
on. With several `--model`s each frame goes to the one whose training scale fits it best
(edge/image/choice.py; a video's frames go to the first). Only regular files are opened: a FIFO, a device or a
socket (or a symlink to one) gives an error record saying what it is (`edge/filekind.py`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from edge.audio.audiofile import AUDIO_SUFFIXES, is_audio_file
from edge.cli import listen
from edge.cli.arguments import UsageError, ground_resolution, overlap, positive, shipped_model, threshold
from edge.cli.progress import Progress
from edge.cli.table import TableWriter
from edge.decisions.alerts import resolve_thresholds, takes_threshold
from edge.delivery.outbox import Outbox
from edge.filekind import not_a_file
from edge.image.choice import ImageModel, pick
from edge.image.classify import DEFAULT_BATCH, DEFAULT_OVERLAP, ClassifyOptions, classify_frame
from edge.image.decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageError
from edge.image.footage import video_records
from edge.image.records import image_record
from edge.image.thumbnail import best_tile_jpeg
from edge.image.video import DEFAULT_FPS, VIDEO_SUFFIXES, is_video_file
from edge.model.bundle import BundleError
from edge.model.interpreter import BACKENDS
from edge.model.loaded import Model, load_model
from edge.records.record import default_device, error_record

DEFAULT_MODEL_NAME = "mining-s2/mining-s2.nvm"  # models/<name>/ holds the bundle, its report and metrics.json


def default_model_path() -> Path | None:
    return shipped_model("NV_MODEL", DEFAULT_MODEL_NAME)


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("paths", nargs="+", metavar="PATH", help="image, video or audio files, or folders")
    c.add_argument("--model", type=Path, action="append", default=[],
                   help="model bundle (.nvm); repeat it for several image models, each frame then goes to the one whose "
                        f"ground resolution fits it best; default: $NV_MODEL or models/{DEFAULT_MODEL_NAME}")
    c.add_argument("--format", choices=("json", "table"), default="json", help="json: one record per line (default)")
    c.add_argument(
        "--threshold", type=threshold, action="append", default=[], metavar="[GROUP=]T",
        help="alert threshold in [0, 1] for every alert group, or GROUP=T for one (repeatable; a model without "
             "groups: each alert label is one); default: the manifest's",
    )
    c.add_argument("--tile", type=positive("tile", 0), metavar="PX",
                   help="tile edge in frame pixels; 0 = classify the whole frame; default: the model's training tile size")
    c.add_argument("--gsd", type=ground_resolution, metavar="M",
                   help="ground resolution of every frame (video frames too) in metres per pixel, over what the files and a "
                        "video's DJI telemetry say (frames of a "
                        "model that learnt one are resampled to it; without it, a frame that says nothing is out of domain)")
    c.add_argument("--allow-out-of-domain", action="store_true",
                   help="let frames the model cannot judge (resolution unknown or outside its range, smaller than a tile) "
                        "raise alerts all the same; their records still say out_of_domain")
    c.add_argument("--overlap", type=overlap, default=DEFAULT_OVERLAP, help=f"tile overlap fraction (default {DEFAULT_OVERLAP})")
    c.add_argument("--backend", choices=tuple(BACKENDS), help="force an interpreter (default: the first that imports)")
    c.add_argument("--threads", type=positive("threads"), help="interpreter threads (default: the backend's choice)")
    c.add_argument("--batch", type=positive("batch"), default=DEFAULT_BATCH, help=f"tiles per invoke (default {DEFAULT_BATCH})")
    c.add_argument("--device", default=None, help="device id in records (default: $NV_DEVICE or the host name)")
    c.add_argument("--max-pixels", type=positive("max-pixels"), default=DEFAULT_MAX_PIXELS, help="refuse larger frames")
    c.add_argument("--max-bytes", type=positive("max-bytes"), default=DEFAULT_MAX_BYTES, help="refuse larger files")
    c.add_argument("--outbox", type=Path, help="also queue every record in this outbox for `nv-edge publish`")
    c.add_argument("--thumbnails", action="store_true", help="with --outbox: queue a small JPEG of each alert's best tile")
    add_video_arguments(c)
    listen.add_classify_arguments(c)


def add_video_arguments(c: argparse.ArgumentParser) -> None:
    v = c.add_argument_group("video files (.mp4, .mov; needs the video extra)")
    rate = v.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=seconds("fps"), metavar="N",
                      help=f"video frames classified per second of video (default {DEFAULT_FPS:g}; 0.5 = one every 2 s)")
    rate.add_argument("--every", type=seconds("every"), metavar="S", help="seconds of video between classified frames")


def seconds(kind: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value > 0 and value < float("inf")):
            raise argparse.ArgumentTypeError(f"{kind} must be a positive number, got {text!r}")
        return value

    return parse


def every_s(args: argparse.Namespace) -> float:
    if args.every is not None:
        return args.every
    return 1.0 / (args.fps or DEFAULT_FPS)


def warn(message: str) -> None:
    print(f"nv-edge: warning: {message}", file=sys.stderr, flush=True)


def open_model(path: Path | None, backend: str | None, threads: int | None, task: str | None = "image") -> Model:
    """--model, or the shipped model; `task=None` takes a model of either task (`nv-edge info`)."""
    path = path or default_model_path()
    if path is None:
        raise BundleError(f"no model given and no default found (models/{DEFAULT_MODEL_NAME}); pass --model PATH")
    return load_model(path, backend=backend, num_threads=threads, task=task)


def run(args: argparse.Namespace) -> int:
    inputs = list(iter_inputs(args.paths))
    refused = {p: why for p in inputs if (why := not_a_file(p))}  # asked once, before any model is loaded
    readable = [p for p in inputs if p not in refused]
    images = [p for p in readable if not is_audio_file(p)]
    overrides = dict(args.threshold)
    audio = None
    models: list[ImageModel] = []
    try:  # audio files go to the audio model (edge/audio/listen.py); each model takes its own groups and labels
        if len(images) < len(readable):
            audio = listen.AudioFiles(args, overrides, strict=not images)
            overrides = {k: v for k, v in overrides.items() if k not in audio.threshold_keys}
    except ValueError as exc:  # a --threshold or --event the audio model cannot take (the message names it)
        raise UsageError(str(exc)) from None
    if images or audio is None:
        options = ClassifyOptions(thresholds={}, tile=args.tile, overlap=args.overlap, batch_size=args.batch,
                                  max_pixels=args.max_pixels, max_bytes=args.max_bytes, gsd=args.gsd,
                                  allow_out_of_domain=args.allow_out_of_domain)
        opened = [open_model(path, args.backend, args.threads) for path in args.model or [None]]
        models = [ImageModel(m, replace(options, thresholds=t)) for m, t in zip(opened, model_thresholds(opened, overrides))]
    device = args.device or default_device()
    progress = Progress(len(inputs))
    writer = TableWriter(sys.stdout) if args.format == "table" else None
    outbox = Outbox(args.outbox) if args.outbox else None
    try:
        for path in inputs:
            failed = False
            if path in refused:  # never opened: the reader would wait on a FIFO, or read /dev/zero forever
                kind = "audio" if is_audio_file(path) else "image"
                records = [(error_record(source=str(path), error=f"{path}: {refused[path]}", device=device, kind=kind), path)]
            elif audio is not None and is_audio_file(path):
                records = ((record, path) for record in audio.records(path, device))
            elif is_video_file(path):  # (record, decoded frame): one frame at a time, never the whole video
                records = video_records(models[0].model, path, models[0].options, device=device, every_s=every_s(args),
                                        gsd=args.gsd, warn=warn)
            else:
                records = [(classify_file(models, path, device), path)]
            for record, picture in records:
                failed |= "error" in record
                if outbox is not None:  # first: a record on its way somewhere is a record on the card
                    thumbnail = args.thumbnails and record.get("alert") and record["kind"] == "image"
                    outbox.put(record, best_tile_jpeg(picture, record) if thumbnail else None)
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


def iter_inputs(paths: list[str]):
    """Named files as given (whatever their suffix); folders walked recursively for image, video and audio files.
    A folder named like a frame is walked like any other; a symlink to a folder is not followed, but
    one named like a frame is yielded (to be refused by name, not passed over in silence)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                links = [d for d in dirs if os.path.islink(os.path.join(root, d))]  # os.walk does not follow them
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in links)
                for file in sorted(files + links):
                    if not file.startswith(".") and file.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES + AUDIO_SUFFIXES):
                        yield Path(root) / file
        else:
            yield path


def model_thresholds(models: list[Model], overrides: dict[str, float]) -> list[dict[str, float]]:
    """Each model's thresholds with the --threshold overrides it has a group for ('*': every model's); an
    override that names no alert group of any model is a usage error."""
    out = []
    for model in models:
        mine = {k: v for k, v in overrides.items() if k == "*" or takes_threshold(model.manifest, k)}
        out.append(resolve_thresholds(model.manifest, mine))
    for key, value in overrides.items():
        if key != "*" and not any(takes_threshold(m.manifest, key) for m in models):
            try:
                resolve_thresholds(models[0].manifest, {key: value})  # its message says what is wrong
            except ValueError as exc:
                raise UsageError(f"--threshold: {exc}") from None
    return out


def classify_path(model: Model, path: Path, options: ClassifyOptions, device: str) -> dict:
    """One record for one file with one model (classify_file with a single model)."""
    return classify_file([ImageModel(model, options)], path, device)


def classify_file(models: list[ImageModel], path: Path, device: str) -> dict:
    """One record for one file: a detection by the model that fits it best, or an error naming the file.
    Never raises for bad input."""
    source = str(path)
    chosen, ground = pick(models, path)
    model = chosen.model
    try:
        result = classify_frame(model, path, chosen.options, ground)
    except ImageError as exc:
        return error_record(source=source, error=f"{source}: {exc}", device=device, model=model.identity)
    except Exception as exc:  # noqa: BLE001 - one bad frame must never stop a batch
        return error_record(source=source, error=f"{source}: unexpected {type(exc).__name__}: {exc}", device=device, model=model.identity)
    m = model.manifest
    return image_record(result, model=model.identity, labels=m.labels, alert_labels=m.alert_labels, source=source, path=path, device=device)
