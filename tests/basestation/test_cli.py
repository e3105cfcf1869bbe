"""`nv-base list`, `dead-letters` and `export` as a person runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from broker import free_port
from detections import detection, event_phases

from basestation.payloads import Accepted, DeadLetter
from basestation.store import Store

ROOT = Path(__file__).resolve().parents[2]


def nv_base(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "basestation.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_list_shows_detections_and_units(database):
    store = Store(database)
    alert = dict(detection("unit-7", 10, alert=True), queued_s=5400.0)
    store.save([Accepted("detection", "unit-7", alert, alert["id"]),
                Accepted("status", "unit-7", {"schema": "1.0", "device": "unit-7", "state": "online", "time": "2026-05-01T10:00:00.000Z"}),
                Accepted("health", "unit-7", {"device": "unit-7", "time": "2026-05-01T10:00:01.000Z",
                                              "outbox": {"depth": 3, "oldest_age_s": 120.0},
                                              "disk_free_bytes": 12_300_000_000, "cpu_temp_c": 51.2,
                                              "clock": {"synchronized": False, "source": "adjtimex"}})],
               [DeadLetter.of("naturevision/unit-7/detection", b"{not json", "json", "not JSON")] * 2)
    proc = nv_base("list", "--db", database)
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith(alert["id"]))
    assert "mining" in line and "YES" in line and "5400" in line
    unit = next(l for l in proc.stdout.splitlines() if l.startswith("unit-7 "))
    assert "online" in unit and "12.3 GB" in unit and "NOT SYNC" in unit and "51.2" in unit
    assert "rejected 2" in proc.stdout


def test_list_shows_event_phases_with_their_span_and_peak(database):
    store = Store(database)
    start, update, end = event_phases("unit-7", minutes=42)
    store.save([Accepted("detection", "unit-7", r, r["id"]) for r in (start, update, end)])
    proc = nv_base("list", "--db", database)
    assert proc.returncode == 0, proc.stderr
    lines = {r["event"]["phase"]: next(l for l in proc.stdout.splitlines() if l.startswith(r["id"])) for r in (start, update, end)}
    assert "excavator" in lines["end"] and "0.900" in lines["end"] and "2026-05-01T16:00:00.000Z" in lines["end"]
    assert "event end 16:00:00Z–16:42:00Z (42 min), peak 0.900 at 16:00:00Z, 5040 windows" in lines["end"]
    assert "event start 16:00:00Z–… (1.5 s)" in lines["start"]
    assert "event update 16:00:00Z–… (10 min)" in lines["update"]


def test_export_writes_a_file_and_says_what_it_left_out(database, tmp_path):
    store = Store(database)
    records = [detection("unit-1", n) for n in range(1, 4)]  # the third has no location
    store.save([Accepted("detection", "unit-1", r, r["id"]) for r in records])
    proc = nv_base("export", "--db", database, "--format", "geojson", "--out", tmp_path / "d.geojson")
    assert proc.returncode == 0, proc.stderr
    assert "exported 2 detection(s); 1 without a location left out" in proc.stderr
    assert len(json.loads((tmp_path / "d.geojson").read_text())["features"]) == 2
    proc = nv_base("export", "--db", database, "--format", "csv")
    assert len(proc.stdout.splitlines()) == 4


def test_a_missing_database_is_named(tmp_path):
    proc = nv_base("list", "--db", tmp_path / "nowhere.db")
    assert proc.returncode == 1
    assert f"{tmp_path / 'nowhere.db'}: no such database; pass --db PATH" in proc.stderr


def test_dead_letters_shows_counts_by_cause_and_the_newest_with_their_first_bytes(database):
    store = Store(database)
    store.save([], [DeadLetter.of("naturevision/unit-1/detection", b"x" * 5_000_000, "size",
                                  "naturevision/unit-1/detection: 5,000,000 bytes, above the 1,048,576 allowed on detection")]
               + [DeadLetter.of("naturevision/unit-1/status", b"[" * 1000 + b"]" * 1000, "depth",
                                "naturevision/unit-1/status: arrays and objects nested deeper than 32 levels", retained=True)] * 2)
    proc = nv_base("dead-letters", "--db", database, "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dead letters: 3 message(s) refused in all; by cause: depth 2, size 1" in out
    assert out.count("naturevision/unit-1/status (retained)  2,000 bytes  depth") == 2
    assert "5,000,000 bytes  size" not in out  # --limit 2: only the newest two
    assert "start: b'[[[[[[" in out
    assert "mosquitto_pub -r -n -t naturevision/unit-1/status" in out
    assert "rejected 3 (nv-base dead-letters says why)" in nv_base("list", "--db", database).stdout


def test_a_postgresql_that_refuses_the_login_is_named_without_the_password(pg_databases, tmp_path):
    server = pg_databases.server
    name = pg_databases.new().rsplit("/", 1)[1]
    uri = f"postgresql://nvtest@127.0.0.1:{server.port}/{name}"
    (tmp_path / "db.pw").write_text("wrong-secret\n")
    proc = nv_base("list", "--db", uri, "--db-password-file", tmp_path / "db.pw")
    assert proc.returncode == 1
    assert f"nv-base: error: {uri}: cannot connect to PostgreSQL: " in proc.stderr
    assert 'password authentication failed for user "nvtest"' in proc.stderr
    assert "check the user name and its password (--db-password-file FILE, PGPASSWORD or ~/.pgpass)" in proc.stderr
    assert "wrong-secret" not in proc.stderr

    proc = nv_base("dead-letters", "--db", f"postgresql://nvtest:hunter2@127.0.0.1:{server.port}/{name}")
    assert proc.returncode == 1 and f"{uri}: cannot connect" in proc.stderr and "hunter2" not in proc.stderr

    (tmp_path / "db.pw").write_text(server.password + "\n")
    assert nv_base("list", "--db", uri, "--db-password-file", tmp_path / "db.pw").returncode == 0
    assert nv_base("list", env={"NV_BASE_DB": uri, "PGPASSWORD": server.password}).returncode == 0  # as systemd passes it


def test_a_postgresql_that_is_down_or_lacks_the_database_says_what_to_check(pg_databases):
    server = pg_databases.server
    nobody = free_port()
    proc = nv_base("listen", "--db", f"postgresql://nvtest:secret@127.0.0.1:{nobody}/naturevision",
                   "--host", "127.0.0.1", "--port", str(free_port()))
    assert proc.returncode == 1
    assert f"postgresql://nvtest@127.0.0.1:{nobody}/naturevision: cannot connect to PostgreSQL" in proc.stderr
    assert "Connection refused" in proc.stderr and "pg_isready -h HOST -p PORT" in proc.stderr
    assert "secret" not in proc.stderr
    proc = nv_base("export", "--format", "csv", "--db", server.dsn("no_such_db"))
    assert proc.returncode == 1 and 'database "no_such_db" does not exist' in proc.stderr
    assert "create the database (createdb -O USER DBNAME)" in proc.stderr and server.password not in proc.stderr
