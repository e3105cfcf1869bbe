"""What every source hands to the service: an `Item`, and the `Source` surface that yields it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.sources.ledger import FileKey

IMAGE, AUDIO = "image", "audio"


class SourceError(Exception):
    """A source that cannot start; the message names the config key or file and says what to do."""


@dataclass(frozen=True)
class Item:
    """One frame or clip to classify: a file (`path`) or encoded bytes (`data`), never both.

    `record_id` is the id its detection record must carry: a file keeps the same id across a
    crash and a restart (the ledger stores it), so a record written twice is stored once.
    """

    source: str  # the source's name
    record_id: str  # UUIDv7 for the detection record
    arrived: float  # unix time the source first saw it (a file) or received it (bytes)
    origin: str  # what the record's `source` field should say: the file path, or the camera URL
    kind: str = IMAGE  # IMAGE or AUDIO
    path: Path | None = None
    data: bytes | None = None
    key: FileKey | None = None  # the ledger key of a file; None for bytes

    def __post_init__(self):
        if (self.path is None) == (self.data is None):
            raise ValueError(f"item {self.record_id} from {self.source}: give exactly one of path and data")

    def __repr__(self) -> str:  # never print a few MB of JPEG in a log line
        what = f"path={str(self.path)!r}" if self.path is not None else f"data=<{len(self.data)} bytes>"
        return f"Item(source={self.source!r}, record_id={self.record_id!r}, {what})"


class Source(Protocol):
    name: str
    kind: str

    def poll(self, now: float | None = None) -> list[Item]: ...

    def done(self, item: Item, outcome: str) -> None: ...

    def release(self, item: Item) -> None: ...

    def close(self) -> None: ...
