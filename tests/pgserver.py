"""A throwaway PostgreSQL for the tests and the bench: initdb into a temporary folder, a free
loopback port, its unix socket in that folder, password logins over TCP, stopped at the end.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (the Debian
package makes it) through `runuser`; the folder is made outside pytest's root-only temp tree so that
user can enter it. The binaries are looked for in $NV_PG_BIN, /usr/lib/postgresql/*/bin (Debian
keeps initdb off the PATH) and the PATH. `make test` installs postgresql when it is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from broker import free_port

SUPERUSER = "nvtest"


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    candidates = [os.environ.get("NV_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    which = shutil.which("initdb")
    candidates += [str(Path(which).parent)] if which else []
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


@dataclass
class PgServer:
    bin: Path
    extra_settings: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nv-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.run_as = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("PostgreSQL will not run as root and there is no `postgres` user: "
                                   "apt-get install postgresql makes one") from None
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.run_as = "postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}{log}")

    def start(self) -> "PgServer":
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(pwfile, self.run_as)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        pwfile.unlink()
        settings = {"listen_addresses": "127.0.0.1", "port": self.port, "unix_socket_directories": str(self.dir),
                    "max_connections": 50, **self.extra_settings}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def dsn(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        """A URI with the password in it (the tests' servers are throwaway; nv-base redacts it)."""
        return f"postgresql://{user}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run `sql` as the superuser, outside any transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(sql)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


# -- fixtures (tests/basestation/conftest.py imports them) ------------------------------------------

PLAIN_ROLE = "nv_plain"  # may not CREATE EXTENSION: its databases have no PostGIS, as on a server without it
POSTGIS_TEMPLATE = "nv_postgis"  # PostGIS already created (1 s saved per database); a test creates it itself
BACKENDS = ("sqlite", "postgresql", "postgresql-plain")


class Databases:
    """Fresh databases on one server: `new()` with PostGIS when the server has it, `new(plain=True)` without."""

    def __init__(self, server: PgServer):
        self.server = server
        self.plain_password = uuid.uuid4().hex
        server.admin(f"CREATE ROLE {PLAIN_ROLE} LOGIN PASSWORD '{self.plain_password}'")
        self.postgis = postgis_available(server)
        if self.postgis:
            server.admin(f"CREATE DATABASE {POSTGIS_TEMPLATE}")
            with _connect(server.dsn(POSTGIS_TEMPLATE)) as con:
                con.execute("CREATE EXTENSION postgis")
        self.made: list[str] = []

    def new(self, *, plain: bool = False, template: str | None = None) -> str:
        name = f"nv_{uuid.uuid4().hex[:12]}"
        if plain:
            self.server.admin(f"CREATE DATABASE {name} OWNER {PLAIN_ROLE} TEMPLATE template1")
            dsn = self.server.dsn(name, PLAIN_ROLE, self.plain_password)
        else:
            template = template or (POSTGIS_TEMPLATE if self.postgis else "template1")
            self.server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
            dsn = self.server.dsn(name)
        self.made.append(name)
        return dsn

    def drop(self, dsn: str) -> None:
        """Drop the database of `dsn`, closing what is still connected to it (a test's open Store)."""
        name = dsn.rsplit("/", 1)[1]
        self.server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.made.remove(name)

    def drop_all(self) -> None:
        for name in self.made:
            self.server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.made.clear()


def postgis_available(server: PgServer) -> bool:
    with _connect(server.dsn()) as con:
        return con.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone() is not None


def _connect(dsn: str):
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture(scope="session")
def pg_server():
    folder = server_binaries()
    if folder is None:
        pytest.skip("PostgreSQL tests need the server binaries (initdb, pg_ctl), not found in $NV_PG_BIN, "
                    "/usr/lib/postgresql/*/bin or the PATH: apt-get install postgresql (make test does)")
    server = PgServer(folder, {"fsync": "off"}).start()  # a throwaway server: durability is not under test
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_databases(pg_server):
    databases = Databases(pg_server)
    yield databases
    databases.drop_all()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    """A fresh, empty database as `--db` takes it: a SQLite file, a PostgreSQL URI (with PostGIS when
    the server has it), or a PostgreSQL URI of a database without PostGIS."""
    if request.param == "sqlite":
        yield str(tmp_path / "b.db")
        return
    databases = request.getfixturevalue("pg_databases")
    dsn = databases.new(plain=request.param == "postgresql-plain")
    yield dsn
    databases.drop(dsn)
