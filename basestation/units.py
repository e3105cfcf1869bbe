"""Provisioning: `nv-base unit add|revoke|list|crl`, composed from the broker's files
(basestation/mosquitto.py), the CA (basestation/certificates.py) and the unit's archive
(basestation/unit_archive.py), with a record of each unit in the base station's store.

Order matters. `add` writes the archive first and only then gives the broker the new password, so
a failure never leaves a unit the broker knows whose secrets nobody holds; `--force` re-issues
everything (password, certificate) and revokes the old certificate, so an archive that went astray is
worth nothing. `revoke` takes the password away, revokes the certificates and rewrites the CRL, then
reloads mosquitto, which refuses the unit from then on (and, on reload, drops it if it is connected).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from basestation import certificates, mosquitto
from basestation.database import is_dsn, read_password
from basestation.settings import Settings
from basestation.store import Store
from basestation.unit_archive import Secrets, write_archive

# As edge/config/sections.py DEVICE_ID: the unit's device id, MQTT user name and topic level.
UNIT_NAME = re.compile(r"[a-z0-9_-]{1,64}")


class UnitError(Exception):
    """The command cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class UnitRow:
    """One line of `nv-base unit list`."""

    name: str
    access: str  # active, revoked, or what is odd about it
    since: float | None  # when it was added or revoked
    cert_expires: str | None
    state: str | None  # online / offline / stopped, as the unit last said (status topic)
    last_seen: float | None  # unix time the base station last heard from or about it


def check_name(settings: Settings, name: str) -> None:
    if not UNIT_NAME.fullmatch(name):
        raise UnitError(f"{name!r} cannot be a unit name: use 1 to 64 lower-case letters, digits, '-' or '_' "
                        f"(it is the unit's device id, MQTT user name and topic level)")
    reserved = mosquitto.check_acl(settings.acl_file)
    if name in reserved:
        raise UnitError(f"{name!r} has rights of its own in {settings.acl_file} (a `user {name}` section): "
                        f"it cannot be a unit; choose another name")


def add(settings: Settings, name: str, *, force: bool, out_dir: Path) -> list[str]:
    """Provision `name`; returns what was done, line by line."""
    check_name(settings, name)
    store = _open(settings)
    try:
        row = _unit(store, name)
        known = name in mosquitto.users(settings.password_file) or (row is not None and row["access"] == "active")
        if known and not force:
            raise UnitError(f"unit {name} already exists; `nv-base unit add {name} --force` gives it a new password"
                            f"{' and certificate' if _client_certs(settings) else ''} (its old archive stops working), "
                            f"or `nv-base unit revoke {name}` takes its access away")
        password = secrets.token_urlsafe(24)
        tls = settings.tls
        issued = certificates.issue(tls, name) if _client_certs(settings) else None
        ca = tls.ca.read_bytes() if tls else None
        out = out_dir / f"{name}.tar.gz"
        members = write_archive(out, settings, name, Secrets(password, ca, issued and issued.cert, issued and issued.key))
        done = [f"wrote {out} (mode 600): " + ", ".join(f"{m} {mode:o}" for m, mode in members)]
        if issued is not None:
            done.append(f"issued certificate {issued.serial} for CN={name}, valid until {issued.not_after}")
            for serial in certificates.valid_serials(tls, name):
                if serial != issued.serial:
                    certificates.revoke(tls, serial)
                    done.append(f"revoked its previous certificate {serial}")
        mosquitto.set_password(settings.password_file, name, password)
        done.append(f"{'changed' if known else 'added'} the password of {name} in {settings.password_file}")
        if issued is not None:
            done.append(f"wrote the CRL {tls.crl} (next update {certificates.write_crl(tls)})")
        now = time.time()
        store.execute("INSERT INTO units (name, access, added, changed, serial, cert_expires) "
                      "VALUES (?, 'active', ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                      "access = 'active', added = excluded.added, changed = excluded.changed, "
                      "serial = excluded.serial, cert_expires = excluded.cert_expires",
                      (name, now, now, issued and issued.serial, issued and issued.not_after))
    finally:
        _close(store, settings.db)
    done.append(f"ACL: nothing to add, its pattern lines give {name} naturevision/{name}/ ({settings.acl_file})")
    done.append(mosquitto.reload(settings))
    return done


