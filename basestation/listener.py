"""`nv-base listen`: subscribe, check, store, and only then acknowledge.

paho runs with `manual_ack=True`: a message's PUBACK goes to the broker after the row holding it
is committed, so a base station killed at any moment loses nothing; the broker redelivers what
was not acknowledged (our session is persistent) and the store ignores what it already has.
Messages are stored in batches (one fsync per batch) of up to `batch` messages or `max_delay_s`.

After each commit the listener sends each unit a receipt naming the ids it now holds; a unit
deletes a record from its outbox only on that receipt (edge/delivery/publisher.py), which covers a broker
that dies with messages it had acknowledged but not yet delivered.

With `group`, detections and thumbnails come through the shared subscription
`$share/<group>/...`: several workers split the load. Status and health stay ordinary
subscriptions, because a shared subscription does not receive retained messages.

A malformed payload is logged, kept as a dead letter (with its cause, size and first bytes),
counted, acknowledged (or the broker would redeliver it forever) and never stored; so is one the
database will not take. Nothing in a message stops the listener: should checking one fail in a way
nobody foresaw, that message becomes a dead letter too, with the traceback in the log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from basestation.payloads import Accepted, DeadLetter, Rejected, parse
from basestation.store import Store
from edge.delivery import topics
from edge.delivery.connection import Backoff, BrokerSettings, connect, new_client
from edge.delivery.link import Link

log = logging.getLogger("nv.base")

RECEIPT_CHUNK = 250  # ids per receipt message (~10 KB)


@dataclass(frozen=True)
class ListenerOptions:
    group: str | None = None
    batch: int = 500
    max_delay_s: float = 0.05
    receipts: bool = True
    backoff_max_s: float = 30.0
    report_every_s: float = 60.0


class Listener:
    def __init__(self, store: Store, settings: BrokerSettings, options: ListenerOptions = ListenerOptions(),
                 after_commit: Callable[[list[dict], set[str], mqtt.Client | None], None] | None = None):
        """`after_commit(new_records, devices, client)` runs in this thread after each commit (and its
        acknowledgements) with the detections stored for the first time, the units the batch came
        from and the live client (None while disconnected); it must not block (basestation/notify/)."""
        self.store = store
        self.after_commit = after_commit
        self.settings = settings
        self.options = options
        self.link = Link(settings, Backoff(1.0, options.backoff_max_s), open_client=self._open, on_retry=self._retrying, log=log)
        self.pending: list[tuple[mqtt.Client, mqtt.MQTTMessage]] = []
        self.first_pending = 0.0
        self.totals = {"stored": 0, "duplicates": 0, "rejected": 0}
        self.next_report = time.monotonic() + options.report_every_s
        self._last_error = ""

    def subscriptions(self) -> list[tuple[str, int | SubscribeOptions]]:
        share = f"$share/{self.options.group}/" if self.options.group else ""
        # MQTT 5: retained messages only for a subscription the session does not have yet. A resumed
        # session already got them (and what changed since is queued in it), so a retained payload
        # we refused is not handed to us again on every reconnect. 3.1.1 has no such option.
        qos = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB) if self.settings.v5 else 1
        return [
            (f"{share}{topics.ROOT}/+/{topics.DETECTION}", qos),
            (f"{share}{topics.ROOT}/+/{topics.THUMBNAIL}/+", qos),
            (f"{topics.ROOT}/+/{topics.STATUS}", qos),
            (f"{topics.ROOT}/+/{topics.HEALTH}", qos),
        ]

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if not self.link.turn(stop, busy=bool(self.pending)):
                    continue
                now = time.monotonic()
                if self.pending and (len(self.pending) >= self.options.batch
                                     or time.monotonic() - self.first_pending >= self.options.max_delay_s):
                    self._flush()
                if now >= self.next_report:
                    self.next_report = now + self.options.report_every_s
                    log.info("so far: %(stored)d stored, %(duplicates)d duplicates, %(rejected)d rejected", self.totals)
        finally:
            self.link.stopping = True
            if self.pending:
                self._flush()
            client = self.link.client
            if client is not None:
                client.disconnect()
                client.loop(timeout=0.05)

    def _open(self) -> mqtt.Client:
        client = new_client(self.settings, manual_ack=True, max_inflight=100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        # The broker sends at most this many unacknowledged messages: room for a full batch
        # while the previous one commits.
        connect(client, self.settings, receive_maximum=2 * self.options.batch)
        return client

    def _retrying(self, why: str, delay: float) -> None:
        if why != self._last_error:
            log.error("%s; retrying in %.0f s", why, delay)
            self._last_error = why

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not self.link.accepted(reason):
            return
        self._last_error = ""
        # Subscribe on every connect: a broker that lost its state lost our subscriptions too.
        client.subscribe(self.subscriptions())
        log.info("listening on %s as %s (session %s)%s", self.settings.address, self.settings.username or "anonymous",
                 "resumed" if flags.session_present else "new",
                 f", shared group {self.options.group}" if self.options.group else "")

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.link.dropped(client, reason)

    def _on_message(self, client, userdata, message) -> None:
        if not self.pending:
            self.first_pending = time.monotonic()
        self.pending.append((client, message))

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        accepted, sources, dead = [], [], []
        for _, message in batch:
            item = _check(message)
            if isinstance(item, Accepted):
                accepted.append(item)
                sources.append(message)
            else:
                dead.append(item)
        saved = self.store.save(accepted, dead)  # raises StoreError: then nothing is acknowledged
        if saved.unstorable:  # valid, but the database would not take it: a second, rare transaction
            unstorable = [_dead_letter(sources[i], "store", f"{_topic(sources[i])}: cannot be stored: {why}")
                          for i, why in saved.unstorable]
            self.store.save([], unstorable)
            dead += unstorable
        self.totals["stored"] += saved.stored
        self.totals["duplicates"] += saved.duplicates
        self.totals["rejected"] += len(dead)
        client = self.link.client if self.link.connected else None
        if client is not None:
            self._acknowledge(client, batch, saved)
        if self.after_commit is not None:
            try:
                self.after_commit(saved.new, {item.device for item in accepted}, client)
            except Exception:  # noqa: BLE001 - what follows a commit never stops storing
                log.exception("after the commit: notifying failed")

    def _acknowledge(self, client: mqtt.Client, batch: list, saved) -> None:
        """Without a live connection nothing is acknowledged: the broker redelivers the batch to our next
        connection, and the store ignores repeats."""
        for owner, message in batch:
            if owner is client and message.qos > 0:  # a message id means nothing on another connection
                client.ack(message.mid, message.qos)
        if self.options.receipts:
            for device, (detections, thumbnails) in saved.receipts.items():
                for i in range(0, max(len(detections), len(thumbnails)), RECEIPT_CHUNK):
                    body = {"detections": detections[i:i + RECEIPT_CHUNK], "thumbnails": thumbnails[i:i + RECEIPT_CHUNK]}
                    client.publish(topics.topic(device, topics.RECEIPT), json.dumps(body, separators=(",", ":")), qos=1)


def _check(message: mqtt.MQTTMessage) -> Accepted | DeadLetter:
    """The message as it will be stored, or as a dead letter. Never raises: this is the last guard
    between a payload and the loop, and a message that stopped the loop would stop it again on
    every redelivery."""
    try:
        return parse(message.topic, message.payload)
    except Rejected as exc:
        return _dead_letter(message, exc.cause, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in checking is a bug, but not a reason to stop storing
        return _dead_letter(message, "error", f"{_topic(message)}: checking it failed: {type(exc).__name__}: {exc}",
                            exc_info=True)


def _dead_letter(message: mqtt.MQTTMessage, cause: str, reason: str, *, exc_info: bool = False) -> DeadLetter:
    log.warning("rejected a message: %s", reason, exc_info=exc_info)
    return DeadLetter.of(_topic(message), message.payload, cause, reason, retained=bool(message.retain))


def _topic(message: mqtt.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:  # paho decodes it strictly; mosquitto refuses such topics, but the guard must not raise
        return repr(message._topic)
