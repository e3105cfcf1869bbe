"""`Notifier`: sends the notifications the store queued, in the background.

The store writes a pending row per matching rule in the transaction that stores the detection
(`Notifier.rules_for` is its `notify_rules`; basestation/notify/pending.py holds the table's
statements). The listener's thread only does that and wakes the workers after its commit (no network
I/O, no waiting): a dead webhook or SMTP server never slows storing, and what is pending when
`nv-base listen` stops, or while a channel is down, is sent when it is back, after a restart too.

Each rule has its own worker thread with its own database connection, so one rule's dead endpoint
does not hold up another's. A worker sends at most `max_per_hour` notifications per rule (counted in
the table, so the limit holds across restarts; held-back ones are marked suppressed and reported in
the next one), retries a failed send after 1, 2, 4 … 60 s (±20 %) up to `retries` times, then marks
it failed with the error (`nv-base notifications` shows them; `--retry` sends them again).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from basestation.baseconfig import BaseConfig, Rule
from basestation.notify import channels, pending, rules
from basestation.store import Store
from edge.delivery.connection import BrokerSettings

log = logging.getLogger("nv.base.notify")

HOUR_S = 3600.0
IDLE_S = 5.0  # a worker looks at its table this often when nothing wakes it (rows queued by other processes)
RECONNECT_S = 5.0  # after the database failed
PRUNE_S = HOUR_S  # how often a worker forgets its old sent rows (pending.prune)


@dataclass
class Counts:
    """What this process did (the table holds the whole story)."""

    sent: int = 0
    suppressed: int = 0  # held back by the rate limit
    failed: int = 0  # given up
    retries: int = 0


@dataclass
class RuleWorker:
    rule: Rule
    send: Callable[[dict], None]
    connect: Callable[[], Store]
    public_url: str | None = None
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    clock: Callable[[], float] = time.time
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self):
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.pruned = float("-inf")
        self.thread = threading.Thread(target=self._run, name=f"notify-{self.rule.name}", daemon=True)

    def _run(self) -> None:
        store = None
        while not self.stop.is_set():
            try:
                if store is None:
                    store = self.connect()
                if not self._one(store):
                    self._idle(store)
            except Exception:
                log.exception("rule %s: notifications stalled; trying again in %.0f s", self.rule.name, RECONNECT_S)
                if store is not None:
                    _close(store)
                    store = None
                self.stop.wait(RECONNECT_S)
        if store is not None:
            _close(store)

    def _idle(self, store: Store) -> None:
        if self.clock() >= self.pruned + PRUNE_S:
            pending.prune(store, self.rule.name, self.clock())
            self.pruned = self.clock()
        due = pending.next_due(store, self.rule.name)
        wait = IDLE_S if due is None else min(IDLE_S, max(0.05, due - self.clock()))
        self.wake.wait(wait)
        self.wake.clear()

    def _one(self, store: Store) -> bool:
        """Send the rule's next due notification; False when none is due."""
        name = self.rule.name
        now = self.clock()
        claimed = pending.claim(store, name, now, self.rule.timeout_s + pending.LEASE_S)
        if claimed is None:
            return False
        record_id, attempts = claimed
        text = pending.record(store, record_id)
        if text is None:
            pending.finish(store, name, record_id, "failed", now, error="the detection is no longer stored")
            return True
        record = json.loads(text)
        if pending.sent_since(store, name, now - HOUR_S) >= self.rule.max_per_hour:
            pending.finish(store, name, record_id, "suppressed", now)
            self.counts.suppressed += 1
            return True
        body = rules.message(self.rule, record, public_url=self.public_url, suppressed=pending.held_back(store, name))
        while True:
            attempts += 1
            try:
                self.send(body)
            except channels.GiveUp as exc:
                self._failed(store, record_id, attempts, str(exc))
                return True
            except channels.Retry as exc:
                if attempts > self.rule.retries:
                    self._failed(store, record_id, attempts, str(exc))
                    return True
                self.counts.retries += 1
                wait = min(self.backoff_min_s * 2 ** (attempts - 1), self.backoff_max_s) * random.uniform(0.8, 1.2)
                log.warning("rule %s: %s; trying again in %.0f s", name, exc, wait)
                retry_at = self.clock() + wait
                # Claimed till then, and a lease beyond: another worker leaves it to this one.
                pending.again(store, name, record_id, attempts, retry_at + self.rule.timeout_s + pending.LEASE_S, str(exc))
                if self.stop.wait(wait):
                    pending.again(store, name, record_id, attempts, retry_at, str(exc))  # let go: due after a restart
                    return True
            else:
                pending.finish(store, name, record_id, "sent", self.clock(), attempts=attempts)
                self.counts.sent += 1
                log.info("rule %s: notified %s about %s (%s %.3f at %s)", name, self.rule.channel,
                         record["id"], record["label"], record["score"], record["device"])
                return True

    def _failed(self, store: Store, record_id: str, attempts: int, why: str) -> None:
        pending.finish(store, self.rule.name, record_id, "failed", self.clock(), attempts=attempts, error=why)
        self.counts.failed += 1
        log.error("rule %s: gave up on %s after %d attempt(s): %s (nv-base notifications --retry sends it again)",
                  self.rule.name, record_id, attempts, why)


class Notifier:
    """Every rule of a config, each with its worker. `connect` opens the store (one connection per
    worker); give `rules_for` to the listener's store as its `notify_rules`, and call `wake` after
    each commit."""

    def __init__(self, config: BaseConfig, connect: Callable[[], Store], broker: BrokerSettings | None = None,
                 **worker_options):
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
            self.workers.append(RuleWorker(rule, send, connect, public_url=config.serve.public_url, **worker_options))

    def start(self) -> Notifier:
        for worker in self.workers:
            worker.thread.start()
        if self.workers:
            log.info("notifications: %s", ", ".join(f"{w.rule.name} ({w.rule.channel})" for w in self.workers))
        return self

    def rules_for(self, record: dict) -> list[str]:
        """The names of the rules that notify about `record` (no I/O: the store calls it while storing)."""
        return [w.rule.name for w in self.workers if rules.matches(w.rule, record)]

    def wake(self, records: list[dict]) -> None:
        """After a commit: the workers of the rules these records match look at their table now."""
        for worker in self.workers:
            if any(rules.matches(worker.rule, r) for r in records):
                worker.wake.set()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the workers; a send in progress may take up to its own timeout to notice (its row is
        sent again after the lease, pending.LEASE_S)."""
        for worker in self.workers:
            worker.stop.set()
            worker.wake.set()
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self.mqtt is not None:
            self.mqtt.close()


def _close(store: Store) -> None:
    try:
        store.close()
    except store.dialect.errors as exc:  # closing a connection that already failed
        log.debug("closing the notifications' database connection: %s", exc)
