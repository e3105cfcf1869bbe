"""`nv-edge publish`: drain an outbox to the broker until stopped (SIGTERM/SIGINT: a clean stop).

The daemon (`nv-edge run`) composes the same pieces: Outbox, BrokerSettings, Publisher.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import threading
from pathlib import Path

from edge.cli.arguments import EXIT_FAILED
from edge.delivery.connection import ConnectionFailed, add_broker_arguments, settings_from_args
from edge.delivery.outbox import Outbox, OutboxError
from edge.delivery.publisher import CONFIRM_MODES, Publisher, PublisherOptions
from edge.model.bundle import BundleError, read_bundle
from edge.records.record import default_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outbox", type=Path, default=os.environ.get("NV_OUTBOX"), help="outbox file (default $NV_OUTBOX)")
    p.add_argument("--device", help="device id: the topic prefix naturevision/<device>/ (default $NV_DEVICE or the host name)")
    add_broker_arguments(p)
    d = p.add_argument_group("delivery")
    d.add_argument("--confirm", choices=CONFIRM_MODES, default="receipt",
                   help="what lets a record leave the outbox: the base station's receipt (default; survives a "
                        "broker crash) or the broker's PUBACK")
    d.add_argument("--window", type=int, default=100, help="QoS-1 messages in flight at most (default 100)")
    d.add_argument("--receipt-timeout", type=float, default=60.0, help="resend when no receipt came after S s (default 60)")
    d.add_argument("--heartbeat", type=float, default=60.0, help="seconds between health messages (default 60)")
    d.add_argument("--max-backoff", type=float, default=60.0, help="longest wait between reconnects, s (default 60)")
    d.add_argument("--model", type=Path, action="append", default=[], help="model bundle in use, named in the heartbeat (repeatable)")
    d.add_argument("--until-empty", action="store_true", help="exit once every record is confirmed")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s nv-edge publish: %(levelname)s %(message)s")
    log = logging.getLogger("nv.publish")
    if args.outbox is None:
        log.error("no outbox given: pass --outbox PATH or set $NV_OUTBOX")
        return EXIT_FAILED
    device = args.device or default_device()
    try:
        settings = settings_from_args(args, default_client_id=f"nv-edge-{device}")
        options = PublisherOptions(
            device=device, confirm=args.confirm, window=args.window, receipt_timeout_s=args.receipt_timeout,
            heartbeat_s=args.heartbeat, backoff_max_s=args.max_backoff, hold_max_s=max(args.max_backoff, 1.0),
            models=read_models(args.model),
        )
        lock = _lock_publisher(args.outbox)
        outbox = Outbox(args.outbox)
    except (ConnectionFailed, OutboxError, BundleError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("draining %s (%d record(s)) to %s as %s, confirm=%s", args.outbox, outbox.depth(),
             settings.address, device, options.confirm)
    try:
        Publisher(outbox, settings, options).run(stop, until_empty=args.until_empty)
    except (OutboxError, ConnectionFailed) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    finally:
        outbox.close()
        lock.close()
    return 0


def _lock_publisher(outbox: Path):
    """One publisher per outbox: two would send every record twice. The lock dies with the process."""
    outbox.parent.mkdir(parents=True, exist_ok=True)
    handle = open(outbox.with_name(outbox.name + ".publisher.lock"), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise OutboxError(f"{outbox}: another nv-edge publish is already draining this outbox") from None
    return handle


def read_models(paths: list[Path]) -> tuple[dict, ...]:
    """name/version/sha256 of each bundle, for the heartbeat (read and checked, not loaded)."""
    return tuple({"name": m.name, "version": m.version, "sha256": m.model_sha256}
                 for m in (read_bundle(path).manifest for path in paths))
