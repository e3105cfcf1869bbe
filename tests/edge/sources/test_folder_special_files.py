"""The watched folder and what is not a regular file: FIFOs, a socket, a folder and symlinks named like
frames are skipped with one log line each and counted; a symlink to a frame inside the folder is read.
The entries are real (tests/specialfiles.py): a source that opened one would hang the test."""

from __future__ import annotations

import logging
import os

from specialfiles import NOT_FILES, make_special_entries
from test_folder_source import Clock, incoming, ledger, names, settle, source, write  # noqa: F401  (fixtures)

from edge.service.journal import LogfmtFormatter
from edge.sources.folder import skipped_files
from edge.sources.item import AUDIO

# What an image folder skips: NOT_FILES named like frames, and two that only a watched folder refuses
SKIPPED = {name: why for name, why in NOT_FILES.items() if name.endswith(".png")} | {
    "dir.png": "is a directory, not a file",
    "out.png": "is a symlink out of the watched folder (to ",
}


def special_folder(incoming, tmp_path) -> None:
    write(incoming / "a.png", mtime_s=1_000)
    (incoming / "inside.png").symlink_to("a.png")
    make_special_entries(incoming, write(tmp_path / "elsewhere" / "real.png"))


def skip_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("skipped: ")]


def test_entries_that_are_not_regular_files_are_skipped_with_one_line_each_and_counted(incoming, ledger, tmp_path,
                                                                                       caplog):
    special_folder(incoming, tmp_path)
    clock = Clock()
    src = source(incoming, ledger, clock)
    with caplog.at_level(logging.WARNING, logger="nv.sources.folder"):
        offered = settle(src, clock)
        for _ in range(5):  # five more scans: no more lines
            clock.advance(src.poll_s)
            assert src.poll() == []
    assert sorted(names(offered)) == ["a.png", "inside.png"]  # the symlink inside the folder is read, as before
    skipped = src.skipped()
    assert sorted(skipped) == sorted(SKIPPED)
    for name, why in SKIPPED.items():
        assert skipped[name].startswith(why), (name, skipped[name])
    lines = skip_lines(caplog)
    assert sorted(r.fields["file"] for r in lines) == sorted(str(incoming / name) for name in SKIPPED)
    assert all(r.levelno == logging.WARNING and r.fields["source"] == "card" for r in lines)
    fifo = next(LogfmtFormatter().format(r) for r in lines if r.fields["file"].endswith("fifo.png"))
    assert fifo == (f'<4>component=sources.folder source=card file={incoming / "fifo.png"} '
                    f'msg="skipped: is a FIFO, not a file"')
    assert skipped_files([src]) == len(SKIPPED)


def test_the_count_follows_the_folder_and_a_new_entry_gets_its_own_line(incoming, ledger, tmp_path, caplog):
    special_folder(incoming, tmp_path)
    clock = Clock()
    src = source(incoming, ledger, clock)
    settle(src, clock)
    (incoming / "fifo.png").unlink()  # someone had a look and removed it
    (incoming / "zero.png").unlink()
    os.mkfifo(incoming / "zero.png")  # and the same name comes back as something else
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nv.sources.folder"):
        clock.advance(src.poll_s)
        src.poll()
    assert skipped_files([src]) == len(SKIPPED) - 1
    assert [(r.fields["file"], r.getMessage()) for r in skip_lines(caplog)] == [
        (str(incoming / "zero.png"), "skipped: is a FIFO, not a file")]


def test_an_audio_folder_skips_a_fifo_named_like_a_clip(incoming, ledger, tmp_path):
    make_special_entries(incoming, write(tmp_path / "real.png"))
    write(incoming / "b.wav", b"RIFF....", mtime_s=1_000)
    clock = Clock()
    src = source(incoming, ledger, clock, kind=AUDIO)
    assert names(settle(src, clock)) == ["b.wav"]
    assert src.skipped() == {"clip.wav": "is a FIFO, not a file"}


def test_a_recursive_folder_walks_a_folder_named_like_a_frame_and_a_symlink_inside_is_deleted_as_before(
        incoming, ledger, tmp_path):
    special_folder(incoming, tmp_path)
    write(incoming / "dir.png" / "inner.png", mtime_s=2_000)
    clock = Clock()
    src = source(incoming, ledger, clock, recursive=True, after="delete")
    offered = settle(src, clock)
    assert sorted(i.key.path for i in offered) == ["a.png", "dir.png/inner.png", "inside.png"]
    assert sorted(src.skipped()) == sorted(set(SKIPPED) - {"dir.png"})
    link = next(i for i in offered if i.key.path == "inside.png")
    src.done(link, "ok")
    assert not os.path.lexists(incoming / "inside.png")
    assert (incoming / "a.png").is_file()  # the link goes, not the file it leads to
