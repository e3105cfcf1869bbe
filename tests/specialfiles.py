"""Entries named like frames and clips that are not regular files, made for real: FIFOs, a bound UNIX
socket, a folder, and symlinks to /dev/zero, to nothing, to a folder and out of the folder. Opening
the FIFOs blocks for ever and reading /dev/zero never ends, so a reader that opens any of them hangs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

# What a reader must say of each, whoever asks (edge/filekind.py)
NOT_FILES = {
    "fifo.png": "is a FIFO, not a file",
    "clip.wav": "is a FIFO, not a file",
    "sock.png": "is a socket, not a file",
    "zero.png": "is a symlink to a character device (/dev/zero), not a file",
    "dangling.png": "is a dangling symlink (to ",
    "linkdir.png": "is a symlink to a directory (",
}


def make_special_entries(folder: Path, outside: Path) -> None:
    """NOT_FILES in `folder`, plus `dir.png/` (a folder) and `out.png`, a symlink to `outside` (a
    regular frame out of `folder`)."""
    os.mkfifo(folder / "fifo.png")
    os.mkfifo(folder / "clip.wav")
    bind_socket(folder / "sock.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "dir.png").mkdir()
    (folder / "linkdir.png").symlink_to("dir.png")
    (folder / "out.png").symlink_to(outside)


def bind_socket(path: Path) -> None:
    """A socket file at `path`, bound by its name from inside its folder (an AF_UNIX address holds
    ~107 bytes, less than a deep temporary path). The file stays a socket once closed."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(path.name)
    finally:
        os.chdir(here)
