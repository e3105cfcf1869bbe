"""A detection record small enough for the base station to take: it refuses payloads over 1 MiB
(basestation/payloads.py) and keeps them as dead letters, so a unit must never queue one.

Only a tiled frame's score grid can grow that large (a frame of 100 MP cut into 48-px tiles with
overlap has ~60,000 tiles per alert label). Its scores are first rounded to 2 digits; if that is still too
big, the grid is sent empty (`tiles.grid` = {}), keeping the decision, the best tile and the grid's shape.
The record's label, score, scores and alert are never touched."""

from __future__ import annotations

import json
import logging

log = logging.getLogger("nv.records")

MAX_RECORD_BYTES = 1024 * 1024  # what basestation/payloads.py accepts on the detection topic
COARSE_DIGITS = 2


def encode(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def fit_record(record: dict, limit: int = MAX_RECORD_BYTES) -> tuple[dict, bytes]:
    """(record, its JSON bytes), shrunk as above when the bytes pass `limit`. Raises ValueError for a record
    that is too big for another reason (nothing else a unit writes can be)."""
    payload = encode(record)
    if len(payload) <= limit:
        return record, payload
    grid = (record.get("tiles") or {}).get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"record {record.get('id')} of {record.get('source')}: {len(payload):,} bytes, over the "
                         f"{limit:,} a base station accepts, and it has no score grid to shrink")
    coarse = {label: [[round(v, COARSE_DIGITS) for v in row] for row in rows] for label, rows in grid.items()}
    for shrunk_grid, how in ((coarse, f"rounded to {COARSE_DIGITS} digits"), ({}, "left out")):
        shrunk = {**record, "tiles": {**record["tiles"], "grid": shrunk_grid}}
        payload = encode(shrunk)
        if len(payload) <= limit:
            log.warning("%s: the score grid of %d x %d tiles is %s to keep the record under %d bytes",
                        record.get("source"), record["tiles"].get("rows", 0), record["tiles"].get("cols", 0), how, limit)
            return shrunk, payload
    raise ValueError(f"record {record.get('id')} of {record.get('source')}: {len(payload):,} bytes without its grid, "
                     f"over the {limit:,} a base station accepts")
