"""A watched folder: drone footage (photos, and MP4/MOV videos with the `video` extra) or camera-trap
images copied from an SD card, or audio clips. Without PyAV a video file is skipped with a warning naming it
and the install command, and read once PyAV is there. A video's telemetry file (`DJI_0001.SRT` beside
`DJI_0001.MP4`) is read with it, not offered, and deleted or moved with it.

Polled (no inotify: it misses files on some FUSE and network mounts, and a poll is cheap at these
rates). A file is offered once it is *settled*: its size and mtime unchanged for `settle_s` of
watching, so a copy in progress is never read early. Files in progress by name are never looked
at: hidden files (rsync's `.name.XXXXXX`), `*.part`, `*.tmp`, `*.crdownload`, `*.filepart`, `*~`.
Settled files are offered oldest mtime first.

Only regular files are read. An entry named like a frame or clip that is a FIFO, a device, a socket,
a directory (when not `recursive`), or a symlink that is dangling, leads to any of those, or leads
out of the watched folder is skipped: one warning per entry (again only if it changes), and counted
in `skipped()` for the heartbeat. A symlink to a regular file inside the folder is read like the file.

Every offered file carries the record id the ledger claimed for it (`edge/sources/ledger.py`
gives the order of outbox and ledger writes that survives a crash). After `done()`: keep, delete,
or move into `done_dir` (a name already there gets a `-1`, `-2` ... suffix; nothing is
overwritten). A done file still in the folder after a crash is deleted or moved on the next scan.

The folder must exist at start. If it goes away later (SD card pulled), the source logs a warning,
offers nothing, and resumes when it is back.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from edge.filekind import not_a_file
from edge.image.decode import IMAGE_SUFFIXES
from edge.image.srt import sidecar
from edge.image.video import VIDEO_SUFFIXES, available, is_video_file
from edge.sources.item import AUDIO, IMAGE, Item, SourceError
from edge.sources.ledger import FileKey, Ledger

log = logging.getLogger("nv.sources.folder")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload", ".filepart", "~")
AFTER = ("keep", "delete", "move")
DEFAULT_BATCH = 16  # items claimed per poll: a full card must not stall the other sources
DEFAULT_RETENTION_S = 30 * 86400  # ledger rows of files gone from the folder are kept this long
PRUNE_EVERY_S = 3600.0


@dataclass
class _Watch:
    size: int
    mtime_ns: int
    first_seen: float  # unix time: the item's arrival
    stable_since: float  # monotonic time the current (size, mtime) was first seen


class FolderSource:
    def __init__(self, name: str, path: str | Path, ledger: Ledger, *, kind: str = IMAGE,
                 suffixes: tuple[str, ...] | None = None, settle_s: float = 2.0, poll_s: float = 1.0,
                 after: str = "keep", done_dir: str | Path | None = None, recursive: bool = False,
                 batch: int = DEFAULT_BATCH, retention_s: float = DEFAULT_RETENTION_S, monotonic=time.monotonic):
        self.name = name
        self.kind = kind
        self.root = Path(path)
        self.ledger = ledger
        default = AUDIO_SUFFIXES if kind == AUDIO else IMAGE_SUFFIXES + VIDEO_SUFFIXES
        self.suffixes = tuple(s.lower() for s in (suffixes or default))
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.after = after
        self.done_dir = Path(done_dir) if done_dir is not None else None
        self.recursive = recursive
        self.batch = batch
        self.retention_s = retention_s
        self.monotonic = monotonic
        if after not in AFTER:
            raise SourceError(f"source {name!r}: after = {after!r}; use one of {', '.join(AFTER)}")
        if not self.root.is_dir():
            raise SourceError(f"source {name!r}: folder {self.root} does not exist or is not a folder; "
                              f"create it or fix `path` in the config")
        if after == "move":
            if self.done_dir is None:
                raise SourceError(f"source {name!r}: after = \"move\" needs done_dir = \"/a/folder\"")
            try:
                self.done_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceError(f"source {name!r}: cannot create done_dir {self.done_dir}: {exc.strerror}; "
                                  f"fix `done_dir` or its permissions") from None
        self._watch: dict[str, _Watch] = {}
        self._offered: dict[FileKey, Item] = {}
        self._done: set[FileKey] = set()  # ledger answers for files present at the last scan,
        self._not_done: set[FileKey] = set()  # so a scan asks SQLite only about new files
        self._ready: deque[FileKey] = deque()
        self._after_failed: set[FileKey] = set()  # logged once, retried every scan
        self._last_scan: float | None = None
        self._missing = False
        self._last_prune = monotonic()
        self._skipped: dict[str, str] = {}  # relative path -> why, as of the last scan

    # -- the source surface ----------------------------------------------------------------------

    def poll(self, now: float | None = None) -> list[Item]:
        """Claim and return up to `batch` settled files (fewer while earlier ones are not done),
        oldest mtime first. Scans at most every `poll_s`; a backlog is handed out between scans."""
        now = time.time() if now is None else now
        tick = self.monotonic()
        if self._last_scan is None or tick - self._last_scan >= self.poll_s:
            self._last_scan = tick
            self._ready = deque(self._settled(now, tick))
        items = []
        while self._ready and len(self._offered) < self.batch:
            key = self._ready.popleft()
            path = self.root / key.path
            if key in self._offered or key in self._done or not _unchanged(path, key):
                continue  # the next scan sees what it has become
            watch = self._watch.get(key.path)
            item = Item(source=self.name, record_id=self.ledger.claim(key), arrived=watch.first_seen if watch else now,
                        origin=str(path), kind=self.kind, path=path, key=key)
            self._offered[key] = item
            items.append(item)
        if tick - self._last_prune >= PRUNE_EVERY_S and not self._missing:
            self._last_prune = tick
            present = {FileKey(self.name, rel, w.size, w.mtime_ns) for rel, w in self._watch.items()}
            self.ledger.forget_older_than(now - self.retention_s, source=self.name, keep=present)
        return items

    def _settled(self, now: float, tick: float) -> list[FileKey]:
        """Scan; update what is watched; return the settled files not yet done, oldest mtime first."""
        files = self._scan()
        if files is None:
            return []
        present: set[FileKey] = set()
        ready: list[tuple[int, str, FileKey]] = []
        for rel, (size, mtime_ns) in files.items():
            key = FileKey(self.name, rel, size, mtime_ns)
            present.add(key)
            watch = self._watch.get(rel)
            if watch is None or (watch.size, watch.mtime_ns) != (size, mtime_ns):
                self._watch[rel] = watch = _Watch(size, mtime_ns, watch.first_seen if watch else now, tick)
            if key in self._offered:
                continue
            if key in self._done or (key not in self._not_done and self.ledger.is_done(key)):
                self._done.add(key)
                if self.after != "keep":
                    self._finish(key)  # done before a crash, but not yet deleted or moved
                continue
            self._not_done.add(key)
            if tick - watch.stable_since >= self.settle_s:
                ready.append((mtime_ns, rel, key))
        for rel in set(self._watch) - set(files):
            del self._watch[rel]
        self._done &= present
        self._not_done &= present
        return [key for _, _, key in sorted(ready)]

    def done(self, item: Item, outcome: str) -> None:
        """The item's record is flushed to the outbox: mark the file done, then keep, delete or move it.
        A decode error is an outcome like any other: its error record went to the outbox."""
        self.ledger.mark_done(item.key, outcome)
        self._offered.pop(item.key, None)
        self._done.add(item.key)
        self._not_done.discard(item.key)
        if self.after != "keep":
            self._finish(item.key)

    def release(self, item: Item) -> None:
        """The item was not used (its file vanished mid-read): offer it again, with the same id."""
        self._offered.pop(item.key, None)

    def close(self) -> None:
        pass

    def skipped(self) -> dict[str, str]:
        """Entries named like a frame or clip that the last scan left alone, and why."""
        return dict(self._skipped)

    # -- scanning --------------------------------------------------------------------------------

    def _scan(self) -> dict[str, tuple[int, int]] | None:
        """Relative path -> (size, mtime_ns) of candidate files; None when the folder is gone."""
        found: dict[str, tuple[int, int]] = {}
        skipped: dict[str, str] = {}
        try:
            scan_folder(self.root, self.suffixes, recursive=self.recursive, done_dir=self.done_dir,
                        found=found, skipped=skipped, log_name=self.name)
        except OSError as exc:
            if not self._missing:
                log.warning("source %r: folder %s is not readable (%s); waiting for it to come back "
                            "(SD card pulled or unmounted?)", self.name, self.root, exc.strerror or exc)
            self._missing = True
            self._watch.clear()  # what comes back may be another card: watch it settle afresh
            self._skipped = {}
            return None
        if self._missing:
            log.warning("source %r: folder %s is back", self.name, self.root)
            self._missing = False
        if self.kind == IMAGE and any(is_video_file(rel) for rel in found) and (missing := available()) is not None:
            for rel in [rel for rel in found if is_video_file(rel)]:  # left where they are, read once it is installed
                del found[rel]
                skipped[rel] = f"is a video file, not read: {missing}"
        for rel, why in skipped.items():
            if self._skipped.get(rel) != why:  # once per entry, not once per scan
                log.warning("skipped: %s", why, extra={"fields": {"source": self.name, "file": str(self.root / rel)}})
        self._skipped = skipped  # one assignment: the heartbeat's thread reads it
        return found

    # -- after done ------------------------------------------------------------------------------

    def _finish(self, key: FileKey) -> None:
        path = self.root / key.path
        if not _unchanged(path, key):
            return  # gone already, or replaced by a new file, which is not done
        telemetry = sidecar(path) if is_video_file(path) else None  # a video's DJI SRT goes with it
        try:
            if self.after == "delete":
                path.unlink()
                if telemetry is not None:
                    telemetry.unlink(missing_ok=True)
            else:
                target = move_without_overwrite(path, self.done_dir / key.path)
                log.debug("source %r: moved %s to %s", self.name, path, target)
                if telemetry is not None:
                    move_without_overwrite(telemetry, target.with_suffix(telemetry.suffix))
        except FileNotFoundError:
            pass
        except OSError as exc:
            if key not in self._after_failed:
                log.warning("source %r: cannot %s %s after classifying it: %s; retrying on every scan",
                            self.name, self.after, path, exc.strerror or exc)
                self._after_failed.add(key)
            return
        self._after_failed.discard(key)


def scan_folder(root: Path, suffixes: tuple[str, ...], *, recursive: bool, done_dir: Path | None,
                found: dict[str, tuple[int, int]], skipped: dict[str, str], log_name: str = "",
                _folder: Path | None = None, _prefix: str = "") -> None:
    """The name and file-kind rules of a watched folder, in one place (the source and `nv-edge doctor`):
    fills `found` (relative path -> (size, mtime_ns) of each file to read) and `skipped` (relative path ->
    why an entry named like a frame or clip is left alone). Raises OSError when `root` cannot be listed."""
    folder = root if _folder is None else _folder
    real_root = Path(os.path.realpath(root))
    with os.scandir(folder) as entries:  # an OSError here on the root means the folder is gone
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if Path(entry.path) == done_dir:
                        continue
                    if recursive:
                        try:
                            scan_folder(root, suffixes, recursive=True, done_dir=done_dir, found=found, skipped=skipped,
                                        log_name=log_name, _folder=Path(entry.path), _prefix=f"{_prefix}{name}/")
                        except OSError as exc:  # one unreadable sub-folder must not hide the rest
                            log.debug("source %r: skipping %s: %s", log_name, entry.path, exc)
                        continue
                lower = name.lower()
                if lower.endswith(IN_PROGRESS_SUFFIXES) or not lower.endswith(suffixes):
                    continue
                why = None if entry.is_file(follow_symlinks=False) else _refusal(entry, real_root)
                if why is not None:
                    skipped[_prefix + name] = why
                    continue
                st = entry.stat()
            except OSError:  # gone between listing and stat: the next scan sees what is there
                continue
            if entry.is_file():
                found[_prefix + name] = (st.st_size, st.st_mtime_ns)


def _refusal(entry: os.DirEntry, real_root: Path) -> str | None:
    """Why an entry that is not a plain regular file is not read; None for a symlink to a regular
    file inside the watched folder."""
    why = not_a_file(entry.path)
    if why is None and entry.is_symlink():
        target = Path(os.path.realpath(entry.path))
        if not target.is_relative_to(real_root):
            why = f"is a symlink out of the watched folder (to {target})"
    return why


def skipped_files(sources) -> int:
    """How many entries the watched folders among `sources` leave alone (FolderSource.skipped)."""
    return sum(len(source.skipped()) for source in sources if isinstance(source, FolderSource))


def _unchanged(path: Path, key: FileKey) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (key.size, key.mtime_ns)


def move_without_overwrite(path: Path, target: Path) -> Path:
    """Move `path` to `target`, or to `target-1`, `target-2` ... if taken. Works across file
    systems (SD card -> internal disk). Returns where it went."""
    target.parent.mkdir(parents=True, exist_ok=True)
    final = _reserve(target)
    try:
        os.replace(path, final)  # over our own empty placeholder: atomic, and no link() needed (FAT)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            final.unlink(missing_ok=True)
            raise
        partial = final.with_name(f".{final.name}.part")
        shutil.copyfile(path, partial)
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())  # the copy is on disk before the original goes
        shutil.copystat(path, partial)
        os.replace(partial, final)
        path.unlink()
    return final


def _reserve(target: Path) -> Path:
    """Create an empty placeholder at the first free name, so no other move can take it."""
    for n in range(100_000):
        candidate = target if n == 0 else target.with_name(f"{target.stem}-{n}{target.suffix}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return candidate
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"no free name for {target} after 100000 tries")
