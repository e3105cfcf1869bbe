"""`nv-edge run`: the field service. One config file; the image and audio pipelines and the publisher
run together until SIGTERM.

    sources -> classify -> records -> outbox (durable) -> publisher -> broker -> base station

Threads: one per pipeline (image, audio), one publisher (edge/delivery/publisher.py, its own outbox
connection), and the main thread, which pings the systemd watchdog while every pipeline makes
progress (edge/service/liveness.py) and reports STATUS=.

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
from pathlib import Path

from edge import __version__
from edge.config import EdgeConfig, broker_settings, outbox_limits, publisher_options
from edge.delivery.outbox import Outbox
from edge.service import journal, sdnotify
from edge.service.audio_pipeline import AudioPipeline
from edge.service.context import ClockWatch, Context, Counters
from edge.service.image_pipeline import ImagePipeline
from edge.service.liveness import Liveness
from edge.sources.folder import skipped_files

log = logging.getLogger("nv.service")


def build_pipelines(ctx: Context) -> list:
    pipelines = []
    if ctx.cfg.image is not None:
        pipelines.append(ImagePipeline(ctx))
    if ctx.cfg.audio is not None:
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
    sources = [source for p in pipelines for source in p.sources]
    if not pipelines:
        log.warning("the config has neither [image] nor [audio]: only the publisher runs")

    publisher_stop = threading.Event()
    failed: list[str] = []
    threads = [threading.Thread(target=_guard(p.run, p.name, stop, failed), name=p.name, daemon=True) for p in pipelines]
    publisher_outbox = None
    if cfg.mqtt is not None:
        from edge.delivery.publisher import Publisher

        publisher_outbox = Outbox(outbox_path)
        publisher = Publisher(publisher_outbox, broker_settings(cfg), publisher_options(cfg),
                              skipped_files=lambda: skipped_files(sources))
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
        sdnotify.notify("WATCHDOG=1", f"STATUS={status_line(counters, outbox.depth(), skipped_files(sources))}")

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


def status_line(counters: Counters, depth: int, skipped: int) -> str:
    """What STATUS= says while all is well; entries the folders skip are named in the journal."""
    line = f"{counters.line()}; outbox {depth}"
    return f"{line}; {skipped} file(s) skipped, not regular files (see the journal)" if skipped else line


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
    from edge.config import ConfigError, load_config
    from edge.delivery.connection import ConnectionFailed
    from edge.delivery.outbox import OutboxError
    from edge.model.bundle import BundleError
    from edge.sources.item import SourceError

    journal.setup()
    try:
        return run(load_config(config_path))
    except (ConfigError, BundleError, OutboxError, SourceError, ConnectionFailed, OSError) as exc:
        journal.event(log, logging.ERROR, f"cannot start: {exc}")
        sdnotify.notify(f"STATUS=cannot start: {exc}")
        return 1
