"""Accounts: scrypt hashes, sessions that end, failed logins counted per name and address; `nv-base user`;
on a SQLite file and on a real PostgreSQL."""

from __future__ import annotations

import pytest
from test_cli import nv_base
from webfixtures import backend, store  # noqa: F401  (fixtures)

from basestation import accounts
from basestation.store import Store


@pytest.fixture
def db(store):
    return store


def test_a_session_ends_with_logout_a_new_password_or_the_account(db):
    accounts.add_user(db, "ana", "reviewer", "first-password")
    token, session = accounts.log_in(db, "ana", "first-password", "127.0.0.1")
    assert accounts.session(db, token) == session and session.may("read-only") and not session.may("admin")
    accounts.log_out(db, token)
    assert accounts.session(db, token) is None
    token, _ = accounts.log_in(db, "ana", "first-password", "127.0.0.1")
    accounts.set_password(db, "ana", "second-password")
    assert accounts.session(db, token) is None
    assert accounts.log_in(db, "ana", "first-password", "127.0.0.1") is None
    token, _ = accounts.log_in(db, "ana", "second-password", "127.0.0.1")
    accounts.remove_user(db, "ana")
    assert accounts.session(db, token) is None


def test_an_expired_session_is_refused(db):
    accounts.add_user(db, "ana", "read-only", "first-password")
    token, _ = accounts.log_in(db, "ana", "first-password", "127.0.0.1")
    db.execute("UPDATE sessions SET expires = 1")
    assert accounts.session(db, token) is None


def test_failures_are_limited_per_name_and_per_address(db):
    accounts.add_user(db, "ana", "read-only", "first-password")
    for i in range(accounts.MAX_FAILURES_PER_NAME):
        assert accounts.retry_after(db, "ana", "10.0.0.1") == 0
        accounts.log_in(db, "ana", "wrong", "10.0.0.1")
    failures = db.execute("SELECT name, address FROM login_failures").fetchall()
    assert [tuple(f) for f in failures] == [("ana", "10.0.0.1")] * accounts.MAX_FAILURES_PER_NAME  # each counted
    wait = accounts.retry_after(db, "ana", "10.0.0.1")
    assert 0 < wait <= accounts.FAILURE_WINDOW_S
    import time

    assert accounts.retry_after(db, "ana", "10.0.0.1", now=time.time() + accounts.FAILURE_WINDOW_S + 1) == 0
    for i in range(accounts.MAX_FAILURES_PER_ADDRESS):
        accounts.log_in(db, f"guess-{i}", "wrong", "10.0.0.2")
    assert accounts.retry_after(db, "someone-else", "10.0.0.2") > 0


@pytest.mark.parametrize("name, role, password, message", [
    ("ana", "root", "long-enough-1", "the role is one of"),
    ("../ana", "reviewer", "long-enough-1", "a user name is"),
    ("ana", "reviewer", "short", "too short"),
])
def test_bad_accounts_are_refused(db, name, role, password, message):
    with pytest.raises(accounts.AccountError, match=message):
        accounts.add_user(db, name, role, password)


def test_nv_base_user_commands(backend, tmp_path):
    db = backend
    (tmp_path / "pw").write_text("a-long-password\n")
    assert nv_base("user", "add", "ana", "--role", "reviewer", "--password-file", tmp_path / "pw", "--db", db).returncode == 0
    again = nv_base("user", "add", "ana", "--role", "reviewer", "--password-file", tmp_path / "pw", "--db", db)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert nv_base("user", "role", "ana", "admin", "--db", db).returncode == 0
    listed = nv_base("user", "list", "--db", db)
    assert listed.stdout.split() == ["ana", "admin"]
    con = Store(db)
    assert accounts.log_in(con, "ana", "a-long-password", "127.0.0.1") is not None  # the newline is not the password
    assert nv_base("user", "remove", "ana", "--db", db).returncode == 0
    assert accounts.users(con) == []
    con.close()
