"""A progress bar on stderr for long batches, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, label: str = "frames", stream: TextIO | None = None, min_total: int = 2):
        self.stream = stream or sys.stderr
        self.total = total
        self.label = label
        self.done = 0
        self.errors = 0
        self.enabled = total >= min_total and self.stream.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def step(self, error: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        filled = int(width * self.done / max(1, self.total))
        rate = self.done / max(1e-9, now - self._start)
        errors = f", {self.errors} errors" if self.errors else ""
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.label} {rate:.1f}/s{errors} ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
