"""The durable queue of notifications: the `notifications` table (migrations/m0010_notifications.py).

The store writes a pending row per matching rule in the transaction that stores the detection
(Store.notify_rules); a rule's worker claims the row that is due, sends, and marks it sent, failed
or suppressed. Every statement here is one short autocommitted statement: no transaction is held
open while a notification is on its way, so storing never waits for a webhook.

Claiming moves the row's `next_try` forward by a lease, in one UPDATE that only one worker can win:
several `nv-base listen` processes on one database send each notification once. A worker that dies
while sending leaves the row to be sent again when the lease ends (at least once, never lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from basestation.store import Store

LEASE_S = 30.0  # beyond the send's own timeout: how long a claimed row is left to its worker
KEEP_DAYS = 30  # sent and suppressed rows are kept this long (the rate limit needs the last hour)


def claim(store: Store, rule: str, now: float, lease_s: float) -> tuple[str, int] | None:
    """The rule's oldest due notification as (record id, attempts so far), now this worker's; None when
    nothing is due (or another worker won it: ask again)."""
    rows = store.query("SELECT record, attempts, next_try FROM notifications WHERE rule = ? AND state = 'pending' "
                       "AND next_try <= ? ORDER BY next_try, created LIMIT 1", (rule, now))
    if not rows:
        return None
    row = rows[0]
    won = store.execute("UPDATE notifications SET next_try = ? WHERE rule = ? AND record = ? AND state = 'pending' "
                        "AND next_try = ?", (now + lease_s, rule, row["record"], row["next_try"])).rowcount
    return (row["record"], row["attempts"]) if won == 1 else None


def next_due(store: Store, rule: str) -> float | None:
    return store.execute("SELECT min(next_try) FROM notifications WHERE rule = ? AND state = 'pending'",
                         (rule,)).fetchone()[0]


def record(store: Store, record_id: str) -> str | None:
    """The stored detection's JSON, or None."""
    row = store.execute("SELECT record FROM detections WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else row[0]


def finish(store: Store, rule: str, record_id: str, state: str, now: float, *, attempts: int | None = None,
           error: str | None = None) -> None:
    """Mark a claimed notification sent, failed or suppressed."""
    store.execute("UPDATE notifications SET state = ?, done = ?, attempts = coalesce(?, attempts), last_error = ? "
                  "WHERE rule = ? AND record = ?", (state, now, attempts, error, rule, record_id))


def again(store: Store, rule: str, record_id: str, attempts: int, next_try: float, error: str) -> None:
    """A failed attempt that is worth another: still pending, due at `next_try`."""
    store.execute("UPDATE notifications SET attempts = ?, next_try = ?, last_error = ? WHERE rule = ? AND record = ?",
                  (attempts, next_try, error, rule, record_id))


def sent_since(store: Store, rule: str, since: float) -> int:
    return store.execute("SELECT count(*) FROM notifications WHERE rule = ? AND state = 'sent' AND done > ?",
                         (rule, since)).fetchone()[0]


def held_back(store: Store, rule: str) -> int:
    """Notifications of the rule suppressed by its rate limit since it last sent one."""
    return store.execute(
        "SELECT count(*) FROM notifications WHERE rule = ? AND state = 'suppressed' AND done >= "
        "coalesce((SELECT max(done) FROM notifications WHERE rule = ? AND state = 'sent'), 0)", (rule, rule)).fetchone()[0]


def retry_failed(store: Store, rule: str | None, now: float) -> int:
    """Make failed notifications (of one rule, or all) pending again, from their first attempt."""
    where, args = ("AND rule = ?", (rule,)) if rule else ("", ())
    return store.execute(f"UPDATE notifications SET state = 'pending', attempts = 0, next_try = ?, done = NULL "
                         f"WHERE state = 'failed' {where}", (now, *args)).rowcount


def prune(store: Store, rule: str, now: float) -> int:
    """Forget the rule's sent and suppressed notifications older than KEEP_DAYS; failed ones stay."""
    return store.execute("DELETE FROM notifications WHERE rule = ? AND state IN ('sent', 'suppressed') AND done < ?",
                         (rule, now - KEEP_DAYS * 86400)).rowcount


@dataclass
class RuleState:
    rule: str
    pending: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    oldest_pending: float | None = None  # created, unix time
    next_try: float | None = None
    last_error: str | None = None  # of a pending notification being retried, else of the newest failed one
    failed_at: float | None = None  # when that failed one was given up (None: the error is a pending one's)


def summary(store: Store) -> list[RuleState]:
    """Per rule: how many notifications are pending, sent, failed, suppressed, and the last error."""
    found: dict[str, RuleState] = {}
    for row in store.query("SELECT rule, state, count(*) AS n, min(created) AS oldest, min(next_try) AS due "
                           "FROM notifications GROUP BY rule, state ORDER BY rule"):
        s = found.setdefault(row["rule"], RuleState(row["rule"]))
        setattr(s, row["state"], row["n"])
        if row["state"] == "pending":
            s.oldest_pending, s.next_try = row["oldest"], row["due"]
    for row in store.query("SELECT rule, state, last_error, done FROM notifications "
                           "WHERE last_error IS NOT NULL AND state IN ('pending', 'failed')"):
        s = found[row["rule"]]
        if row["state"] == "pending":
            s.last_error, s.failed_at = row["last_error"], None
        elif s.last_error is None or (s.failed_at is not None and row["done"] > s.failed_at):
            s.last_error, s.failed_at = row["last_error"], row["done"]
    return list(found.values())
