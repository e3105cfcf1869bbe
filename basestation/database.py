"""Where the base station's database is, and opening it. `--db` takes either

- a file path: SQLite, embedded, the default (one listener, or a few on one machine), or
- a PostgreSQL URI, `postgresql://USER@HOST:PORT/DBNAME`: several `nv-base listen` workers, on any
  machines, writing to one database.

A password need never be on a command line: `--db-password-file FILE`, or libpq's own `PGPASSWORD`
and `~/.pgpass`, or the whole URI in `$NV_BASE_DB` (a systemd `EnvironmentFile=`). Every message names
the server by its URI without the password.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from basestation.dialects import PostgreSQL, SQLite

SCHEMES = ("postgresql://", "postgres://")


class StoreError(Exception):
    """The database cannot be used; the message names it (a file, or a URI without its password) and what to check."""


def is_dsn(where: str | Path) -> bool:
    return str(where).startswith(SCHEMES)


def shown(where: str | Path) -> str:
    """`where` fit for a log line: a URI loses its password (in the user part or as ?password=)."""
    text = str(where)
    if not is_dsn(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the database password file: {exc.strerror}") from None


def connect(where: str | Path, password: str | None = None) -> tuple[object, SQLite | PostgreSQL]:
    """An open connection in autocommit mode (the store says BEGIN and COMMIT itself) and its dialect."""
    if is_dsn(where):
        return _postgresql(str(where), password), PostgreSQL()
    path = Path(where)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except (OSError, sqlite3.DatabaseError) as exc:
        raise StoreError(f"{path}: cannot open the base-station database: {exc}") from None
    return db, SQLite()


def _postgresql(dsn: str, password: str | None):
    try:
        import psycopg
    except ImportError:
        raise StoreError(f"{shown(dsn)}: PostgreSQL needs psycopg: pip install 'naturevision[base]' "
                         "(or pip install 'psycopg[binary]')") from None
    extra = {"password": password} if password else {}
    try:
        db = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="nv-base", **extra)
        # psycopg prepares a statement run five times; PostgreSQL may then plan it once for any
        # parameters. The map's plan depends on the box (a unit's valley or the whole basin): a plan
        # made for one took 9 s for another. Plan each query for its own values (< 1 ms each).
        db.execute("SET plan_cache_mode = force_custom_plan")
        return db
    except psycopg.Error as exc:
        raise StoreError(f"{shown(dsn)}: cannot connect to PostgreSQL: {_scrub(str(exc), dsn, password)}; "
                         f"{_what_to_check(str(exc))}") from None


def _what_to_check(message: str) -> str:
    if re.search(r"password authentication failed|no password supplied|authentication failed|role .* does not exist",
                 message):
        return ("check the user name and its password (--db-password-file FILE, PGPASSWORD or ~/.pgpass) and "
                "the server's pg_hba.conf")
    if re.search(r"database .* does not exist", message):
        return "create the database (createdb -O USER DBNAME) or correct its name in --db"
    return ("check that PostgreSQL is running there and listens on that address and port "
            "(pg_isready -h HOST -p PORT; listen_addresses in postgresql.conf) and that this machine may reach it")


def _scrub(message: str, dsn: str, password: str | None) -> str:
    """One line, and never a password (libpq does not echo it, but an odd URI might)."""
    secrets = [p for p in (password, urlsplit(dsn).password, dict(parse_qsl(urlsplit(dsn).query)).get("password")) if p]
    for secret in secrets:
        message = message.replace(secret, "***")
    return " ".join(message.replace("connection failed: ", "", 1).split())
