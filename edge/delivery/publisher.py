"""The publisher: drains the outbox to the broker, oldest first, QoS 1, and deletes a record only
once its delivery is confirmed.

Confirmation is either the broker's PUBACK (`confirm="puback"`) or, by default, the base
station's receipt (`confirm="receipt"`): mosquitto holds what it acknowledged in memory and saves
it only every `autosave_interval`, so a broker that loses power loses messages it had PUBACKed.
With receipts, a PUBACK only marks a row as taken; the row goes when nv-base says it committed
it, and is sent again when no receipt comes within `receipt_timeout_s` (then 2x, 4x ... 64x that,
so a base station that is down for a week costs a handful of resends, not a flood).

One thread does everything (socket, callbacks, SQLite), so nothing here needs a lock. Each
connection gets a fresh paho client: paho keeps unsent messages only in memory, the outbox is
the one queue, and after a reconnect sending starts again from the oldest unconfirmed row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from edge.delivery import topics
from edge.delivery.confirmations import Confirmations
from edge.delivery.connection import Backoff, BrokerSettings, connect, explain_publish_refusal, new_client
from edge.delivery.health import health_payload, status_payload
from edge.delivery.inbound import parse_command, parse_receipt
from edge.delivery.link import Link
from edge.delivery.outbox import Outbox, Row

log = logging.getLogger("nv.publisher")

NO_MATCHING_SUBSCRIBERS = 0x10  # a "success" PUBACK that means the broker threw the message away
CONFIRM_MODES = ("receipt", "puback")


@dataclass(frozen=True)
class PublisherOptions:
    device: str
    confirm: str = "receipt"
    window: int = 100  # QoS-1 messages in flight, at most (the broker's Receive Maximum caps it)
    receipt_timeout_s: float = 60.0
    heartbeat_s: float = 60.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    hold_max_s: float = 300.0  # longest pause after the broker refuses a message
    commit_every_s: float = 0.2  # group commit of confirmations
    models: tuple[dict, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.confirm not in CONFIRM_MODES:
            raise ValueError(f"confirm must be one of {CONFIRM_MODES}, got {self.confirm!r}")
        topics.topic(self.device, topics.DETECTION)  # refuses a device id that cannot be a topic level


class Publisher:
    def __init__(self, outbox: Outbox, settings: BrokerSettings, options: PublisherOptions, *,
                 skipped_files: Callable[[], int] | None = None):
        """`skipped_files` counts, for each heartbeat, what the unit's watched folders leave alone."""
        self.outbox = outbox
        self.skipped_files = skipped_files
        self.settings = settings
        self.options = options
        self.started = time.monotonic()
        self.link = Link(settings, Backoff(options.backoff_min_s, options.backoff_max_s), open_client=self._open,
                         on_retry=self._retrying, on_lost=self._forget_inflight, log=log)
        self.window = options.window
        self.hold = Backoff(options.backoff_min_s, options.hold_max_s)
        self.hold_until = 0.0
        self.inflight: dict[int, Row] = {}
        self.inflight_seqs: set[int] = set()
        self.prefetch: deque[Row] = deque()
        self.cursor = 0
        self.next_rescan = 0.0
        self.confirmations = Confirmations(outbox, options.confirm, every_s=options.commit_every_s)
        self.next_heartbeat = 0.0
        self.heartbeat_now = False
        self.published = 0
        self._last_report: tuple[str, float] = ("", 0.0)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, until_empty: bool = False) -> None:
        """Publish until `stop` is set (or, with until_empty, until the outbox is empty)."""
        try:
            while not stop.is_set():
                if not self.link.turn(stop, busy=bool(self.inflight)):
                    continue
                now = time.monotonic()
                if self.link.connected:
                    self._pump(now)
                    self._heartbeat(now)
                self._commit(now)
                if until_empty and self._drained(now):
                    log.info("outbox %s is empty: %d row(s) confirmed, %d publish(es)", self.outbox.path,
                             self.confirmations.deleted, self.published)
                    return
        finally:
            self._shutdown()

    def _open(self) -> mqtt.Client:
        will = (self._topic(topics.STATUS), status_payload(self.options.device, "offline"))
        client = new_client(self.settings, max_inflight=self.options.window, will=will)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        connect(client, self.settings)
        return client

    def _retrying(self, why: str, delay: float) -> None:
        self._report(logging.ERROR, f"{why}; the outbox keeps {self.outbox.depth()} record(s); retrying in {delay:.0f} s")

    def _forget_inflight(self) -> None:
        # What was in flight is unconfirmed: the next connection sends it again from the outbox.
        self.inflight.clear()
        self.inflight_seqs.clear()
        self.prefetch.clear()
        self.cursor = 0

    # -- paho callbacks (run inside client.loop(), on this thread) -------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not self.link.accepted(reason):
            return
        self.window = self.options.window
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        if receive_max:
            self.window = min(self.window, receive_max)
        log.info("connected to %s as %s (MQTT %s, session %s, window %d)", self.settings.address,
                 self.settings.username or "anonymous", self.settings.protocol,
                 "resumed" if flags.session_present else "new", self.window)
        self._last_report = ("", 0.0)
        if not flags.session_present and self.options.confirm == "receipt":
            # The broker has no session for us: it restarted without its state, and what it had
            # taken from us but not yet delivered may be gone. Send everything unconfirmed again.
            n = self.outbox.forget_sent()
            if n:
                log.info("the broker kept no session: %d record(s) awaiting a receipt are due again", n)
        client.publish(self._topic(topics.STATUS), status_payload(self.options.device, "online"), qos=1, retain=True)
        client.subscribe([(self._topic(topics.RECEIPT), 1), (self._topic(topics.COMMAND), 1)])
        self.heartbeat_now = True

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.link.dropped(client, reason)

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        row = self.inflight.pop(mid, None)
        if row is None:  # status or health
            if reason.is_failure:
                self._report(logging.ERROR, f"the broker refused a status/health message: {reason}")
            return
        self.inflight_seqs.discard(row.seq)
        topic = self._topic(row.leaf)
        if reason.is_failure:
            self._pause(f"the broker refused {topic} (record {row.id}): {explain_publish_refusal(reason)} "
                        f"The record stays in the outbox")
        elif reason.value == NO_MATCHING_SUBSCRIBERS:
            self._pause(f"the broker has no subscriber for {topic} and dropped record {row.id} "
                        f"(is nv-base listening?); it stays in the outbox")
        else:
            self.hold.reset()
            self.confirmations.by_broker(row.seq)

    def _on_message(self, client, userdata, message) -> None:
        leaf = message.topic.rsplit("/", 1)[-1]
        if leaf == topics.RECEIPT:
            receipt = parse_receipt(message.payload, message.topic)
            if receipt is not None:
                self.confirmations.by_receipt(*receipt)
        elif leaf == topics.COMMAND and parse_command(message.payload, message.topic) == "heartbeat":
            self.heartbeat_now = True

    # -- sending ---------------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        if now < self.hold_until:
            return
        while len(self.inflight) < self.window:
            if not self.prefetch and not self._refill(now):
                return
            row = self.prefetch.popleft()
            if row.seq in self.inflight_seqs or row.seq in self.confirmations.settled:
                continue
            payload = self._late(row) if row.is_detection else row.payload
            info = self.link.client.publish(self._topic(row.leaf), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self.prefetch.appendleft(row)
                return  # the connection is going; Link.lost() resets everything
            self.inflight[info.mid] = row
            self.inflight_seqs.add(row.seq)
            self.published += 1

    def _refill(self, now: float) -> bool:
        resend = self.options.receipt_timeout_s if self.options.confirm == "receipt" else None
        rows = self.outbox.due(after_seq=self.cursor, limit=max(256, self.window), resend_after_s=resend)
        if rows:
            self.cursor = rows[-1].seq
            self.prefetch.extend(rows)
            return True
        if now >= self.next_rescan:
            # End of a pass: start again from the oldest row, for resends that have become due and
            # rows skipped while in flight. Confirmations go to disk first, or we would resend them.
            self._commit(now, force=True)
            self.cursor = 0
            self.next_rescan = now + 1.0
        return False

    def _late(self, row: Row) -> bytes:
        """The record as stored, plus how long it waited on the unit: its capture `time` is kept."""
        queued_s = max(0.0, time.time() - row.queued)
        return row.payload[:-1] + b',"queued_s":%.1f}' % queued_s

    def _pause(self, message: str) -> None:
        """Stop sending for a while (longer each time), then start again from the oldest row."""
        self.prefetch.clear()
        self.cursor = 0
        if time.monotonic() < self.hold_until:
            return  # the rest of the window, refused for the same reason: already reported
        delay = self.hold.next()
        self.hold_until = time.monotonic() + delay
        self._report(logging.ERROR, f"{message}; retrying in {delay:.0f} s")

    # -- confirmations, group-committed ---------------------------------------------------------

    def _commit(self, now: float, force: bool = False) -> None:
        if (force or self.confirmations.due(now)) and self.confirmations.commit() and self.prefetch:
            # rows read before this commit may be confirmed now: read them again, as they are
            self.cursor = self.prefetch[0].seq - 1
            self.prefetch.clear()

    def _drained(self, now: float) -> bool:
        return not self.inflight and not self.confirmations and self.outbox.depth() == 0

    # -- heartbeat and shutdown ------------------------------------------------------------------

    def _heartbeat(self, now: float) -> None:
        if not self.heartbeat_now and now < self.next_heartbeat:
            return
        self.heartbeat_now = False
        self.next_heartbeat = now + self.options.heartbeat_s
        self._commit(now, force=True)  # the depth we report is the depth on disk
        payload = health_payload(self.options.device, started=self.started, stats=self.outbox.stats(),
                                 outbox_dir=self.outbox.path.parent, models=self.options.models,
                                 protocol=self.settings.protocol,
                                 skipped_files=self.skipped_files() if self.skipped_files else None)
        self.link.client.publish(self._topic(topics.HEALTH), payload, qos=1, retain=True)

    def _shutdown(self) -> None:
        """A clean stop: say `stopped` (retained), wait briefly for its PUBACK, save confirmations."""
        link = self.link
        link.stopping = True
        client = link.client
        if client is not None and link.connected:
            info = client.publish(self._topic(topics.STATUS), status_payload(self.options.device, "stopped"), qos=1, retain=True)
            deadline = time.monotonic() + 3.0
            while not info.is_published() and time.monotonic() < deadline and link.connected:
                client.loop(timeout=0.05)
            client.disconnect()
            client.loop(timeout=0.05)
        link.client = None
        link.connected = False
        self._commit(time.monotonic(), force=True)

    # -- small things ----------------------------------------------------------------------------

    def _topic(self, leaf: str) -> str:
        return topics.topic(self.options.device, leaf)

    def _report(self, level: int, message: str) -> None:
        """Log an error; the same one again only once a minute, so a unit offline for days does
        not fill its card with the same line."""
        last, when = self._last_report
        now = time.monotonic()
        if message.split(";")[0] != last.split(";")[0] or now - when > 60:
            log.log(level, "%s", message)
            self._last_report = (message, now)
