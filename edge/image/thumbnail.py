"""A small JPEG of the tile that decided a detection: enough for a person to glance at, small
enough for a satellite modem. Off by default (`nv-edge classify --thumbnails`); alerts only."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from PIL import Image

from edge.image.decode import Frame, ImageError, open_frame

log = logging.getLogger("nv.thumbnail")

MAX_EDGE_PX = 128
MAX_BYTES = 16 * 1024  # hard cap: the topic's payload never exceeds it
QUALITIES = (80, 65, 50, 35, 20)


def best_tile_jpeg(path: str | Path | bytes | Frame, record: dict, *, max_edge: int = MAX_EDGE_PX,
                   max_bytes: int = MAX_BYTES) -> bytes | None:
    """The record's best tile (the whole frame when untiled) as a JPEG of at most `max_bytes`, or None
    when the frame cannot be read again or no quality fits the cap. A decoded Frame (a video's) is cut
    as it is, at its scale."""
    if "error" in record or "frame" not in record:
        return None
    if isinstance(path, Frame):
        frame, path = path, record.get("source", "frame")
    else:
        try:
            frame = open_frame(path)
        except ImageError as exc:
            log.warning("%s: no thumbnail: %s", path, exc)
            return None
    tiles = record.get("tiles")
    box = tuple(tiles["best"]["box"]) if tiles else (0, 0, record["frame"]["width"], record["frame"]["height"])
    if frame.scale != 1.0:
        box = tuple(round(v * frame.scale) for v in box)
    image = frame.image.crop(box)  # boxes are in pixels of the upright frame
    image.thumbnail((max_edge, max_edge), Image.Resampling.BILINEAR)
    for quality in QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= max_bytes:
            return out.getvalue()
    log.warning("%s: no thumbnail: even at quality %d it exceeds %d bytes", path, QUALITIES[-1], max_bytes)
    return None
