"""The source ledger on its own: stable ids across reopening, done is done, bounded growth."""

from __future__ import annotations

import sqlite3

import pytest

from edge.sources.ledger import FileKey, Ledger, LedgerError


def key(path="a.jpg", size=10, mtime_ns=1_000, source="card"):
    return FileKey(source, path, size, mtime_ns)


def test_a_claim_keeps_its_id_across_reopening_until_done(tmp_path):
    with Ledger.in_state_dir(tmp_path) as ledger:
        first = ledger.claim(key())
        assert ledger.claim(key()) == first
        assert not ledger.is_done(key())
    with Ledger.in_state_dir(tmp_path) as ledger:  # a restart after a crash before mark_done
        assert ledger.claim(key()) == first
        ledger.mark_done(key(), "ok")
    with Ledger.in_state_dir(tmp_path) as ledger:
        assert ledger.is_done(key()) and ledger.outcome(key()) == "ok"
        assert ledger.claim(key()) == first


def test_a_replaced_file_is_a_new_item_with_a_new_id(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        old = ledger.claim(key())
        ledger.mark_done(key(), "ok")
        for other in (key(size=11), key(mtime_ns=2_000), key(source="other")):
            assert not ledger.is_done(other)
            assert ledger.claim(other) != old


def test_file_is_wal_and_every_commit_is_synced(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.claim(key())
        assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(tmp_path / "l.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_forgets_old_rows_but_never_a_file_still_in_the_folder(tmp_path):
    now = [1000.0]
    with Ledger(tmp_path / "l.db", clock=lambda: now[0]) as ledger:
        for name in ("gone.jpg", "kept.jpg", "claimed-only.jpg"):
            ledger.claim(key(name))
        ledger.mark_done(key("gone.jpg"), "ok")
        ledger.mark_done(key("kept.jpg"), "ok")
        ledger.claim(key("other-source.jpg", source="cam"))
        now[0] = 5000.0
        ledger.claim(key("new.jpg"))
        ledger.mark_done(key("new.jpg"), "ok")
        dropped = ledger.forget_older_than(2000.0, source="card", keep=[key("kept.jpg")])
        assert dropped == 2  # gone.jpg, claimed-only.jpg
        assert ledger.is_done(key("kept.jpg")) and ledger.is_done(key("new.jpg"))
        assert not ledger.is_done(key("gone.jpg"))
        assert ledger.count("cam") == 1 and ledger.count() == 3


def test_an_unusable_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "sources.db").mkdir()
    with pytest.raises(LedgerError, match=r"sources\.db: cannot open the source ledger.*state_dir"):
        Ledger.in_state_dir(tmp_path)
