"""`nv-base notifications`: what the notification rules have sent, what is pending, what failed and why
(the `notifications` table, basestation/notify/pending.py).

    nv-base notifications --db DB                 per rule: pending, sent, failed, suppressed, the last error
    nv-base notifications --db DB --retry [RULE]  failed ones (of RULE, or all) pending again: the running
                                                  `nv-base listen --config` sends them within seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from basestation.listing import ago
from basestation.notify import pending
from basestation.store import Store


def add_arguments(sub, database_arguments) -> None:
    p = sub.add_parser("notifications", help="notifications pending, sent and failed per rule, with the last error")
    database_arguments(p)
    p.add_argument("--retry", nargs="?", const="", metavar="RULE",
                   help="make the failed notifications (of RULE, else of every rule) pending again")


def run(args: argparse.Namespace, store: Store) -> int:
    try:
        if args.retry is not None:
            n = pending.retry_failed(store, args.retry or None, time.time())
            print(f"nv-base notifications: {n} failed notification(s){f' of rule {args.retry}' if args.retry else ''} "
                  "pending again; nv-base listen --config sends them")
        write_summary(store, sys.stdout)
    finally:
        store.close()
    return 0


def write_summary(store: Store, out: TextIO) -> None:
    states = pending.summary(store)
    if not states:
        out.write("no notifications yet\n")
        return
    now = time.time()
    out.write(f"{'rule':<20} {'pending':>8} {'sent':>8} {'failed':>8} {'held back':>10}  oldest pending\n")
    for s in states:
        oldest = ago(now - s.oldest_pending) if s.oldest_pending is not None else "-"
        out.write(f"{s.rule:<20} {s.pending:>8} {s.sent:>8} {s.failed:>8} {s.suppressed:>10}  {oldest}\n")
        if s.pending and s.next_try is not None:
            out.write(f"    next try {'now' if s.next_try <= now else f'in {s.next_try - now:.0f} s'}\n")
        if s.last_error:
            when = f" (given up {ago(now - s.failed_at)})" if s.failed_at is not None else ""
            out.write(f"    last error{when}: {s.last_error}\n")
