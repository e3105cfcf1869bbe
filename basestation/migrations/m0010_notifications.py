"""10: notifications that are due or were sent (basestation/notify/pending.py). A row per rule and
detection, written in the transaction that stores the detection (Store.save), so that a notification
is never lost when `nv-base listen` stops, or while its webhook or SMTP server is down: the rule's
worker sends it from here, now or after the restart.

state: pending (to send at next_try), sent, failed (given up: the channel refused it, or the retries
ran out; `nv-base notifications --retry` makes it pending again), suppressed (held back by the rule's
rate limit; counted in its next notification). Sent and suppressed rows are deleted after
pending.KEEP_DAYS; failed ones stay until they are retried.
"""

SQLITE = """
CREATE TABLE notifications (
    rule       TEXT NOT NULL,        -- the rule's name in base.toml
    record     TEXT NOT NULL,        -- the detection's id
    state      TEXT NOT NULL,        -- pending, sent, failed, suppressed
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_try   REAL NOT NULL,        -- unix time: pending rows are sent from then on
    last_error TEXT,
    created    REAL NOT NULL,
    done       REAL,                 -- when it was sent, given up or held back
    PRIMARY KEY (rule, record)
);
CREATE INDEX notifications_due ON notifications (rule, next_try) WHERE state = 'pending';
CREATE INDEX notifications_done ON notifications (rule, state, done);
"""

POSTGRESQL = """
CREATE TABLE notifications (
    rule       TEXT COLLATE "C" NOT NULL,
    record     TEXT COLLATE "C" NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_try   DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    created    DOUBLE PRECISION NOT NULL,
    done       DOUBLE PRECISION,
    PRIMARY KEY (rule, record)
);
CREATE INDEX notifications_due ON notifications (rule, next_try) WHERE state = 'pending';
CREATE INDEX notifications_done ON notifications (rule, state, done);
"""
