"""Several `nv-base listen` workers sharing one PostgreSQL through a shared subscription, while the
broker is SIGKILLed mid-stream and restarted from its persistence: every record stored exactly once."""

from __future__ import annotations

import psycopg
from broker import wait_for
from delivery import pki, site  # noqa: F401  (fixtures)
from detections import detections

from edge.delivery.outbox import Outbox


def stored(dsn: str) -> tuple[int, int]:
    """(rows, distinct ids) in the detections table; (0, 0) before the first worker made it."""
    with psycopg.connect(dsn) as con:
        if con.execute("SELECT to_regclass('detections')").fetchone()[0] is None:
            return (0, 0)
        return con.execute("SELECT count(*), count(DISTINCT id) FROM detections").fetchone()


def counters(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as con:
        return dict(con.execute("SELECT name, value FROM counters").fetchall())


def depth(path) -> int:
    with Outbox(path) as outbox:
        return outbox.depth()


def test_two_workers_on_one_postgresql_through_broker_kills_store_each_record_once(site, pg_databases, tmp_path):
    dsn = pg_databases.new()
    site.broker.start()
    workers = [site.listener(dsn, name=name, extra=("--group", "stations")) for name in ("worker-a", "worker-b")]
    for worker in workers:
        worker.wait_log("shared group stations")
    records = {unit: detections(unit, 3000, start=10_000 * i) for i, unit in enumerate(("unit-1", "unit-2"))}
    outboxes = {unit: tmp_path / f"outbox-{unit}.db" for unit in records}
    publishers = [site.publisher(outboxes[unit], unit) for unit in records]
    kills = []
    for k in range(3):  # 3 chunks of 1000 per unit, the broker killed while each is on its way
        for unit, path in outboxes.items():
            with Outbox(path, batch=500) as outbox:
                for record in records[unit][k * 1000:(k + 1) * 1000]:
                    outbox.put(record)
        wait_for(lambda: stored(dsn)[0] >= k * 2000 + 200, 90, f"chunk {k} to start arriving")
        site.broker.kill()
        kills.append((k + 1) * 2000 - stored(dsn)[0])
        site.broker.start()
    assert all(n > 0 for n in kills), kills  # every kill hit mid-stream
    wait_for(lambda: stored(dsn)[0] >= 6000, 180, "all 6000 detections")
    every = {r["id"] for chunk in records.values() for r in chunk}
    assert stored(dsn) == (6000, 6000)
    with psycopg.connect(dsn) as con:
        assert {row[0] for row in con.execute("SELECT id FROM detections")} == every
    assert counters(dsn)["stored"] == 6000  # each inserted once, whatever was delivered twice
    for unit, path in outboxes.items():
        wait_for(lambda: depth(path) == 0, 90, f"receipts to empty {unit}'s outbox")
    for proc in workers + publishers:
        assert proc.popen.poll() is None, proc.text()[-3000:]  # every process rode out every restart
    for worker in workers:
        assert "Traceback" not in worker.text() and "cannot store" not in worker.text()
