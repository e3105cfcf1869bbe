"""Base-station store benchmark: the event list and the map over a million stored detections, on
SQLite and on PostgreSQL (with PostGIS when the server has it), through the store's own API.

    .venv/bin/python bench/base_store.py [--rows 1000000] [--queries 300] [--backend sqlite|postgresql|postgresql-plain|both]

Each database is made at schema version 1 (the tables of the first migration), filled in bulk
(SQLite: executemany in transactions of 50,000 rows, synchronous=OFF; PostgreSQL: COPY), then opened by the Store,
which applies the remaining migrations (the indexes, the PostGIS point) over the full table, as an
old database upgrading in place would. Both get the same rows and the same queries (seeded):

- event list: newest first, 50 a page, filtered at random by unit, label, alert and a time window;
- map: detections with a location inside a box (0.05° to 20° a side, on the area of a random unit),
  newest first, 500 at most.

PostgreSQL is a throwaway server in a temporary folder (tests/pgserver.py) with its default
settings (shared_buffers 128 MB, fsync on). Latencies are wall-clock for the call, rows fetched
included, after a warm-up of 50 queries; the figures are printed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from basestation.database import connect  # noqa: E402
from basestation.migrate import migrate  # noqa: E402
from basestation.store import COLUMNS, Store  # noqa: E402

UNITS = 50
START = datetime(2025, 5, 1, tzinfo=timezone.utc)
DAYS = 365
IMAGE_LABELS = ("mining", "not_mining")
AUDIO_LABELS = ("engine", "drilling", "chainsaw", "background")
ALERT_LABELS = {"mining", "engine", "drilling", "chainsaw"}
BATCH = 50_000


def homes(seed: int = 14) -> list[tuple[str, float, float, bool]]:
    """(device, lat, lon, has GPS) per unit, scattered over the Amazon basin; one unit in ten has no GPS."""
    rng = random.Random(seed)
    return [(f"unit-{i:02d}", rng.uniform(-12, 4), rng.uniform(-72, -48), i % 10 != 0) for i in range(UNITS)]


def rows(count: int, seed: int = 14):
    """`count` detection rows in COLUMNS order, the same for every run with one seed. The random
    draws are made with numpy a chunk at a time and each record's JSON from a template: a row costs
    a few microseconds, so that a million load in seconds, not minutes."""
    rng = np.random.default_rng(seed)
    units = homes()
    home = np.array([(lat, lon) for _, lat, lon, _ in units])
    gps = [g for *_, g in units]
    start_ms = int(START.timestamp() * 1000)
    labels = {("image", False): ["not_mining"], ("image", True): ["mining"],
              ("audio", False): ["background"], ("audio", True): ["engine", "drilling", "chainsaw"]}
    model = '{"name":"mining-s2","version":"0.1.0","sha256":"' + "ab" * 32 + '"}'
    for first in range(0, count, BATCH):
        n = min(BATCH, count - first)
        unit = rng.integers(0, UNITS, n)
        millis = start_ms + rng.integers(0, DAYS * 86400 * 1000, n)
        when = np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms")
        rand = rng.integers(0, 2**62, (n, 2), dtype=np.int64)
        error, audio, alert = rng.random(n) < 0.005, rng.random(n) < 0.3, rng.random(n) < 0.1
        pick, score = rng.integers(0, 3, n), np.round(rng.random(n) * 0.49 + alert * 0.51, 4)
        where = np.round(home[unit] + rng.normal(0, 0.2, (n, 2)), 6)
        queued = np.round(rng.exponential(30, n), 1)
        columns = zip(unit.tolist(), millis.tolist(), when.tolist(), rand.tolist(), error.tolist(), audio.tolist(),
                      alert.tolist(), pick.tolist(), score.tolist(), where.tolist(), queued.tolist())
        for i, (u, ms, t, (r1, r2), err, aud, al, p, sc, (lat, lon), q) in enumerate(columns):
            device, t = units[u][0], t + "Z"
            h = f"{(ms << 80) | (0x7 << 76) | ((r1 & 0xFFF) << 64) | (0b10 << 62) | r2:032x}"
            rid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            kind = "audio" if aud else "image"
            source = "mic0" if aud else f"card/frame_{first + i:07d}.jpg"
            head = (f'{{"id":"{rid}","schema":"1.1","device":"{device}","time":"{t}","time_source":"exif",'
                    f'"kind":"{kind}","source":"{source}","model":{model}')
            if err:
                label = sc = al = None
                err = f"{source}: cannot be read"
                body = f',"error":"{err}"'
            else:
                err, choices, al = None, labels[kind, al], int(al)
                label = choices[p % len(choices)]
                body = f',"label":"{label}","score":{sc},"scores":{{"{label}":{sc}}},"alert":{"true" if al else "false"}'
            if gps[u]:
                body += f',"geo":{{"lat":{lat},"lon":{lon},"source":"exif"}}'
            else:
                lat = lon = None
            yield (rid, device, t, ms / 1000 + q, kind, source, label, sc, al, lat, lon, None, q, err,
                   f'{head}{body},"queued_s":{q}}}')


def event_queries(n: int, seed: int = 15) -> list[dict]:
    rng = random.Random(seed)
    queries = []
    for _ in range(n):
        q: dict = {"limit": 50}
        if rng.random() < 0.5:
            q["device"] = f"unit-{rng.randrange(UNITS):02d}"
        if rng.random() < 0.3:
            q["label"] = rng.choice(IMAGE_LABELS + AUDIO_LABELS)
        if rng.random() < 0.3:
            q["alert"] = rng.random() < 0.7
        if rng.random() < 0.4:
            first = START + timedelta(days=rng.uniform(0, DAYS))
            q["since"] = first.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            q["until"] = (first + timedelta(days=rng.choice((1, 7, 30)))).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        queries.append(q)
    return queries


def map_queries(n: int, seed: int = 16) -> list[tuple[float, float, float, float]]:
    rng = random.Random(seed)
    units = homes()
    boxes = []
    for _ in range(n):
        _, lat, lon, _ = rng.choice(units)
        half = rng.choice((0.025, 0.1, 0.5, 2.5, 10.0))  # a side of 0.05° (5 km) … 20° (the whole basin)
        lat, lon = lat + rng.uniform(-half, half), lon + rng.uniform(-half, half)
        boxes.append((lon - half, lat - half, lon + half, lat + half))
    return boxes


def load(where: str, count: int) -> tuple[float, float]:
    """Fill a new database at schema version 1; returns (seconds to load, seconds for the other migrations)."""
    db, dialect = connect(where)
    migrate(db, dialect, where, upto=1)
    start = time.perf_counter()
    generated = rows(count)
    if dialect.name == "sqlite":
        db.execute("PRAGMA synchronous=OFF")  # a bulk import: run again if it is cut short
        insert = f"INSERT INTO detections ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
        while chunk := [row for _, row in zip(range(BATCH), generated)]:
            db.execute("BEGIN")
            db.executemany(insert, chunk)
            db.execute("COMMIT")
    else:
        with db.cursor() as cur, cur.copy(f"COPY detections ({COLUMNS}) FROM STDIN") as copy:
            for row in generated:
                copy.write_row(row)
    loaded = time.perf_counter() - start
    db.close()
    start = time.perf_counter()
    Store(where).close()  # migrations 2, 3 …: the indexes (and the PostGIS point) over the full table
    return loaded, time.perf_counter() - start


def analyse(store: Store) -> None:
    """What a running base station gets from autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite)."""
    store.db.execute("ANALYZE")


def timed(call, params: list) -> list[float]:
    for p in params[:50]:  # warm-up: the OS cache and the server's buffers, as on a station that has been running
        call(p)
    times = []
    for p in params:
        start = time.perf_counter()
        call(p)
        times.append((time.perf_counter() - start) * 1000)
    return times


def figures(label: str, times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(round(0.99 * len(times))) - 1)]
    return (f"{label:<12} p50 {statistics.median(times):7.1f} ms   p99 {p99:7.1f} ms   max {times[-1]:7.1f} ms   "
            f"({len(times)} queries)")


def size_of(store: Store, where: str) -> int:
    if store.dialect.name == "sqlite":
        return sum(p.stat().st_size for p in Path(where).parent.glob(Path(where).name + "*"))
    return store.db.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def run(backend: str, where: str, args: argparse.Namespace) -> None:
    loaded, migrated = load(where, args.rows)
    store = Store(where)
    start = time.perf_counter()
    analyse(store)
    analysed = time.perf_counter() - start
    kind = backend + ((" + R*Tree" if backend == "sqlite" else " + PostGIS") if store.dialect.spatial else "")
    print(f"\n{kind}: {store.count():,} detections")
    print(f"load         {loaded:6.1f} s ({args.rows / loaded:,.0f} rows/s; "
          f"{'executemany, 50,000 a transaction' if backend == 'sqlite' else 'COPY'}), "
          f"indexes (migrations 2-3) {migrated:.1f} s, ANALYZE {analysed:.1f} s")
    print(f"size         {size_of(store, where) / 1e9:.2f} GB")
    events = timed(lambda q: store.events(**q), event_queries(args.queries))
    boxes = timed(lambda b: store.in_box(*b, limit=500), map_queries(args.queries))
    print(figures("event list", events))
    print(figures("map", boxes))
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="of each kind (default 300)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "postgresql-plain", "both"), default="both",
                        help="postgresql-plain: a user who may not enable PostGIS, so the map reads lat/lon")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nv-bench-store-"))
    try:
        if args.backend in ("sqlite", "both"):
            run("sqlite", str(work / "base.db"), args)
        if args.backend.startswith("postgresql") or args.backend == "both":
            from pgserver import PgServer, server_binaries

            folder = server_binaries()
            if folder is None:
                print("PostgreSQL skipped: no initdb/pg_ctl (apt-get install postgresql)")
                return 0
            server = PgServer(folder).start()
            try:
                if args.backend == "postgresql-plain":
                    server.admin("CREATE ROLE bench LOGIN PASSWORD 'bench'")
                    server.admin("CREATE DATABASE bench OWNER bench")
                    run("postgresql", server.dsn("bench", "bench", "bench"), args)
                else:
                    server.admin("CREATE DATABASE bench")
                    run("postgresql", server.dsn("bench"), args)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
