"""The schema as numbered migrations (basestation/migrations/mNNNN_name.py), applied at start-up.

`schema_version` holds one row per migration applied. Opening a Store runs `migrate()`: in one
transaction (SQLite's write lock; on PostgreSQL an advisory lock, so that workers starting together
migrate once) it applies, in order, every migration the database lacks, and records each. If one
fails, all of them roll back and the database stays as it was.

A migration module holds one of:

    SQL = "..."                          the same statements for both databases
    SQLITE = "..." and POSTGRESQL = "..."  when they differ
    def apply(db, dialect): ...          when it must look before it acts (PostGIS)

Adding a table (or an index, or a column) is one new module numbered one past the newest. Never
edit one that has shipped: a database that has it already will not run it again.

Databases made before migrations existed hold the tables of migration 1 and no schema_version;
migration 1 creates its tables only if they are missing, so such a database upgrades in place.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from basestation import migrations as package
from basestation.database import StoreError

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version  INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    applied  DOUBLE PRECISION NOT NULL   -- unix time
)"""
NAME = re.compile(r"^m(\d{4})_([a-z0-9_]+)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType

    def apply(self, db, dialect) -> None:
        m = self.module
        if hasattr(m, "apply"):
            m.apply(db, dialect)
        elif hasattr(m, "SQL"):
            dialect.script(db, m.SQL)
        else:
            dialect.script(db, getattr(m, dialect.name.upper()))


@lru_cache(maxsize=1)
def known() -> tuple[Migration, ...]:
    """Every migration in the package, in order. Numbers must run 1, 2, 3 … without a gap or a repeat
    (two branches that both added migration 5 must renumber one before they merge)."""
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        match = NAME.match(info.name)
        if match is None:
            raise RuntimeError(f"basestation/migrations/{info.name}.py: name migrations mNNNN_what.py")
        found.append(Migration(int(match.group(1)), match.group(2),
                               importlib.import_module(f"{package.__name__}.{info.name}")))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"basestation/migrations: numbers must run 1, 2, 3 … without gaps or repeats, found {numbers}")
    for m in found:
        if not (hasattr(m.module, "apply") or hasattr(m.module, "SQL")
                or (hasattr(m.module, "SQLITE") and hasattr(m.module, "POSTGRESQL"))):
            raise RuntimeError(f"migration {m.version} ({m.name}): give SQL, SQLITE and POSTGRESQL, or apply()")
    return tuple(found)


def latest() -> int:
    return known()[-1].version


def migrate(db, dialect, name: str, *, upto: int | None = None) -> list[int]:
    """Bring the database `name` (for messages) up to `upto` (default: the newest migration).
    Returns the versions applied now; raises StoreError when the database is newer than this code."""
    target = latest() if upto is None else upto
    dialect.begin_migration(db)
    try:
        db.execute(VERSION_TABLE)
        have = {row[0] for row in db.execute("SELECT version FROM schema_version")}
        if have and max(have) > latest():
            raise StoreError(f"{name}: the database is at schema version {max(have)}, made by a newer nv-base; "
                             f"this one knows versions up to {latest()}: upgrade nv-base here too")
        applied = []
        for m in known():
            if m.version in have or m.version > target:
                continue
            try:
                m.apply(db, dialect)
            except dialect.errors as exc:
                raise StoreError(f"{name}: migration {m.version} ({m.name}) failed, so none was applied: "
                                 f"{' '.join(str(exc).split())}") from None
            db.execute(dialect.sql("INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)"),
                       (m.version, m.name, time.time()))
            applied.append(m.version)
        db.execute("COMMIT")
        return applied
    except BaseException:
        if dialect.in_transaction(db):
            db.execute("ROLLBACK")
        raise


def version(db, dialect) -> int:
    """The newest migration applied to the database; 0 for one made before migrations existed."""
    if "version" not in dialect.columns(db, "schema_version"):
        return 0
    return db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
