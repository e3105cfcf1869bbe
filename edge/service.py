"""`nv-edge run`: the field service. One config file; the image and audio pipelines and the publisher
run together until SIGTERM.

    sources -> classify -> records -> outbox (durable) -> publisher -> broker -> base station

Threads: one per pipeline (image, audio), one publisher (edge/publisher.py, its own outbox
connection), and the main thread, which pings the systemd watchdog while every pipeline makes
progress (edge/liveness.py) and reports STATUS=.

Order for every file item: the ledger gave it a record id before classification; its records go
into the outbox and are flushed (fsync) before the source is told it is done. A crash in between
classifies the file again under the same id, which the outbox and the base station store once.

SIGTERM/SIGINT: the pipelines finish the item in hand, close open events (an `end` is written), flush
the outbox; the publisher then sends what it can for `drain_s` and says `stopped` (retained). A killed
service leaves `offline` by the broker's Last Will.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edge import __version__, journal, sdnotify
from edge.classify import ClassifyOptions, classify_frame
from edge.config import EdgeConfig, broker_settings, outbox_limits, publisher_options
from edge.events import EventTracker
from edge.health import clock_synchronised
from edge.image import ImageError
from edge.liveness import Liveness
from edge.model import Model, load_model
from edge.outbox import Outbox
from edge.record import error_record, event_record, image_record, iso_utc
from edge.sources.factory import build_sources
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


# -- image pipeline ---------------------------------------------------------------------------------

class ImagePipeline:
    name = "image"

    def __init__(self, ctx: Context):
        self.ctx = ctx
        cfg = ctx.cfg.image
        self.model: Model = load_model(cfg.model, backend=cfg.backend, num_threads=cfg.threads)
        self.options = ClassifyOptions(thresholds=cfg.resolved_thresholds(), tile=cfg.tile, overlap=cfg.overlap,
                                       batch_size=cfg.batch)
        self.sources = build_sources(cfg.sources, ctx.cfg.device.state_dir, kind="image")
        self.events = None
        if cfg.events is not None:  # per source: frames of two cameras are not one sequence
            self.events = {s.name: EventTracker(self.model.manifest.labels, self.options.thresholds, cfg.events)
                           for s in self.sources}

    def run(self) -> None:
        try:
            drain(self.ctx, self.name, self.sources, self.process)
        finally:
            self._close()

    def process(self, source, item: Item) -> None:
        ctx = self.ctx
        record = self.classify(item)
        if record is None:  # the file went away while being read (card pulled): not done, not lost
            source.release(item)
            return
        records = [record]
        if self.events is not None and "error" not in record:
            tracker = self.events[item.source]
            scores = [record["scores"][label] for label in self.model.manifest.labels]
            t = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
            for event in tracker.observe(t, t, scores):
                records.append(event_record(event, kind="image", source=item.source, device=ctx.cfg.device.id,
                                            model=self.model.identity, rules=ctx.cfg.image.events, origin=None,
                                            labels=self.model.manifest.labels, time_source=record["time_source"]))
        thumbs = {}
        if ctx.cfg.image.thumbnails and record.get("alert") and "tiles" in record:
            from edge.thumbnail import best_tile_jpeg

            thumb = best_tile_jpeg(item.path if item.path is not None else item.data, record)
            if thumb:
                thumbs[record["id"]] = thumb
        ctx.keep(records, thumbs)
        ctx.outbox.flush()  # durable before the source forgets the item
        source.done(item, "error" if "error" in record else ("alert" if record.get("alert") else "ok"))
        ctx.counters.add(frames=1)
        journal.event(log, logging.INFO, "classified", source=item.origin, label=record.get("label"),
                      score=record.get("score"), alert=record.get("alert"), error=record.get("error"))

    def classify(self, item: Item) -> dict | None:
        device = self.ctx.cfg.device.id
        m = self.model.manifest
        what = item.path if item.path is not None else item.data
        try:
            result = classify_frame(self.model, what, self.options)
        except ImageError as exc:
            if item.path is not None and not item.path.exists():
                journal.event(log, logging.WARNING, "file vanished while being read; will retry", source=item.origin)
                return None
            record = error_record(source=item.origin, error=f"{item.origin}: {exc}", device=device, model=self.model.identity)
        except Exception as exc:  # noqa: BLE001 - one bad frame must never stop the service
            record = error_record(source=item.origin, error=f"{item.origin}: unexpected {type(exc).__name__}: {exc}",
                                  device=device, model=self.model.identity)
        else:
            record = image_record(result, model=self.model.identity, labels=m.labels, alert_labels=m.alert_labels,
                                  source=item.origin, path=item.path, device=device)
            if item.data is not None and result.captured is None:  # a snapshot: captured when received
                record["time"] = iso_utc(datetime.fromtimestamp(item.arrived, timezone.utc))
                record["time_source"] = "received"
        record["id"] = item.record_id  # the ledger's id: a re-run after a crash is the same record
        return record

    def _close(self) -> None:
        ctx = self.ctx
        if self.events is not None:
            for name, tracker in self.events.items():
                ctx.keep([event_record(e, kind="image", source=name, device=ctx.cfg.device.id,
                                       model=self.model.identity, rules=ctx.cfg.image.events, origin=None,
                                       labels=self.model.manifest.labels) for e in tracker.close()])
        for source in self.sources:
            source.close()


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


# -- the service ------------------------------------------------------------------------------------

def build_pipelines(ctx: Context) -> list:
    pipelines = []
    if ctx.cfg.image is not None:
        pipelines.append(ImagePipeline(ctx))
    if ctx.cfg.audio is not None:
        from edge.audio_service import AudioPipeline

        pipelines.append(AudioPipeline(ctx))
    return pipelines


def run(cfg: EdgeConfig, *, drain_s: float = 5.0) -> int:
    """Run until SIGTERM/SIGINT. Returns the exit code."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    counters = Counters()
    outbox_path = cfg.outbox.path
    outbox = Outbox(outbox_path, limits=outbox_limits(cfg))
    liveness = Liveness(cfg.device.stall_s)
    ctx = Context(cfg=cfg, outbox=outbox, liveness=liveness, counters=counters, clock=ClockWatch(), stop=stop)
    pipelines = build_pipelines(ctx)
    if not pipelines:
        log.warning("the config has neither [image] nor [audio]: only the publisher runs")

    publisher_stop = threading.Event()
    failed: list[str] = []
    threads = [threading.Thread(target=_guard(p.run, p.name, stop, failed), name=p.name, daemon=True) for p in pipelines]
    publisher_outbox = None
    if cfg.mqtt is not None:
        from edge.publisher import Publisher

        publisher_outbox = Outbox(outbox_path)
        publisher = Publisher(publisher_outbox, broker_settings(cfg), publisher_options(cfg))
        threads.append(threading.Thread(target=_guard(lambda: publisher.run(publisher_stop), "publisher", stop, failed),
                                        name="publisher", daemon=True))
    for t in threads:
        t.start()
    journal.event(log, logging.INFO, "started", device=cfg.device.id, version=__version__,
                  pipelines=",".join(p.name for p in pipelines) or "none",
                  broker=f"{cfg.mqtt.host}:{cfg.mqtt.port}" if cfg.mqtt else "none", config=cfg.path)
    sdnotify.notify("READY=1", f"STATUS=running: {', '.join(p.name for p in pipelines) or 'publisher only'}",
                    f"MAINPID={os.getpid()}")
    interval = sdnotify.watchdog_interval()
    ping_every = min(interval / 2, 5.0) if interval else 5.0
    stalled_reported = False
    while not stop.wait(ping_every):
        stalls = liveness.stalls()
        if stalls:
            if not stalled_reported:
                for s in stalls:
                    journal.event(log, logging.ERROR, "pipeline stalled: watchdog pings stopped",
                                  worker=s.worker, doing=s.doing, seconds=round(s.seconds))
                stalled_reported = True
            sdnotify.notify(f"STATUS=stalled: {stalls[0].worker} on {stalls[0].doing}")
            continue
        stalled_reported = False
        sdnotify.notify("WATCHDOG=1", f"STATUS={counters.line()}; outbox {outbox.depth()}")

    sdnotify.notify("STOPPING=1", "STATUS=stopping: finishing the current item")
    journal.event(log, logging.INFO, "stopping")
    for t in threads[: len(pipelines)]:
        t.join(timeout=60)
    outbox.flush()
    if publisher_outbox is not None:
        deadline = time.monotonic() + drain_s  # send what we can before saying `stopped`
        while time.monotonic() < deadline and _unsent(publisher_outbox):
            time.sleep(0.1)
        publisher_stop.set()
        threads[-1].join(timeout=15)
        publisher_outbox.close()
    outbox.close()
    journal.event(log, logging.INFO, "stopped", summary=counters.line())
    return 1 if failed else 0


def _unsent(outbox: Outbox) -> bool:
    return outbox.stats().unsent > 0


def _guard(target, name: str, stop: threading.Event, failed: list[str]):
    """A thread that dies stops the whole service with exit code 1, so systemd restarts it, rather
    than leaving a unit that looks alive with a dead pipeline."""
    def run():
        try:
            target()
        except Exception:  # noqa: BLE001
            log.exception("%s failed; stopping the service so systemd restarts it", name)
            failed.append(name)
            stop.set()
    return run


def main(config_path: Path) -> int:
    from edge.bundle import BundleError
    from edge.config import ConfigError, load_config
    from edge.connection import ConnectionFailed
    from edge.outbox import OutboxError
    from edge.sources.item import SourceError

    journal.setup()
    try:
        return run(load_config(config_path))
    except (ConfigError, BundleError, OutboxError, SourceError, ConnectionFailed, OSError) as exc:
        journal.event(log, logging.ERROR, f"cannot start: {exc}")
        sdnotify.notify(f"STATUS=cannot start: {exc}")
        return 1
