"""`Notifier`: fed by the listener after each commit, sends in the background.

The listener's thread only matches records against the rules and puts them on queues (no I/O, no
waiting): a dead webhook or SMTP server never slows storing. Each rule has its own bounded queue and
worker thread, so one rule's dead endpoint does not hold up another's. A worker sends at most
`max_per_hour` notifications per rule (held-back ones are counted and reported in the next one),
retries a failed send after 1, 2, 4 … 60 s (±20 %) up to `retries` times, then gives up and logs it.

Notifications are best-effort: a queue that is full drops the newest (and counts it), and what is
queued when `nv-base listen` stops is not sent. The detection itself is stored either way.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from basestation.baseconfig import BaseConfig, Rule
from basestation.notify import channels, rules
from edge.delivery.connection import BrokerSettings

log = logging.getLogger("nv.base.notify")

QUEUE_SIZE = 1000  # notifications waiting per rule
HOUR_S = 3600.0


@dataclass
class Counts:
    sent: int = 0
    suppressed: int = 0  # held back by the rate limit
    dropped: int = 0  # the queue was full
    failed: int = 0  # gave up after the retries
    retries: int = 0


@dataclass
class RuleWorker:
    rule: Rule
    send: Callable[[dict], None]
    public_url: str | None = None
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self):
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.stop = threading.Event()
        self.sent_at: deque[float] = deque()
        self.pending_suppressed = 0
        self.thread = threading.Thread(target=self._run, name=f"notify-{self.rule.name}", daemon=True)

    def offer(self, record: dict) -> None:
        """Never blocks: a full queue drops the record's notification."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.counts.dropped += 1
            if self.counts.dropped in (1, 10, 100) or self.counts.dropped % 1000 == 0:
                log.error("rule %s: %d notification(s) dropped so far: its queue of %d is full (is the %s down?)",
                          self.rule.name, self.counts.dropped, QUEUE_SIZE, self.rule.channel)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                record = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._one(record)
            except Exception:
                log.exception("rule %s: notifying about %s failed", self.rule.name, record.get("id"))

    def _one(self, record: dict) -> None:
        now = self.clock()
        while self.sent_at and self.sent_at[0] <= now - HOUR_S:
            self.sent_at.popleft()
        if len(self.sent_at) >= self.rule.max_per_hour:
            self.counts.suppressed += 1
            self.pending_suppressed += 1
            return
        self.sent_at.append(now)
        body = rules.message(self.rule, record, public_url=self.public_url, suppressed=self.pending_suppressed)
        delay = self.backoff_min_s
        for attempt in range(self.rule.retries + 1):
            try:
                self.send(body)
            except channels.GiveUp as exc:
                self.counts.failed += 1
                log.error("rule %s: gave up on %s: %s", self.rule.name, record["id"], exc)
                return
            except channels.Retry as exc:
                if attempt == self.rule.retries or self.stop.is_set():
                    self.counts.failed += 1
                    log.error("rule %s: gave up on %s after %d attempt(s): %s", self.rule.name, record["id"],
                              attempt + 1, exc)
                    return
                self.counts.retries += 1
                wait = min(delay, self.backoff_max_s) * random.uniform(0.8, 1.2)
                log.warning("rule %s: %s; trying again in %.0f s", self.rule.name, exc, wait)
                if self.stop.wait(wait):
                    return
                delay *= 2
            else:
                self.counts.sent += 1
                self.pending_suppressed = 0
                log.info("rule %s: notified %s about %s (%s %.3f at %s)", self.rule.name, self.rule.channel,
                         record["id"], record["label"], record["score"], record["device"])
                return


class Notifier:
    """Every rule of a config, each with its worker. `submit` is what the listener calls."""

    def __init__(self, config: BaseConfig, broker: BrokerSettings | None = None, **worker_options):
        self.mqtt = None
        self.workers: list[RuleWorker] = []
        for rule in config.rules:
            if rule.webhook:
                send = channels.webhook(rule.webhook, rule.timeout_s)
            elif rule.email:
                send = channels.email(config.smtp, rule.email)
            else:
                if broker is None:
                    raise ValueError(f"rule {rule.name}: an MQTT rule needs the broker settings")
                if self.mqtt is None:
                    self.mqtt = channels.MqttChannel(replace(broker, client_id=f"{broker.client_id}-notify"))
                send = self.mqtt.sender(rule.mqtt_topic, rule.timeout_s)
            self.workers.append(RuleWorker(rule, send, public_url=config.serve.public_url, **worker_options))

    def start(self) -> Notifier:
        for worker in self.workers:
            worker.thread.start()
        if self.workers:
            log.info("notifications: %s", ", ".join(f"{w.rule.name} ({w.rule.channel})" for w in self.workers))
        return self

    def submit(self, records: list[dict]) -> None:
        for record in records:
            for worker in self.workers:
                if rules.matches(worker.rule, record):
                    worker.offer(record)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the workers; a send in progress may take up to its own timeout to notice."""
        for worker in self.workers:
            worker.stop.set()
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self.mqtt is not None:
            self.mqtt.close()
