"""A scan's sidecar state: the tile windows already classified, so a scan stopped by a crash, a power
cut or Ctrl-C goes on where it stopped, and gives the same GeoJSON as a scan never stopped.

One small SQLite file beside the output (`OUT.geojson.scan.sqlite`). Work is done in fixed chunks
of tiles (the same chunks every run, so every tile is classified in the same batch as it would have
been); a chunk's scores and overview thumbnails are committed together, or not at all. The file
remembers what scan it belongs to (the ortho's size, time and georeferencing, the model, the tiling):
another scan refuses it rather than mixing two. The area records made from a finished scan are kept
too, so a rerun queues the same records (same ids: the outbox and the base station store them once).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from edge.survey.raster import SurveyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, scores BLOB NOT NULL, thumbs BLOB NOT NULL,
                                   lengths TEXT NOT NULL);  -- of each tile's thumbnail in thumbs; 0: none
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, records TEXT NOT NULL);
"""


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".scan.sqlite")


class ScanState:
    def __init__(self, path: Path, identity: dict, *, fresh: bool = False):
        self.path = path
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last chunks: they are redone
            self._db.executescript(SCHEMA)
            key = json.dumps(identity, sort_keys=True)
            found = self._db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SurveyError(f"{path}: cannot use the scan's state file: {exc}; remove it (or pass --fresh) to "
                              "start the scan again") from None
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (key,))
        elif found[0] != key:
            theirs = json.loads(found[0])
            changed = sorted(k for k in set(theirs) | set(identity) if theirs.get(k) != identity.get(k))
            raise SurveyError(f"{path}: holds another scan (its {', '.join(changed)} differ from this one's); "
                              "pass --fresh to start this scan over, or another --out")

    def done_chunks(self) -> set[int]:
        return {row[0] for row in self._db.execute("SELECT id FROM chunks")}

    def save_chunk(self, chunk: int, scores: np.ndarray, thumbs: list[bytes | None]) -> None:
        lengths = json.dumps([len(t) if t is not None else 0 for t in thumbs])
        self._db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                         (chunk, np.ascontiguousarray(scores, dtype="<f4").tobytes(),
                          b"".join(t for t in thumbs if t is not None), lengths))

    def load(self, chunk_count: int, labels: int) -> tuple[dict[int, np.ndarray], dict[int, list[bytes | None]]]:
        scores, thumbs = {}, {}
        for chunk, raw, blob, lengths in self._db.execute("SELECT id, scores, thumbs, lengths FROM chunks"):
            if chunk < chunk_count:
                scores[chunk] = np.frombuffer(raw, dtype="<f4").reshape(-1, labels)
                thumbs[chunk], at = [], 0
                for n in json.loads(lengths):
                    thumbs[chunk].append(blob[at : at + n] if n else None)
                    at += n
        return scores, thumbs

    def records(self, key: str) -> list[dict] | None:
        row = self._db.execute("SELECT records FROM records WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def save_records(self, key: str, records: list[dict]) -> None:
        self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (key, json.dumps(records)))

    def close(self) -> None:
        self._db.close()
