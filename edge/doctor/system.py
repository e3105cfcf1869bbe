"""System checks: free disk, the outbox (read only), and the clock."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from edge.config import EdgeConfig
from edge.delivery.health import clock_synchronised
from edge.delivery.outbox import Outbox
from edge.doctor.check import FAIL, OK, WARN, Check, fail, ok, skipped, warn

# Thresholds (systemd/README.md states them too).
DISK_FAIL_BYTES = 100 * 2**20  # below this the outbox soon cannot commit
DISK_WARN_BYTES = 2**30
DISK_WARN_FRACTION = 0.10
OUTBOX_OLD_S = 86400.0  # a record waiting longer means the link has been down for a day
CLOCK_MIN_YEAR = 2025  # earlier: the clock was never set (a Pi without RTC, no NTP, no GPS)
CLOCK_BACKWARDS_S = 86400.0  # the newest outbox record may be this far "in the future" before we call it

SET_CLOCK = ("Set it from the laptop's clock: sudo date -u -s 'YYYY-MM-DD HH:MM:SS' (the laptop's UTC time); "
             "for good, a GPS receiver with gpsd and chrony keeps it right without a network.")



# -- 6. disk and outbox ----------------------------------------------------------------------------------

def disk_status(free: int, total: int) -> str:
    if free < DISK_FAIL_BYTES:
        return FAIL
    if free < DISK_WARN_BYTES or (total and free / total < DISK_WARN_FRACTION):
        return WARN
    return OK


def check_disk(state_dir: Path) -> Check:
    where = Path(state_dir)
    while not where.exists() and where != where.parent:  # not created yet: measure the disk it will be on
        where = where.parent
    usage = shutil.disk_usage(where)
    found = (f"{state_dir}: {usage.free / 2**30:.1f} GB free of {usage.total / 2**30:.1f} GB "
             f"({100 * usage.free / max(1, usage.total):.0f} %)")
    if where != Path(state_dir):
        found += f" (the folder does not exist yet; measured at {where})"
    status = disk_status(usage.free, usage.total)
    if status == FAIL:
        return fail("disk", f"{found}: below {DISK_FAIL_BYTES // 2**20} MB the outbox cannot keep detections",
                    "Free space now: copy the watched folders' images off the card and delete them.")
    if status == WARN:
        return warn("disk", f"{found}: below 1 GB or 10 %",
                    "Free some space soon: old images in the watched folders, or the journal "
                    "(journalctl --vacuum-size=50M).")
    return ok("disk", found)


def check_outbox(cfg: EdgeConfig | None, now: float | None = None) -> Check:
    if cfg is None:
        return skipped("outbox")
    path = cfg.outbox.path
    if not path.exists():  # opening it would create it, and the doctor changes nothing
        return ok("outbox", f"{path}: not created yet (nothing queued so far)")
    with Outbox(path) as outbox:
        stats = outbox.stats()
    age = stats.oldest_age_s(now)
    evicted = sum(stats.evicted.values())
    found = (f"{path}: {stats.depth} record(s), {stats.unsent} not yet taken by the broker, "
             f"oldest {'-' if age is None else _duration(age)}, evicted {evicted}"
             + (f" ({', '.join(f'{n} {k}' for k, n in stats.evicted.items() if n)})" if evicted else ""))
    problems, fixes = [], []
    if evicted:
        problems.append("records were evicted to stay within the outbox's bounds: the base station never got them")
        fixes.append("raise [outbox] max_mb if the card has room")
    if age is not None and age > OUTBOX_OLD_S:
        problems.append("records have waited more than a day")
        fixes.append("get the link to the base station working (see the broker lines)")
    if problems:
        return warn("outbox", f"{found}: {'; '.join(problems)}", f"{' and '.join(reversed(fixes)).capitalize()}.")
    return ok("outbox", found)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- 7. clock --------------------------------------------------------------------------------------------

def check_clock(cfg: EdgeConfig | None, *, now: float | None = None, sync: dict | None = None) -> Check:
    """`now` and `sync` (edge.delivery.health.clock_synchronised's answer) default to this machine's."""
    now = time.time() if now is None else now
    sync = clock_synchronised() if sync is None else sync
    stamp = _iso(now)
    if datetime.fromtimestamp(now, timezone.utc).year < CLOCK_MIN_YEAR:
        return fail("clock", f"the clock says {stamp}: it was never set (a unit without a real-time clock "
                             f"starts from its last saved time)", SET_CLOCK)
    newest = newest_queued(cfg.outbox.path) if cfg is not None else None
    if newest is not None and newest - now > CLOCK_BACKWARDS_S:
        return fail("clock", f"the clock went backwards: it says {stamp}, but the newest outbox record was "
                             f"queued at {_iso(newest)}", SET_CLOCK)
    source = sync.get("source") or "no way to tell here"
    if sync.get("synchronized") is True:
        return ok("clock", f"{stamp}, synchronised ({source})")
    state = "not synchronised" if sync.get("synchronized") is False else "cannot tell whether it is synchronised"
    return warn("clock", f"{stamp}, {state} ({source}): records are marked clock_synchronized: false and their "
                         f"times are only as good as this clock; compare it with the laptop", SET_CLOCK)


def newest_queued(outbox: Path) -> float | None:
    """When the newest outbox record was queued; None when there is none. Read-only."""
    if not outbox.exists():
        return None
    try:
        with sqlite3.connect(f"{outbox.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT max(queued) FROM outbox").fetchone()[0]
    except sqlite3.Error:
        return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
