"""What a path is, asked before anything opens it: a frame or clip is read only from a regular file.

`open()` on a FIFO waits for a writer that may never come, a character device (`/dev/zero`) never ends,
and a symlink can lead to either under an innocent name like `x.png`. `lstat`/`stat` answer without
opening, so every reader's caller asks `not_a_file(path)` first.
"""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def kind(mode: int) -> str:
    """"a FIFO", "a socket" ... for an `st_mode` that is not a regular file's."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def not_a_file(path: str | os.PathLike) -> str | None:
    """Why `path` must not be opened as a frame or clip, e.g. "is a FIFO, not a file"; None for a
    regular file, a symlink to one, or nothing at all (the reader then says it is missing). Never opens it."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    if not stat.S_ISLNK(st.st_mode):
        return f"is {kind(st.st_mode)}, not a file"
    target = os.path.realpath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"is a dangling symlink (to {target}), not a file"
    except OSError as exc:  # a loop, or a folder on the way we may not enter
        return f"is a symlink that cannot be followed (to {target}: {exc.strerror or exc}), not a file"
    if stat.S_ISREG(st.st_mode):
        return None
    return f"is a symlink to {kind(st.st_mode)} ({target}), not a file"
