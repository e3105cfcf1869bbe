"""The watched folder: which files, in which order, only once settled, once each, then keep/delete/move.

Settling is measured on an injected monotonic clock that the test advances, so no assert depends
on how fast this machine is; the files, the ledger and the writer thread are real.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from imagefiles import GREEN, RED, encode, solid

from edge.image.decode import open_frame
from edge.sources.folder import FolderSource, move_without_overwrite
from edge.sources.item import AUDIO, SourceError
from edge.sources.ledger import Ledger


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def ledger(tmp_path):
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        yield ledger


@pytest.fixture
def incoming(tmp_path) -> Path:
    path = tmp_path / "incoming"
    path.mkdir()
    return path


def write(path: Path, data: bytes = b"", mtime_s: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or encode(solid(RED), "JPEG"))
    if mtime_s is not None:
        os.utime(path, (mtime_s, mtime_s))
    return path


def source(incoming, ledger, clock=None, **kwargs) -> FolderSource:
    kwargs.setdefault("settle_s", 2.0)
    kwargs.setdefault("poll_s", 1.0)
    return FolderSource("card", incoming, ledger, monotonic=clock or Clock(), **kwargs)


def settle(src: FolderSource, clock: Clock):
    """First sight, then a poll once the settle time has passed: what is settled is offered."""
    assert src.poll() == []
    clock.advance(src.settle_s)
    return src.poll()


def names(items) -> list[str]:
    return [item.path.name for item in items]


def test_offers_settled_image_files_oldest_first_and_ignores_the_rest(incoming, ledger):
    write(incoming / "b.jpg", mtime_s=2_000)
    write(incoming / "a.png", encode(solid(GREEN)), mtime_s=3_000)
    write(incoming / "C.JPG", mtime_s=1_000)
    for ignored in (".hidden.jpg", "copying.jpg.part", "x.jpg.tmp", "y.jpg.crdownload", "z.jpg~", "notes.txt",
                    "sub/deep.jpg"):
        write(incoming / ignored, mtime_s=500)
    clock = Clock()
    items = settle(source(incoming, ledger, clock), clock)
    assert names(items) == ["C.JPG", "b.jpg", "a.png"]
    assert [i.origin for i in items] == [str(incoming / n) for n in names(items)]
    assert len({i.record_id for i in items}) == 3
    assert all(i.data is None and i.source == "card" and i.kind == "image" for i in items)
    assert open_frame(items[0].path).width > 0


def test_recursive_also_reads_sub_folders_but_not_hidden_ones(incoming, ledger):
    write(incoming / "top.jpg", mtime_s=1_000)
    write(incoming / "day1" / "cam2" / "deep.jpg", mtime_s=2_000)
    write(incoming / ".Trash" / "old.jpg", mtime_s=500)
    clock = Clock()
    items = settle(source(incoming, ledger, clock, recursive=True), clock)
    assert [i.key.path for i in items] == ["top.jpg", "day1/cam2/deep.jpg"]


def test_a_file_written_in_pieces_is_offered_only_once_complete(incoming, ledger):
    """A writer thread appends a piece each time it is told; between pieces the clock moves on by
    less than settle_s. The file is growing for far longer than settle_s and is never offered half
    written; settle_s after the last piece it is offered, whole."""
    payload = encode(solid(RED, (64, 64)), "JPEG", quality=95)
    pieces = [payload[i:i + 200] for i in range(0, len(payload), 200)]
    assert len(pieces) >= 4
    target = incoming / "drone.jpg"
    go, written = queue.Queue(), queue.Queue()

    def writer():
        with open(target, "wb") as f:
            for piece in pieces:
                go.get()
                f.write(piece)
                f.flush()
                os.fsync(f.fileno())
                os.utime(target, ns=(0, len(pieces) * 10**9 + f.tell()))  # coarse clocks: change the mtime anyway
                written.put(f.tell())

    thread = threading.Thread(target=writer)
    thread.start()
    clock = Clock()
    src = source(incoming, ledger, clock, settle_s=2.0, poll_s=0.5)
    try:
        for _ in pieces:
            go.put(True)
            written.get(timeout=30)
            clock.advance(1.5)
            assert src.poll() == [], "offered while still being written"
    finally:
        thread.join(timeout=30)
    clock.advance(1.5)
    assert src.poll() == []  # unchanged for 1.5 s so far, less than settle_s
    clock.advance(0.5)
    items = src.poll()
    assert names(items) == ["drone.jpg"]
    assert items[0].path.read_bytes() == payload


def test_done_is_never_offered_again_even_after_a_restart_but_a_replaced_file_is(incoming, ledger):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock)
    (item,) = settle(src, clock)
    src.done(item, "ok")
    clock.advance(10)
    assert src.poll() == []
    clock2 = Clock()
    assert settle(source(incoming, ledger, clock2), clock2) == []  # a restart: the ledger remembers
    write(incoming / "a.jpg", encode(solid(GREEN), "JPEG"), mtime_s=2_000)  # a new picture, same name
    clock3 = Clock()
    (again,) = settle(source(incoming, ledger, clock3), clock3)
    assert again.record_id != item.record_id


def test_claimed_but_not_done_comes_back_after_a_restart_with_the_same_id(incoming, ledger):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock)
    (item,) = settle(src, clock)
    clock.advance(10)
    assert src.poll() == []  # offered and not yet done: not offered twice
    clock2 = Clock()
    (again,) = settle(source(incoming, ledger, clock2), clock2)  # the service crashed and restarted
    assert again.record_id == item.record_id


def test_release_offers_the_item_again_with_the_same_id(incoming, ledger):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock)
    (item,) = settle(src, clock)
    src.release(item)
    clock.advance(1)
    (again,) = src.poll()
    assert again.record_id == item.record_id


def test_a_file_that_fails_to_decode_is_done_like_any_other(incoming, ledger):
    write(incoming / "broken.jpg", b"\xff\xd8\xff not really a jpeg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock)
    (item,) = settle(src, clock)
    src.done(item, "error")
    assert ledger.outcome(item.key) == "error"
    clock.advance(10)
    assert src.poll() == []


def test_batches_a_backlog_without_waiting_for_the_next_scan(incoming, ledger):
    for n in range(5):
        write(incoming / f"{n}.jpg", mtime_s=1_000 + n)
    clock = Clock()
    src = source(incoming, ledger, clock, batch=2, poll_s=1.0)
    first = settle(src, clock)
    assert names(first) == ["0.jpg", "1.jpg"]
    assert src.poll() == []  # two still out
    for item in first:
        src.done(item, "ok")
    assert names(src.poll()) == ["2.jpg", "3.jpg"]  # the clock has not moved: no new scan, no poll_s wait


def test_after_delete_removes_the_file(incoming, ledger):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock, after="delete")
    (item,) = settle(src, clock)
    assert item.path.exists()
    src.done(item, "ok")
    assert not item.path.exists()


def test_after_move_keeps_sub_folders_and_never_overwrites(incoming, ledger, tmp_path):
    done_dir = tmp_path / "done" / "new"  # created on start
    write(incoming / "a.jpg", b"new a", mtime_s=1_000)
    write(incoming / "day1" / "b.jpg", b"new b", mtime_s=2_000)
    write(done_dir / "a.jpg", b"an older a, also done")
    clock = Clock()
    src = source(incoming, ledger, clock, after="move", done_dir=done_dir, recursive=True)
    items = settle(src, clock)
    for item in items:
        src.done(item, "ok")
    assert sorted(str(p.relative_to(done_dir)) for p in done_dir.rglob("*") if p.is_file()) == [
        "a-1.jpg", "a.jpg", "day1/b.jpg"]
    assert (done_dir / "a.jpg").read_bytes() == b"an older a, also done"
    assert (done_dir / "a-1.jpg").read_bytes() == b"new a"
    assert not any(p.is_file() for p in incoming.rglob("*"))


def test_done_dir_inside_the_watched_folder_is_not_read_again(incoming, ledger):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock, after="move", done_dir=incoming / "done", recursive=True)
    (item,) = settle(src, clock)
    src.done(item, "ok")
    clock2 = Clock()
    assert settle(source(incoming, ledger, clock2, after="move", done_dir=incoming / "done", recursive=True), clock2) == []
    assert (incoming / "done" / "a.jpg").is_file()


def test_a_file_done_before_a_crash_but_not_yet_moved_is_moved_on_the_next_scan(incoming, ledger, tmp_path):
    write(incoming / "a.jpg", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock)
    (item,) = settle(src, clock)
    ledger.mark_done(item.key, "ok")  # the crash came between mark_done and the move
    clock2 = Clock()
    mover = source(incoming, ledger, clock2, after="move", done_dir=tmp_path / "done")
    assert settle(mover, clock2) == []
    assert not (incoming / "a.jpg").exists() and (tmp_path / "done" / "a.jpg").is_file()


def test_move_across_file_systems_copies_then_removes(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm) to move across")
    target_dir = Path(tempfile.mkdtemp(dir=shm))
    try:
        src = write(tmp_path / "a.jpg", b"pixels", mtime_s=1_000)
        final = move_without_overwrite(src, target_dir / "a.jpg")
        assert final.read_bytes() == b"pixels" and not src.exists()
        assert final.stat().st_mtime == 1_000
        assert [p.name for p in target_dir.iterdir()] == ["a.jpg"]  # no partial copy left behind
    finally:
        shutil.rmtree(target_dir)


def test_a_missing_folder_is_an_error_at_start(tmp_path, ledger):
    with pytest.raises(SourceError, match=r"folder .*nowhere does not exist.*create it or fix `path`"):
        FolderSource("card", tmp_path / "nowhere", ledger)
    with pytest.raises(SourceError, match=r"after = \"move\" needs done_dir"):
        FolderSource("card", tmp_path, ledger, after="move")
    with pytest.raises(SourceError, match=r"after = 'copy'; use one of keep, delete, move"):
        FolderSource("card", tmp_path, ledger, after="copy")


def test_a_folder_that_goes_away_is_a_warning_and_is_picked_up_again(tmp_path, ledger, caplog):
    card = tmp_path / "card"
    card.mkdir()
    clock = Clock()
    src = source(card, ledger, clock)
    assert settle(src, clock) == []
    card.rmdir()  # the SD card is pulled
    with caplog.at_level(logging.WARNING, logger="nv.sources.folder"):
        for _ in range(3):
            clock.advance(5)
            assert src.poll() == []
    warnings = [r.getMessage() for r in caplog.records if "not readable" in r.getMessage()]
    assert len(warnings) == 1 and str(card) in warnings[0]  # one line, not one per poll
    write(card / "a.jpg", mtime_s=1_000)  # and put back, with a picture on it
    clock.advance(5)
    assert src.poll() == []
    clock.advance(2)
    assert names(src.poll()) == ["a.jpg"]


def test_the_same_class_watches_audio_clips(incoming, ledger):
    for name in ("a.wav", "b.FLAC", "c.ogg", "d.jpg", "e.mp3"):
        write(incoming / name, b"RIFF....", mtime_s=1_000)
    clock = Clock()
    items = settle(source(incoming, ledger, clock, kind=AUDIO), clock)
    assert names(items) == ["a.wav", "b.FLAC", "c.ogg"] and {i.kind for i in items} == {"audio"}


def test_old_ledger_rows_are_forgotten_but_files_still_there_stay_done(incoming, ledger, tmp_path):
    write(incoming / "stays.jpg", mtime_s=1_000)
    write(incoming / "goes.jpg", mtime_s=2_000)
    clock = Clock()
    src = source(incoming, ledger, clock, retention_s=0.0)
    for item in settle(src, clock):
        src.done(item, "ok")
    (incoming / "goes.jpg").unlink()
    clock.advance(4000)  # past an hour: the source prunes its ledger rows on this poll
    assert src.poll() == []
    assert ledger.count("card") == 1
    clock2 = Clock()
    assert settle(source(incoming, ledger, clock2), clock2) == []


def test_video_files_are_offered_beside_photos_but_not_their_telemetry(incoming, ledger):
    pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: pip install 'naturevision[video]'")
    clock = Clock()
    write(incoming / "DJI_0001.MP4", b"\x00\x00\x00\x18ftypmp42", mtime_s=1_000)  # the folder does not decode it
    write(incoming / "DJI_0002.mov", b"\x00\x00\x00\x14ftypqt  ", mtime_s=2_000)
    write(incoming / "DJI_0001.SRT", b"1\n00:00:00,000 --> 00:00:01,000\nGPS(1,2,3)\n", mtime_s=500)
    write(incoming / "a.jpg", mtime_s=3_000)
    assert names(settle(source(incoming, ledger, clock), clock)) == ["DJI_0001.MP4", "DJI_0002.mov", "a.jpg"]


def test_without_pyav_video_files_are_skipped_with_one_warning_each_saying_what_to_install(incoming, ledger, monkeypatch,
                                                                                            caplog):
    monkeypatch.setitem(sys.modules, "av", None)  # as on a unit without the extra: `import av` raises ImportError
    clock = Clock()
    write(incoming / "DJI_0001.MP4", b"\x00\x00\x00\x18ftypmp42")
    write(incoming / "a.jpg")
    src = source(incoming, ledger, clock)
    with caplog.at_level(logging.WARNING, logger="nv.sources.folder"):
        assert names(settle(src, clock)) == ["a.jpg"]
        clock.advance(5)
        assert src.poll() == []
    (warning,) = [r for r in caplog.records if "DJI_0001.MP4" in str(getattr(r, "fields", {}))]
    assert "is a video file, not read" in warning.getMessage()
    assert "pip install 'naturevision[video]'" in warning.getMessage()
    assert src.skipped() == {"DJI_0001.MP4": "is a video file, not read: video files need PyAV, which is not "
                                             "installed: pip install 'naturevision[video]'"}
    monkeypatch.delitem(sys.modules, "av")  # installed (the service restarted): read from the next scan on
    if importlib.util.find_spec("av") is not None:
        clock.advance(5)
        assert names(settle(src, clock)) == ["DJI_0001.MP4"] and src.skipped() == {}


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_videos_telemetry_file_is_moved_or_deleted_with_it(incoming, ledger, tmp_path, after):
    pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: pip install 'naturevision[video]'")
    done_dir = tmp_path / "done"
    write(done_dir / "DJI_0001.MP4", b"an older flight, also done")
    write(incoming / "DJI_0001.MP4", b"\x00\x00\x00\x18ftypmp42", mtime_s=1_000)
    write(incoming / "DJI_0001.SRT", b"1\n00:00:00,000 --> 00:00:01,000\nGPS(1,2,3)\n", mtime_s=1_000)
    write(incoming / "DJI_0002.SRT", b"telemetry of a video not copied yet", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock, after=after, done_dir=done_dir if after == "move" else None)
    (item,) = settle(src, clock)
    src.done(item, "ok")
    assert sorted(p.name for p in incoming.iterdir()) == ["DJI_0002.SRT"]
    if after == "move":  # beside the video under the video's new name
        assert sorted(p.name for p in done_dir.iterdir()) == ["DJI_0001-1.MP4", "DJI_0001-1.SRT", "DJI_0001.MP4"]
        assert (done_dir / "DJI_0001-1.SRT").read_bytes().startswith(b"1\n00:00:00,000")
