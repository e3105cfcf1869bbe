"""`nv-edge export-uncertain RECORDS... --out DIR`: the tiles the unit was least sure about, as PNGs with a
CSV, for a person to label and `nv-convert image` to learn from (docs/own-model.md).

RECORDS are the unit's detection records: JSON lines as `nv-edge classify` prints them, or a unit's outbox
file (the records not yet delivered). The frames are read again from where the records say (`source`), or
from a --frames folder, by the path below it or by file name. A frame that is gone, unreadable or changed
(not the size the record says) is listed in DIR/missing.csv, and the tiles are taken from the others.
Which tiles: edge/image/uncertain.py (the alert-group score nearest its threshold).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from edge.cli.arguments import UsageError, positive, threshold
from edge.cli.classify import default_model_path
from edge.decisions.alerts import resolve_thresholds
from edge.delivery.outbox import stored_detections
from edge.image.decode import ImageError, open_frame
from edge.image.uncertain import NotATileRecord, UncertainTile, crop, nearest, record_tiles, skip_reason
from edge.model.bundle import BundleError, read_bundle

SQLITE_MAGIC = b"SQLite format 3\x00"
COLUMNS = ("path", "label", "group", "source", "record", "time", "model", "model_sha256", "left", "top", "right",
           "bottom", "tile_px", "alert_group", "group_score", "threshold", "margin")


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("records", nargs="+", type=Path, metavar="RECORDS",
                   help="detection records: JSON-lines files (nv-edge classify's output) or a unit's outbox file")
    c.add_argument("--out", type=Path, required=True, help="folder for the PNGs, uncertain.csv and missing.csv")
    c.add_argument("--model", type=Path, help="the bundle that made the records (default: $NV_MODEL or the shipped model)")
    c.add_argument("--count", "-n", type=positive("count"), default=200, help="how many tiles (default 200)")
    c.add_argument("--per-frame", type=positive("per-frame"), help="at most this many tiles of one frame")
    c.add_argument("--frames", type=Path, action="append", default=[], metavar="DIR",
                   help="look for frames here when they are not where the records say (repeatable)")
    c.add_argument("--threshold", type=threshold, action="append", default=[], metavar="[GROUP=]T",
                   help="the unit's threshold when it was not the manifest's (repeatable, as for classify)")


def run(args: argparse.Namespace) -> int:
    path = args.model or default_model_path()
    if path is None:
        raise BundleError("no model given and no default found; pass --model with the bundle that made the records")
    manifest = read_bundle(path).manifest
    try:
        thresholds = resolve_thresholds(manifest, dict(args.threshold))
    except ValueError as exc:
        raise UsageError(f"--threshold: {exc}") from None
    table = args.out / "uncertain.csv"
    if table.exists():
        raise UsageError(f"{table}: already there (labelling in progress?); give another --out folder")
    skipped: dict[str, int] = {}
    tiles: dict[tuple, UncertainTile] = {}  # (source, box) -> the latest record's tile
    for record in _records(args.records, skipped):
        why = skip_reason(record, manifest, manifest.model_sha256)
        if why is None:
            try:
                for tile in record_tiles(record, manifest, thresholds):
                    tiles[(tile.source, tile.box)] = tile
                continue
            except NotATileRecord as exc:
                why = str(exc)
        skipped[why] = skipped.get(why, 0) + 1
    missing: dict[str, str] = {}
    frames: dict[str, object] = {}
    chosen = []
    while True:  # a frame that turns out unreadable gives its place to the next tiles
        available = [t for t in tiles.values() if t.source not in missing]
        chosen = nearest(available, args.count, args.per_frame)
        failed = False
        for tile in chosen:
            if tile.source not in frames and tile.source not in missing:
                frame, why = _open(tile, args.frames)
                if frame is None:
                    missing[tile.source], failed = why, True
                else:
                    frames[tile.source] = frame
        if not failed:
            break
    _write(args.out, chosen, frames, manifest)
    _write_missing(args.out / "missing.csv", missing, tiles)
    for why, n in skipped.items():
        print(f"nv-edge: skipped {n} record(s): {why}", file=sys.stderr)
    for source, why in missing.items():
        print(f"nv-edge: missing frame {source}: {why}", file=sys.stderr)
    print(f"{len(chosen)} tiles of {len({t.source for t in chosen})} frames in {args.out} (uncertain.csv); "
          f"{len(missing)} frames missing" + (" (missing.csv)" if missing else ""))
    return 0


def _records(paths: list[Path], skipped: dict[str, int]):
    """Every record of every file, in order; a line that is not JSON is counted, not fatal."""
    for path in paths:
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        if head == SQLITE_MAGIC:
            yield from stored_detections(path)
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    why = f"{path}: not JSON (line {number}, and any others counted here)"
                    why = next((k for k in skipped if k.startswith(f"{path}: not JSON")), why)
                    skipped[why] = skipped.get(why, 0) + 1


def _open(tile: UncertainTile, folders: list[Path]):
    """(upright frame, None) or (None, why it cannot be used)."""
    source = Path(tile.source)
    places = [source] + [d / p for d in folders for p in ((source,) if not source.is_absolute() else ()) + (Path(source.name),)]
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        return None, "not on disk" + (f" (nor in {', '.join(map(str, folders))})" if folders else "; pass --frames DIR")
    try:
        frame = open_frame(found)
    except ImageError as exc:
        return None, f"{found}: {exc}"
    size = (tile.record["frame"]["width"], tile.record["frame"]["height"])
    if (frame.width, frame.height) != size:
        return None, f"{found} is {frame.width} x {frame.height} px, the record's frame {size[0]} x {size[1]}: another picture"
    return frame, None


def _write(out: Path, chosen: list[UncertainTile], frames: dict, manifest) -> None:
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    labels = sorted({label for t in chosen for label in t.scores})
    with open(out / "uncertain.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS + tuple(f"score_{label}" for label in labels))
        for rank, tile in enumerate(chosen, start=1):
            left, top, right, bottom = tile.box
            name = Path("tiles") / f"{rank:04d}_{Path(tile.source).stem}_x{left}_y{top}.png"
            crop(frames[tile.source].image, tile, manifest.trained_on.tile_px).save(out / name)
            model = tile.record["model"]
            writer.writerow([name.as_posix(), "", tile.source, tile.source, tile.record.get("id", ""),
                             tile.record.get("time", ""), f"{model.get('name')} {model.get('version')}", model.get("sha256"),
                             left, top, right, bottom, tile.tile_px, tile.group, round(tile.group_score, 4),
                             tile.threshold, round(tile.margin, 4)] + [tile.scores.get(label, "") for label in labels])


def _write_missing(path: Path, missing: dict[str, str], tiles: dict) -> None:
    if not missing:
        return
    records: dict[str, set] = {}
    for tile in tiles.values():
        records.setdefault(tile.source, set()).add(tile.record.get("id", ""))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("source", "records", "reason"))
        for source, why in missing.items():
            writer.writerow((source, " ".join(sorted(records.get(source, ()))), why))
