"""Who may use the web page (`nv-base serve`): accounts, their sessions, and failed logins.

Passwords are kept as scrypt hashes (hashlib.scrypt, RFC 7914; N=2^15, r=8, p=1: 32 MiB and about
0.1 s per check, so a stolen database costs an attacker that much per guess). A session is a random
token in an HttpOnly cookie; the database keeps only its SHA-256, so a copy of the database opens
no live session. Each session has its own CSRF token, which every state-changing request must send.

Roles, each allowed what the one before is, and more:
- `read-only`: the map, the events, their evidence, unit health, exports;
- `reviewer`: also marks events and detections confirmed / false alarm / unsure;
- `admin`: also sees the accounts (they are made on the command line: `nv-base user add`).

The tables are migration 4's (basestation/migrations/); the statements go through the store, which
speaks SQLite or PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from basestation.store import Store
from edge.ids import uuid7

ROLES = ("read-only", "reviewer", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10  # characters

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024

SESSION_S = 12 * 3600  # a session lasts a working day, then the page asks for the password again
# Failed logins: more than this many in the window, for one account name or from one address, and
# further attempts are refused (HTTP 429) until the oldest failure leaves the window.
FAILURE_WINDOW_S = 15 * 60
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20

class AccountError(Exception):
    """A request about accounts that cannot be done; the message says why."""


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    csrf: str
    expires: float

    def may(self, role: str) -> bool:
        """True when this session's role includes `role` (admin > reviewer > read-only)."""
        return ROLES.index(self.role) >= ROLES.index(role)


# -- passwords ------------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY_HASH = None  # checked against when the name is unknown, so both cases take as long


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- accounts -------------------------------------------------------------------------------------

def add_user(store: Store, name: str, role: str, password: str) -> None:
    if not NAME.match(name):
        raise AccountError(f"{name!r}: a user name is 1 to 64 letters, digits, '.', '_', '@' or '-', "
                           "starting with a letter or digit")
    if role not in ROLES:
        raise AccountError(f"{role!r}: the role is one of {', '.join(ROLES)}")
    _check_strength(password)
    if store.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
        raise AccountError(f"{name!r} exists already; `nv-base user passwd` changes a password, `user remove` removes it")
    store.execute("INSERT INTO users (name, role, password, created) VALUES (?, ?, ?, ?)",
               (name, role, hash_password(password), time.time()))


def set_password(store: Store, name: str, password: str) -> None:
    _check_strength(password)
    if store.execute("UPDATE users SET password = ? WHERE name = ?", (hash_password(password), name)).rowcount == 0:
        raise AccountError(f"{name!r}: no such user")
    store.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password ends every open session


def set_role(store: Store, name: str, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"{role!r}: the role is one of {', '.join(ROLES)}")
    if store.execute("UPDATE users SET role = ? WHERE name = ?", (role, name)).rowcount == 0:
        raise AccountError(f"{name!r}: no such user")


def remove_user(store: Store, name: str) -> None:
    if store.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
        raise AccountError(f"{name!r}: no such user")
    store.execute("DELETE FROM sessions WHERE name = ?", (name,))


def users(store: Store) -> list[tuple[str, str, float]]:
    """(name, role, created) of every account, by name."""
    return [tuple(row) for row in store.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()]


def _check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: {MIN_PASSWORD} characters at least")


# -- logging in -----------------------------------------------------------------------------------

def retry_after(store: Store, name: str, address: str, now: float | None = None) -> float:
    """Seconds until a login for `name` from `address` may be tried again; 0 when it may be now."""
    now = time.time() if now is None else now
    since = now - FAILURE_WINDOW_S
    waits = []
    for column, value, limit in (("name", name, MAX_FAILURES_PER_NAME), ("address", address, MAX_FAILURES_PER_ADDRESS)):
        times = [row[0] for row in store.execute(
            f"SELECT time FROM login_failures WHERE {column} = ? AND time > ? ORDER BY time DESC", (value, since))]
        if len(times) >= limit:
            waits.append(times[limit - 1] + FAILURE_WINDOW_S - now)  # when the limit-th newest leaves the window
    return max(waits, default=0.0)


def log_in(store: Store, name: str, password: str, address: str) -> tuple[str, Session] | None:
    """A new session's (token, Session) when the password is right, else None (and the failure is
    counted). The caller checks `retry_after` first."""
    row = store.execute("SELECT role, password FROM users WHERE name = ?", (name,)).fetchone()
    ok = check_password(password, row[1] if row else _dummy_hash()) and row is not None
    now = time.time()
    if not ok:
        store.execute("INSERT INTO login_failures (id, name, address, time) VALUES (?, ?, ?, ?)",
                   (uuid7(), name[:200], address, now))
        store.execute("DELETE FROM login_failures WHERE time < ?", (now - 2 * FAILURE_WINDOW_S,))
        return None
    store.execute("DELETE FROM login_failures WHERE name = ?", (name,))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    store.execute("DELETE FROM sessions WHERE expires < ?", (now,))
    store.execute("INSERT INTO sessions (token_hash, name, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
               (_token_hash(token), name, csrf, now, now + SESSION_S))
    return token, Session(name, row[0], csrf, now + SESSION_S)


def session(store: Store, token: str | None) -> Session | None:
    """The live session for a cookie's token, or None (unknown, expired, or its account is gone)."""
    if not token:
        return None
    row = store.execute("SELECT s.name, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.name "
                     "WHERE s.token_hash = ?", (_token_hash(token),)).fetchone()
    if row is None or row[3] < time.time():
        return None
    return Session(*row)


def log_out(store: Store, token: str | None) -> None:
    if token:
        store.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