def revoke(settings: Settings, name: str) -> list[str]:
    """Take `name`'s access away; returns what was done. Raises UnitError for a unit never heard of."""
    store = _open(settings)
    try:
        row = _unit(store, name)
        in_passwd = name in mosquitto.users(settings.password_file)
        serials = certificates.valid_serials(settings.tls, name) if _client_certs(settings) else []
        if row is None and not in_passwd and not serials:
            raise UnitError(f"unknown unit {name!r}: not in {settings.password_file} and never added; "
                            f"`nv-base unit list` shows the units")
        if not in_passwd and not serials:
            return [f"unit {name} was already revoked ({_date(row['changed'])}): nothing to do"]
        done = []
        if in_passwd:
            mosquitto.remove_user(settings.password_file, name)
            done.append(f"removed {name} from {settings.password_file}")
        for serial in serials:
            certificates.revoke(settings.tls, serial)
            done.append(f"revoked certificate {serial}")
        if serials:
            done.append(f"wrote the CRL {settings.tls.crl} (next update {certificates.write_crl(settings.tls)})")
        now = time.time()
        store.execute("INSERT INTO units (name, access, added, changed) VALUES (?, 'revoked', ?, ?) "
                      "ON CONFLICT (name) DO UPDATE SET access = 'revoked', changed = excluded.changed",
                      (name, now, now))
    finally:
        _close(store, settings.db)
    done.append(mosquitto.reload(settings))
    return done


def write_crl(settings: Settings) -> list[str]:
    """Rewrite the CRL: before the broker's first start (mosquitto refuses to start without its
    crlfile) and before the CRL's next update (past it, mosquitto refuses every client)."""
    if not _client_certs(settings):
        raise UnitError(f"{settings.path}: no client certificates ([tls] client_certificates), so there is no CRL")
    done = [f"wrote the CRL {settings.tls.crl} (next update {certificates.write_crl(settings.tls)})"]
    return done + [mosquitto.reload(settings)]


def crl_next_update(settings: Settings) -> str | None:
    return certificates.crl_next_update(settings.tls) if _client_certs(settings) else None


def rows(settings: Settings) -> list[UnitRow]:
    """Every unit the base station knows of: added here, in the password file, or heard from."""
    reserved = mosquitto.check_acl(settings.acl_file)
    in_passwd = set(mosquitto.users(settings.password_file)) - reserved
    store = _open(settings)
    try:
        units = {r["name"]: r for r in _query(store, "SELECT * FROM units", ())}
        heard = {d["device"]: d for d in store.devices()}
    finally:
        _close(store, settings.db)
    found = []
    for name in sorted(set(units) | in_passwd | set(heard)):
        unit, device = units.get(name), heard.get(name)
        if unit is None:
            access = "in the password file, not added by nv-base" if name in in_passwd else "heard from, never added"
        elif unit["access"] == "active" and name not in in_passwd:
            access = "NOT in the password file: cannot log in"
        elif unit["access"] == "revoked" and name in in_passwd:
            access = "revoked, but STILL in the password file"
        else:
            access = unit["access"]
        found.append(UnitRow(name=name, access=access, since=unit["changed"] if unit else None,
                             cert_expires=unit["cert_expires"] if unit else None,
                             state=device["state"] if device else None, last_seen=device["last_seen"] if device else None))
    return found


def _client_certs(settings: Settings) -> bool:
    return settings.tls is not None and settings.tls.client_certificates


def _unit(store: Store, name: str):
    found = _query(store, "SELECT * FROM units WHERE name = ?", (name,))
    return found[0] if found else None


def _query(store: Store, sql: str, args: tuple) -> list:
    return store.query(sql, args)


def _open(settings: Settings) -> Store:
    """The store [store] db names: a SQLite file or a PostgreSQL URI (its `units` table is migration 7's)."""
    return Store(settings.db, password=read_password(settings.db_password_file))


def _close(store: Store, where: str | Path) -> None:
    """Close, and give SQLite files we (root) created back to the owner of their folder: the listener
    runs as naturevision and could not write a database, or its WAL, that root made."""
    store.close()
    if is_dsn(where):
        return
    db = Path(where)
    owner = db.parent.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = db.with_name(db.name + suffix)
        if path.exists() and path.stat().st_uid == 0:
            os.chown(path, owner.st_uid, owner.st_gid)


def _date(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))
