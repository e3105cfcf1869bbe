"""What every pipeline of `nv-edge run` shares: the config, the outbox, the liveness monitor, counters,
the clock state, the stop flag; and the one poll-and-process loop (`drain`) that each pipeline runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.config import EdgeConfig
from edge.delivery.health import clock_synchronised
from edge.delivery.outbox import Outbox
from edge.service import journal
from edge.service.liveness import Liveness
from edge.sources.item import Item, Source

log = logging.getLogger("nv.service")
IDLE_WAIT_S = 0.2
CLOCK_CHECK_S = 600.0


@dataclass
class Counters:
    """What the service has done, for STATUS= and the stop line."""

    frames: int = 0
    clips: int = 0
    windows: int = 0
    records: int = 0
    alerts: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def line(self) -> str:
        with self.lock:
            return (f"{self.frames} frame(s), {self.clips} clip(s), {self.windows} live window(s); "
                    f"{self.records} record(s), {self.alerts} alert(s), {self.errors} error(s)")


class ClockWatch:
    """Is the wall clock synchronised? A unit without NTP or GPS stamps records with a guessed time;
    records say so (`clock_synchronized: false`) so the base station can treat their times with care."""

    def __init__(self, probe=clock_synchronised):
        self.probe = probe
        self._checked = -CLOCK_CHECK_S
        self.state: bool | str = "unknown"

    def current(self) -> bool | str:
        now = time.monotonic()
        if now - self._checked >= CLOCK_CHECK_S:
            self._checked = now
            state = self.probe()["synchronized"]
            if state != self.state:
                journal.event(log, logging.WARNING if state is False else logging.INFO, "clock state",
                              synchronized=state)
            self.state = state
        return self.state


@dataclass
class Context:
    """What every pipeline shares."""

    cfg: EdgeConfig
    outbox: Outbox
    liveness: Liveness
    counters: Counters
    clock: ClockWatch
    stop: threading.Event

    def stamp(self, record: dict) -> dict:
        """Fields the unit adds to every record it makes: static location and clock state."""
        loc = self.cfg.device.location
        if loc is not None and "geo" not in record and "error" not in record:
            record["geo"] = {"lat": loc.lat, "lon": loc.lon, "source": "config"}
            if loc.alt_m is not None:
                record["geo"]["alt"] = loc.alt_m
        state = self.clock.current()
        if isinstance(state, bool):
            record["clock_synchronized"] = state
        return record

    def keep(self, records: list[dict], thumbnails: dict[str, bytes] | None = None) -> None:
        for record in records:
            self.outbox.put(self.stamp(record), (thumbnails or {}).get(record["id"]))
            self.counters.add(records=1, alerts=int(bool(record.get("alert"))), errors=int("error" in record))


def drain(ctx: Context, worker: str, sources: list[Source], process: Callable[[Source, Item], None]) -> None:
    """Poll `sources` until stop and hand each item to `process(source, item)`, beating the liveness
    monitor on every turn and before every item. Items polled but not started when the stop comes are
    released: offered again after the restart, under the same record id."""
    by_name = {source.name: source for source in sources}
    while not ctx.stop.is_set():
        ctx.liveness.beat(worker)
        items = [item for source in sources for item in source.poll(time.time())]
        if not items:
            ctx.stop.wait(IDLE_WAIT_S)
            continue
        for item in items:
            source = by_name[item.source]
            if ctx.stop.is_set():
                source.release(item)
                continue
            ctx.liveness.beat(worker, busy=item.origin)
            process(source, item)
