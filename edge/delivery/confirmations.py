"""Confirmations on their way to the outbox: gathered as PUBACKs and receipts arrive, written in
one transaction every `every_s` seconds (or `max_pending` of them), so that a stream of
thousands of acknowledgements costs a handful of fsyncs. A confirmation lost in a crash before
its commit only means that record is sent again: the base station ignores repeats."""

from __future__ import annotations

import time

from edge.delivery.outbox import Outbox


class Confirmations:
    def __init__(self, outbox: Outbox, confirm: str, *, every_s: float = 0.2, max_pending: int = 1000):
        self.outbox = outbox
        self.confirm = confirm  # "receipt": a PUBACK only marks the row; "puback": it deletes it
        self.every_s = every_s
        self.max_pending = max_pending
        self.settled: set[int] = set()  # seqs PUBACKed since the last commit: not to be sent again
        self.taken: list[int] = []
        self.delivered: list[int] = []
        self.receipted: list[str] = []
        self.receipted_thumbnails: list[str] = []
        self.since = 0.0
        self.deleted = 0  # rows deleted as delivered, since start

    def __len__(self) -> int:
        return len(self.taken) + len(self.delivered) + len(self.receipted) + len(self.receipted_thumbnails)

    def by_broker(self, seq: int) -> None:
        self.settled.add(seq)
        (self.delivered if self.confirm == "puback" else self.taken).append(seq)
        self._started()

    def by_receipt(self, detections: list[str], thumbnails: list[str]) -> None:
        if self.confirm == "receipt":  # with puback, the rows are gone already
            self.receipted.extend(detections)
            self.receipted_thumbnails.extend(thumbnails)
            self._started()

    def due(self, now: float) -> bool:
        return bool(self) and (len(self) >= self.max_pending or now - self.since >= self.every_s)

    def commit(self) -> bool:
        """Write them all; True when there was anything to write."""
        if not self:
            return False
        self.deleted += self.outbox.settle(taken=self.taken, delivered=self.delivered, receipted=self.receipted,
                                           receipted_thumbnails=self.receipted_thumbnails)
        self.taken, self.delivered, self.receipted, self.receipted_thumbnails = [], [], [], []
        self.settled.clear()
        self.since = 0.0
        return True

    def _started(self) -> None:
        if not self.since:
            self.since = time.monotonic()
