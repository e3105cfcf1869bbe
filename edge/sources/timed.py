"""Sources that capture on a timer (a camera snapshot URL, the Pi camera): one thread each.

A capture can block for seconds (a camera that does not answer), so it runs on the source's own
thread and `poll()` only hands over what has arrived: one service thread drives any number of
sources. A failed capture is logged and counted, and the next try waits longer (doubling, up to
`MAX_BACKOFF_S`); the thread never dies of it.

Captured frames live in memory until the service takes them; at most `max_queued` wait, and the
oldest goes first when the service falls behind (counted in `stats().dropped`). A frame captured
but not yet classified is lost in a crash: the camera takes a new one at the next interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from edge.ids import uuid7
from edge.sources.item import IMAGE, Item

log = logging.getLogger("nv.sources")

MAX_BACKOFF_S = 600.0
DEFAULT_MAX_QUEUED = 4


class CaptureError(Exception):
    """One capture failed for a reason worth a log line; the message says what and what to check."""


@dataclass(frozen=True)
class CaptureStats:
    captured: int
    failures: int  # every failed capture since start
    consecutive_failures: int  # since the last success: 0 when the source works
    dropped: int  # captured but pushed out before the service took them
    last_error: str | None


def backoff_s(interval_s: float, consecutive_failures: int) -> float:
    """Wait before the next capture: the interval, doubled per failure in a row, capped."""
    if consecutive_failures <= 0:
        return interval_s
    return min(interval_s * 2.0 ** min(consecutive_failures, 30), max(interval_s, MAX_BACKOFF_S))


class TimedSource:
    """Base for interval sources: subclasses give `origin` and `capture() -> bytes`."""

    kind = IMAGE
    origin = ""  # the record's `source` field: the URL, the camera

    def __init__(self, name: str, interval_s: float, *, max_queued: int = DEFAULT_MAX_QUEUED, clock=time.time):
        self.name = name
        self.interval_s = interval_s
        self.clock = clock
        self._queue: deque[Item] = deque()
        self._max_queued = max_queued
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._captured = self._failures = self._consecutive = self._dropped = 0
        self._last_error: str | None = None

    def capture(self) -> bytes:
        raise NotImplementedError

    # -- the source surface ----------------------------------------------------------------------

    def poll(self, now: float | None = None) -> list[Item]:
        """What was captured since the last poll, oldest first. Starts the thread on first use."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"source {self.name}", daemon=True)
            self._thread.start()
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
        return items

    def done(self, item: Item, outcome: str) -> None:
        pass  # nothing to remember: a captured frame is never offered twice

    def release(self, item: Item) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(self._captured, self._failures, self._consecutive, self._dropped, self._last_error)

    # -- the capture thread ----------------------------------------------------------------------

    def capture_once(self) -> Item:
        """One capture, counted; raises CaptureError. The thread calls this; so can a test."""
        try:
            data = self.capture()
        except CaptureError as exc:
            self._failed(str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - a driver or library bug must not end the capture loop
            message = f"source {self.name!r}: unexpected {type(exc).__name__}: {exc}"
            self._failed(message)
            raise CaptureError(message) from exc
        item = Item(source=self.name, record_id=uuid7(), arrived=self.clock(), origin=self.origin,
                    kind=self.kind, data=data)
        with self._lock:
            if self._consecutive:
                log.warning("source %r: working again after %d failed capture(s)", self.name, self._consecutive)
            self._captured += 1
            self._consecutive = 0
            self._last_error = None
        return item

    def _failed(self, message: str) -> None:
        with self._lock:
            repeated = message == self._last_error
            self._failures += 1
            self._consecutive += 1
            self._last_error = message
            wait = backoff_s(self.interval_s, self._consecutive)
        # The same error every minute for a week is one line, not ten thousand.
        log.log(logging.DEBUG if repeated else logging.WARNING, "%s (failure %d in a row; next try in %.0f s)",
                message, self._consecutive, wait)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                item = self.capture_once()
            except CaptureError:
                pass
            else:
                with self._lock:
                    if len(self._queue) >= self._max_queued:
                        self._queue.popleft()
                        self._dropped += 1
                    self._queue.append(item)
            with self._lock:
                wait = backoff_s(self.interval_s, self._consecutive)
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))  # every interval_s, not interval + capture
