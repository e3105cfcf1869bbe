"""Is every pipeline thread still making progress? The service pings the systemd watchdog only while
the answer is yes, so a pipeline stuck on one item (a camera that trickles bytes forever, a hung
driver) gets the service restarted instead of a unit that looks alive and detects nothing.

Each worker calls `beat(name)` on every turn of its loop, idle or not, and `beat(name, busy=what)`
before a long step; a worker whose last beat is older than `stall_s` is stalled.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Stall:
    worker: str
    doing: str
    seconds: float


class Liveness:
    def __init__(self, stall_s: float, clock=time.monotonic):
        if stall_s <= 0:
            raise ValueError(f"stall_s must be positive, got {stall_s}")
        self.stall_s = stall_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, str]] = {}

    def beat(self, worker: str, busy: str = "idle") -> None:
        with self._lock:
            self._last[worker] = (self.clock(), busy)

    def retire(self, worker: str) -> None:
        """A worker that ended on purpose (its source finished) is no longer watched."""
        with self._lock:
            self._last.pop(worker, None)

    def stalls(self) -> list[Stall]:
        now = self.clock()
        with self._lock:
            return [Stall(name, doing, now - at) for name, (at, doing) in self._last.items() if now - at > self.stall_s]
