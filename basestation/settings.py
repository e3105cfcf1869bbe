"""The base station's provisioning settings: one TOML file (`/etc/naturevision/base.toml`, example in
systemd/base.example.toml), read by `nv-base unit add|revoke|list|crl`.

One file rather than command-line options: the four commands run weeks apart, often by different
people, and must all name the same password file, ACL, CA and broker address. A unit provisioned into
a password file the broker does not read, or with a host name its certificate does not carry, fails
only in the field. So the paths are written once, beside mosquitto's own config, and checked on every
command. Every error names the file and the key: "<file>: [tls.ca_key]: problem; expected ...".
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basestation.baseconfig import WEB_SECTIONS
from basestation.database import is_dsn  # the same file's other sections, read by baseconfig

DEFAULT_PATH = Path(os.environ.get("NV_BASE_SETTINGS", "/etc/naturevision/base.toml"))
RELOADS = ("auto", "systemctl", "pid_file", "none")


class SettingsError(Exception):
    """The settings file cannot be used; the message names the file, the key and what to do."""


@dataclass(frozen=True)
class Tls:
    ca: Path  # the CA that signed the broker's certificate: every unit gets a copy to verify the broker
    client_certificates: bool  # the broker has `require_certificate true`: every unit gets its own
    ca_key: Path | None = None  # signs the units' certificates (client_certificates only)
    ca_dir: Path | None = None  # the CA's records: index of issued and revoked certificates, serials
    crl: Path | None = None  # mosquitto's `crlfile`: rewritten on every add and revoke
    days: int = 825  # lifetime of a unit's certificate
    crl_days: int = 365  # the CRL's validity: past its next update mosquitto refuses every client


@dataclass(frozen=True)
class Settings:
    path: Path
    host: str  # what units connect to: the name in the broker's certificate
    port: int
    password_file: Path  # mosquitto's password_file
    acl_file: Path  # mosquitto's acl_file
    reload: str  # how mosquitto is told to re-read them: auto | systemctl | pid_file | none
    pid_file: Path | None
    service: str  # the systemd unit reloaded with reload = "systemctl" (or "auto" under systemd)
    db: Path | str  # the store `nv-base listen` writes (a SQLite file or a PostgreSQL URI): units are
    # recorded there, `unit list` reads last heard
    tls: Tls | None = None
    template: Path | None = None  # a unit config without [device] and [mqtt]: the rest of every edge.toml
    db_password_file: Path | None = None  # PostgreSQL: the file holding the password of `db`


def load_settings(path: str | Path) -> Settings:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such settings file; copy systemd/base.example.toml there and edit it, "
                            f"or pass --settings PATH") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); run as root") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}; fix the syntax there") from None
    return _Reader(path).settings(data)


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.here = path.resolve().parent

    def fail(self, where: str, problem: str, expected: str) -> SettingsError:
        return SettingsError(f"{self.path}: [{where}]: {problem}; expected {expected}")

    def settings(self, data: dict) -> Settings:
        self.keys(data, "", required=("broker", "store"), optional=("tls", "units", *WEB_SECTIONS))
        b = self.keys(data["broker"], "broker", required=("host", "password_file", "acl_file"),
                      optional=("port", "reload", "pid_file", "service"))
        tls = self.tls(data["tls"]) if "tls" in data else None
        reload = self.get(b, "broker.reload", str, "auto")
        if reload not in RELOADS:
            raise self.fail("broker.reload", f"got {reload!r}", f"one of: {', '.join(RELOADS)}")
        pid_file = self.file(b, "broker.pid_file", must_exist=False) if "pid_file" in b else None
        if reload == "pid_file" and pid_file is None:
            raise self.fail("broker.pid_file", "missing (reload = \"pid_file\")", "the file holding mosquitto's pid")
        port = self.get(b, "broker.port", int, 8883 if tls else 1883)
        if not 1 <= port <= 65535:
            raise self.fail("broker.port", f"{port} is out of range", "a port from 1 to 65535")
        host = self.get(b, "broker.host", str)
        if any(c.isspace() or c in "\"'\\/" for c in host):
            raise self.fail("broker.host", f"got {host!r}", "a host name or address, as in the broker's certificate")
        s = self.keys(data["store"], "store", required=("db",), optional=("password_file",))
        db = self.get(s, "store.db", str)
        u = self.keys(data.get("units", {}), "units", optional=("template",))
        return Settings(
            path=self.path, host=host, port=port,
            password_file=self.file(b, "broker.password_file",
                                    hint="mosquitto's password_file, holding nv-base's entry already "
                                         "(mosquitto_passwd -c FILE nv-base)"),
            acl_file=self.file(b, "broker.acl_file", hint="mosquitto's acl_file (systemd/mosquitto/naturevision.acl)"),
            reload=reload, pid_file=pid_file, service=self.get(b, "broker.service", str, "mosquitto"),
            db=db if is_dsn(db) else self.file(s, "store.db", must_exist=False), tls=tls,
            db_password_file=self.file(s, "store.password_file", hint="a file holding the database password")
            if "password_file" in s else None,
            template=self.file(u, "units.template", hint="a unit config without [device] and [mqtt]")
            if "template" in u else None,
        )

    def tls(self, raw: Any) -> Tls:
        t = self.keys(raw, "tls", required=("ca",),
                      optional=("client_certificates", "ca_key", "ca_dir", "crl", "days", "crl_days"))
        ca = self.file(t, "tls.ca", hint="the CA certificate (PEM) that signed the broker's certificate")
        if not self.get(t, "tls.client_certificates", bool, True):
            return Tls(ca=ca, client_certificates=False)
        ca_key = self.file(t, "tls.ca_key", hint="the CA's private key (client_certificates = true signs with it)")
        if "crl" not in t:
            raise self.fail("tls.crl", "missing (client_certificates = true)",
                            "the path of mosquitto's crlfile, which revoke writes")
        days, crl_days = self.get(t, "tls.days", int, 825), self.get(t, "tls.crl_days", int, 365)
        for where, value in (("tls.days", days), ("tls.crl_days", crl_days)):
            if value < 1:
                raise self.fail(where, f"{value} is out of range", "a whole number of days >= 1")
        return Tls(ca=ca, client_certificates=True, ca_key=ca_key,
                   ca_dir=self.file(t, "tls.ca_dir", must_exist=False) if "ca_dir" in t else ca_key.parent / "units",
                   crl=self.file(t, "tls.crl", must_exist=False), days=days, crl_days=crl_days)

    # -- values

    def keys(self, raw: Any, where: str, *, required: tuple = (), optional: tuple = ()) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(where or "top level", f"got {type(raw).__name__}", f"a table [{where}]")
        for key in raw:
            if key not in (*required, *optional):
                raise self.fail(where or key, f"unknown key {key!r}", f"one of: {', '.join((*required, *optional))}")
        for key in required:
            if key not in raw:
                raise self.fail(f"{where}.{key}" if where else key, "missing", f"{key} in [{where or key}]")
        return raw

    def get(self, t: dict, where: str, kind: type, default: Any = None) -> Any:
        value = t.get(where.rsplit(".", 1)[-1], default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) or value == "":
            names = {str: "a non-empty string", int: "a whole number", bool: "true or false"}
            raise self.fail(where, f"got {value!r}", names[kind])
        return value

    def file(self, t: dict, where: str, *, must_exist: bool = True, hint: str = "") -> Path:
        path = Path(self.get(t, where, str)).expanduser()
        path = path if path.is_absolute() else self.here / path
        if must_exist and not path.is_file():
            raise self.fail(where, f"{path}: no such file", hint or "an existing file")
        return path
