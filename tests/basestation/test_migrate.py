"""Migrations: a database made before they existed upgrades in place; each one runs once, in one
transaction with the others, on SQLite and PostgreSQL; a new table is one new migration."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import store_v0
from detections import detection, detections

from basestation import migrate
from basestation.payloads import Accepted, DeadLetter
from basestation.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]
INDEXES = {"detections_received", "detections_time", "detections_device_time", "detections_label_time",
           "detections_alert_time", "detections_device_label_time", "detections_device_alert_time",
           "detections_label_alert_time"}


def old_database(path: Path) -> list[dict]:
    """A database as nv-base made it before migrations: every table holding something."""
    store = store_v0.Store(path)
    records = detections("unit-1", 30) + [detection("unit-2", 100, alert=True)]
    store.save([Accepted("detection", r["device"], r, r["id"]) for r in records]
               + [Accepted("thumbnail", "unit-2", b"\xff\xd8\xff old", records[-1]["id"]),
                  Accepted("status", "unit-1", {"schema": "1.0", "device": "unit-1", "state": "online",
                                                "time": "2026-05-01T10:00:00.000Z"})],
               [DeadLetter.of("naturevision/unit-1/detection", b"{nope", "json", "not JSON")])
    store.close()
    return records


def table_rows(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("detections", "thumbnails", "devices", "counters", "dead_letters")}


def test_a_database_made_before_migrations_upgrades_in_place_keeping_every_row(tmp_path):
    db = tmp_path / "base.db"
    records = old_database(db)
    before = table_rows(db)
    assert len(before["detections"]) == 31 and before["thumbnails"] and before["dead_letters"]

    store = Store(db)
    assert migrate.version(store.db, store.dialect) == migrate.latest()
    after, width = table_rows(db), len(before["detections"][0])
    assert {**after, "detections": [r[:width] for r in after["detections"]]} == before  # nothing lost, nothing changed
    assert {v for r in after["detections"] for v in r[width:]} == {None}  # points: no area bounds (migration 9)
    names = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert INDEXES <= names
    located = store.db.execute("SELECT count(*) FROM detections WHERE lat IS NOT NULL").fetchone()[0]
    assert store.db.execute("SELECT count(*) FROM detections_place").fetchone()[0] == located > 0  # the old rows are on the map
    again = store.save([Accepted("detection", "unit-1", records[0], records[0]["id"])])  # redelivered after the upgrade
    assert (again.stored, again.duplicates) == (0, 1)
    assert [r["id"] for r in store.events(device="unit-2", alert=True)] == [records[-1]["id"]]
    store.close()

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    listing = subprocess.run([sys.executable, "-m", "basestation.cli", "list", "--db", str(db)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert sum(r["id"] in listing.stdout for r in records) == 20  # --limit's default
    assert "stored 32, duplicates ignored 1, rejected 1" in listing.stdout  # 31 detections and a thumbnail


def test_each_migration_runs_once(database):
    store = Store(database)
    rows = store.db.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    assert [tuple(r) for r in rows] == [(m.version, m.name) for m in migrate.known()]
    store.save([Accepted("detection", "unit-1", r, r["id"]) for r in detections("unit-1", 5)])
    store.close()
    again = Store(database)
    assert migrate.migrate(again.db, again.dialect, again.name) == []
    assert again.count() == 5


def test_workers_starting_together_migrate_once(database):
    applied, errors = [], []

    def open_one():
        try:
            store = Store(database)
            applied.extend(store.migrated)
            store.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(applied) == list(range(1, migrate.latest() + 1))  # each by one of the four
    store = Store(database)
    assert sorted(v[0] for v in store.db.execute("SELECT version FROM schema_version").fetchall()) == sorted(applied)


def one_more(monkeypatch, module) -> int:
    """Pretend the package has one more migration: what another branch adds for its own table."""
    number = migrate.latest() + 1
    extra = migrate.Migration(number, "sightings", module)
    monkeypatch.setattr(migrate, "known", lambda: (*KNOWN, extra))
    return number


KNOWN = migrate.known()


def test_a_new_table_is_one_new_migration(database, monkeypatch):
    Store(database).close()  # at today's newest version, as in the field
    number = one_more(monkeypatch, SimpleNamespace(SQL="""
        CREATE TABLE sightings (
            detection  TEXT NOT NULL REFERENCES detections (id),
            verdict    TEXT NOT NULL,
            at         DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sightings_detection ON sightings (detection);
    """))
    store = Store(database)
    assert migrate.version(store.db, store.dialect) == number
    assert "verdict" in store.dialect.columns(store.db, "sightings")


def test_a_failing_migration_changes_nothing_and_says_which(database, monkeypatch):
    Store(database).close()
    number = one_more(monkeypatch, SimpleNamespace(SQL="CREATE TABLE half (x INTEGER);\nCREATE TABLE broken (;"))
    with pytest.raises(StoreError, match=f"migration {number} \\(sightings\\) failed, so none was applied"):
        Store(database)
    monkeypatch.setattr(migrate, "known", lambda: KNOWN)
    store = Store(database)
    assert migrate.version(store.db, store.dialect) == migrate.latest()
    assert store.dialect.columns(store.db, "half") == set()  # rolled back with the failing statement


def test_a_database_from_a_newer_nv_base_is_refused(database):
    store = Store(database)
    store.db.execute(store.dialect.sql("INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)"),
                     (migrate.latest() + 5, "future", 0.0))
    store.close()
    with pytest.raises(StoreError, match=f"schema version {migrate.latest() + 5}, made by a newer nv-base"):
        Store(database)


def test_migration_numbers_run_without_gaps():
    assert [m.version for m in migrate.known()] == list(range(1, migrate.latest() + 1))
