"""The outbox on its own: durable, ordered, group-committed, bounded, and it survives SIGKILL."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from broker import wait_for
from detections import detection, detections

from edge.delivery.outbox import DETECTION, Outbox, OutboxError, OutboxLimits

ROOT = Path(__file__).resolve().parents[3]


def stored_ids(path: Path) -> list[str]:
    """What another process sees on disk, oldest first."""
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM outbox WHERE leaf = ? ORDER BY seq", (DETECTION,))]


def test_records_come_back_oldest_first_after_reopening(tmp_path):
    records = detections("unit-1", 300)
    with Outbox(tmp_path / "o.db", batch=64) as outbox:
        for r in records:
            outbox.put(r)
    with Outbox(tmp_path / "o.db") as outbox:
        rows = outbox.due(after_seq=0, limit=1000, resend_after_s=None)
        assert [row.id for row in rows] == [r["id"] for r in records]
        assert json.loads(rows[7].payload) == records[7]  # stored exactly as made, no queued_s yet
        assert outbox.stats().depth == 300 and outbox.stats().unsent == 300


def test_wal_and_synchronous_full_are_in_force(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        assert outbox._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the WAL is synced per commit


def test_writes_are_group_committed(tmp_path):
    with Outbox(tmp_path / "o.db", batch=64, max_delay_s=60) as outbox:
        for r in detections("unit-1", 1000):
            outbox.put(r)
        assert outbox.commits == 1000 // 64  # one transaction (one WAL fsync) per 64 records, not per record
        assert len(stored_ids(tmp_path / "o.db")) == 1000 // 64 * 64  # the rest waits in memory...
        outbox.flush()
        assert outbox.commits == 1000 // 64 + 1
        assert len(stored_ids(tmp_path / "o.db")) == 1000  # ...until flush()


def test_a_lone_record_is_committed_by_the_timer(tmp_path):
    with Outbox(tmp_path / "o.db", batch=64, max_delay_s=0.2) as outbox:
        record = detection("unit-1", 1)
        outbox.put(record)
        wait_for(lambda: stored_ids(tmp_path / "o.db") == [record["id"]], 10, "the timer's commit")


def test_survives_sigkill_with_everything_it_committed(tmp_path):
    """A writer process is SIGKILLed while it writes; every record it had flushed is there after."""
    path = tmp_path / "o.db"
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        from detections import detection
        from edge.delivery.outbox import Outbox
        outbox = Outbox({str(path)!r}, batch=50, max_delay_s=60)
        n = 0
        while True:
            outbox.put(detection("unit-1", n)); n += 1
            if n % 500 == 0:
                outbox.flush()
                print(n, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    flushed = [int(proc.stdout.readline()) for _ in range(6)]  # it keeps writing after the 6th flush
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Outbox(path) as outbox:
        rows = outbox.due(after_seq=0, limit=10**6, resend_after_s=None)
    assert len(rows) >= flushed[-1]
    assert [json.loads(r.payload)["source"] for r in rows[: flushed[-1]]] == [
        f"card/frame_{n:06d}.jpg" for n in range(flushed[-1])
    ]


def test_bounded_by_count_alerts_outlive_routine_and_thumbnails_go_first(tmp_path):
    limits = OutboxLimits(max_records=100)
    with Outbox(tmp_path / "o.db", batch=1, limits=limits) as outbox:
        alerts = [detection("unit-1", n, alert=True) for n in range(30)]
        for r in alerts[:10]:
            outbox.put(r, thumbnail=b"\xff\xd8\xff" + b"j" * 100)  # 20 rows
        routine = [detection("unit-1", 100 + n, alert=False) for n in range(90)]
        for r in routine:
            outbox.put(r)  # 110 rows: the 10 thumbnails go
        stats = outbox.stats()
        assert stats.depth == 100 and stats.evicted == {"thumbnail": 10, "routine": 0, "alert": 0}
        for r in alerts[10:]:
            outbox.put(r)  # 20 more alerts: the 20 oldest routine records go, no alert
        stats = outbox.stats()
        assert stats.depth == 100 and stats.evicted == {"thumbnail": 10, "routine": 20, "alert": 0}
        kept = set(stored_ids(tmp_path / "o.db"))
        assert {r["id"] for r in alerts} <= kept
        assert kept & {r["id"] for r in routine} == {r["id"] for r in routine[20:]}
        for n in range(80):
            outbox.put(detection("unit-1", 1000 + n, alert=True))  # only alerts are left to evict
        assert outbox.stats().evicted == {"thumbnail": 10, "routine": 90, "alert": 10}
        kept = set(stored_ids(tmp_path / "o.db"))
        assert not kept & {r["id"] for r in alerts[:10]}  # the oldest alerts went last of all
        assert {r["id"] for r in alerts[10:]} <= kept


def test_bounded_by_bytes(tmp_path):
    one = len(json.dumps(detection("unit-1", 1, alert=False), separators=(",", ":")))
    with Outbox(tmp_path / "o.db", batch=1, limits=OutboxLimits(max_bytes=one * 20)) as outbox:
        for n in range(50):
            outbox.put(detection("unit-1", n + 1, alert=False))
        stats = outbox.stats()
    assert stats.bytes <= one * 20 + 50 and stats.depth >= 18
    assert stats.evicted["routine"] == 50 - stats.depth


def test_age_limits_keep_alerts_longer(tmp_path):
    now = [1_000_000.0]
    limits = OutboxLimits(routine_max_age_s=3600, alert_max_age_s=86400)
    with Outbox(tmp_path / "o.db", batch=1, limits=limits, clock=lambda: now[0]) as outbox:
        old_alert, old_routine = detection("unit-1", 1, alert=True), detection("unit-1", 2, alert=False)
        outbox.put(old_alert)
        outbox.put(old_routine)
        now[0] += 2 * 3600  # two hours later
        fresh = detection("unit-1", 3, alert=False)
        outbox.put(fresh)
        assert stored_ids(tmp_path / "o.db") == [old_alert["id"], fresh["id"]]
        now[0] += 86400
        outbox.put(detection("unit-1", 4, alert=False))
        assert old_alert["id"] not in stored_ids(tmp_path / "o.db")
        assert outbox.stats().evicted == {"thumbnail": 0, "routine": 2, "alert": 1}


def test_unconfirmed_rows_are_resent_later_and_later(tmp_path):
    now = [1_000_000.0]
    with Outbox(tmp_path / "o.db", batch=1, clock=lambda: now[0]) as outbox:
        outbox.put(detection("unit-1", 1))
        (row,) = outbox.due(after_seq=0, limit=10, resend_after_s=60)
        outbox.mark_sent([row.seq])  # the broker took it: wait for a receipt
        assert outbox.due(after_seq=0, limit=10, resend_after_s=60) == []
        assert outbox.due(after_seq=0, limit=10, resend_after_s=None) == []
        now[0] += 61
        assert [r.seq for r in outbox.due(after_seq=0, limit=10, resend_after_s=60)] == [row.seq]
        outbox.mark_sent([row.seq])  # taken again, still no receipt: the next wait is twice as long
        now[0] += 61
        assert outbox.due(after_seq=0, limit=10, resend_after_s=60) == []
        now[0] += 60
        assert len(outbox.due(after_seq=0, limit=10, resend_after_s=60)) == 1
        outbox.mark_sent([row.seq])
        assert outbox.forget_sent() == 1  # the broker lost its state: due again at once
        assert len(outbox.due(after_seq=0, limit=10, resend_after_s=60)) == 1
        assert outbox.delete_confirmed([row.id], []) == 1
        assert outbox.stats().depth == 0


def test_thumbnail_rows_are_confirmed_separately(tmp_path):
    with Outbox(tmp_path / "o.db", batch=1) as outbox:
        record = detection("unit-1", 1, alert=True)
        outbox.put(record, thumbnail=b"\xff\xd8\xffjpeg")
        rows = outbox.due(after_seq=0, limit=10, resend_after_s=None)
        assert [r.leaf for r in rows] == ["detection", f"thumbnail/{record['id']}"]
        assert outbox.delete_confirmed([record["id"]], []) == 1
        assert [r.leaf for r in outbox.due(after_seq=0, limit=10, resend_after_s=None)] == [f"thumbnail/{record['id']}"]


def test_refuses_what_is_not_a_record(tmp_path):
    with Outbox(tmp_path / "o.db") as outbox:
        with pytest.raises(ValueError, match="'id'"):
            outbox.put({"label": "mining"})
        with pytest.raises(ValueError, match="queued_s"):
            outbox.put(dict(detection("unit-1", 1), queued_s=3.0))


def test_an_unusable_file_is_named(tmp_path):
    bad = tmp_path / "o.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=str(bad)):
        Outbox(bad)
