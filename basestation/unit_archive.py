"""What a new unit takes away: one tar.gz holding its `edge.toml`, its secrets and a README that says
where each file goes.

The files sit at the top of the archive and the config names them relative to itself (edge/config
resolves relative paths against the config file's folder), so `tar -xzf unit-07.tar.gz -C
/etc/naturevision` as root puts everything in place, owned root:naturevision (the group is in the
archive; tar falls back to root's group where no `naturevision` exists), with the modes the service
needs: 0640 for what the service reads, 0600 for the README. The archive itself is written 0600: it
holds the unit's password and private key.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from basestation.settings import Settings

PASSWORD_FILE = "mqtt.password"
CA_FILE = "ca.crt"


class ArchiveError(Exception):
    """The archive cannot be made; the message says why."""


@dataclass(frozen=True)
class Secrets:
    password: str
    ca: bytes | None = None  # the CA that signed the broker's certificate (TLS)
    cert: bytes | None = None  # the unit's own certificate and key (client certificates)
    key: bytes | None = None


def edge_toml(settings: Settings, name: str, secrets: Secrets) -> str:
    """The unit's config: [device] and [mqtt] from the base station, the rest from the template."""
    lines = [f"# NatureVision unit {name}: written by nv-base unit add on {time.strftime('%Y-%m-%d')}.",
             "# Paths are relative to this file's folder (/etc/naturevision). Check it on the unit with",
             "#     sudo -u naturevision /opt/naturevision/bin/nv-edge config check /etc/naturevision/edge.toml",
             "", "[device]", f"id = {_quoted(name)}", "", "[mqtt]", f"host = {_quoted(settings.host)}",
             f"port = {settings.port}", f"password_file = {_quoted(PASSWORD_FILE)}   # the user name is device.id"]
    if secrets.ca is not None:
        lines += ["", "[mqtt.tls]", f"ca = {_quoted(CA_FILE)}"]
        if secrets.cert is not None:
            lines += [f"cert = {_quoted(name + '.crt')}", f"key = {_quoted(name + '.key')}"]
    rest = template_text(settings)
    if rest is None:
        lines += ["", "# No [image] or [audio] yet: this unit only sends what its outbox holds. Add the sections it",
                  "# runs from systemd/edge.example.toml (or set [units] template in the base station's settings)."]
    text = "\n".join(lines) + "\n" + (f"\n# -- from {settings.template}\n{rest}" if rest else "")
    tomllib.loads(text)  # what we wrote must read back: raises on a mistake of ours, before anything is changed
    return text


def template_text(settings: Settings) -> str | None:
    """The template's text, checked: TOML, tables only, and none of the tables nv-base writes."""
    if settings.template is None:
        return None
    text = settings.template.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ArchiveError(f"{settings.template}: not valid TOML: {exc}") from None
    for key, value in data.items():
        if key in ("device", "mqtt"):
            raise ArchiveError(f"{settings.template}: [{key}] is written by nv-base for each unit; remove it from the "
                               f"template (it holds the rest of a unit's config: [image], [audio], [outbox])")
        if not isinstance(value, (dict, list)):
            raise ArchiveError(f"{settings.template}: {key!r} is a key outside any table; a template holds tables only")
    return text if text.endswith("\n") else text + "\n"


def readme(name: str, secrets: Secrets) -> str:
    files = [("edge.toml", "the unit's config: device id, broker, and what it runs"),
             (PASSWORD_FILE, f"the MQTT password of user {name} (secret)")]
    if secrets.ca is not None:
        files.append((CA_FILE, "the CA that signed the broker's certificate (TLS)"))
    if secrets.cert is not None:
        files += [(f"{name}.crt", "this unit's client certificate"), (f"{name}.key", "its private key (secret)")]
    rows = "\n".join(f"  /etc/naturevision/{file:<18} {what}" for file, what in files)
    return f"""NatureVision unit {name}: config and secrets, from the base station (nv-base unit add).

Every file goes to /etc/naturevision/ on the unit, owned root:naturevision, mode 640:

{rows}

On the unit, as root (systemd/README.md, step 4):

  tar -xzf {name}.tar.gz -C /etc/naturevision --exclude README.txt
  chown root:naturevision /etc/naturevision/* && chmod 640 /etc/naturevision/*
  sudo -u naturevision /opt/naturevision/bin/nv-edge config check /etc/naturevision/edge.toml
  systemctl restart naturevision-edge

Then delete this archive wherever it was copied: it holds the unit's password{' and private key' if secrets.key else ''}.
"""


def write_archive(out: Path, settings: Settings, name: str, secrets: Secrets) -> list[tuple[str, int]]:
    """Write `out` (0600, replaced whole); returns (member, mode) for the log."""
    members = [("README.txt", 0o600, readme(name, secrets).encode()),
               ("edge.toml", 0o640, edge_toml(settings, name, secrets).encode()),
               (PASSWORD_FILE, 0o640, f"{secrets.password}\n".encode())]
    if secrets.ca is not None:
        members.append((CA_FILE, 0o640, secrets.ca))
    if secrets.cert is not None:
        members += [(f"{name}.crt", 0o640, secrets.cert), (f"{name}.key", 0o640, secrets.key)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            now = time.time()
            for member, mode, data in members:
                info = tarfile.TarInfo(member)
                info.size, info.mode, info.mtime = len(data), mode, now
                info.uid, info.gid, info.uname, info.gname = 0, 0, "root", "naturevision"
                tar.addfile(info, io.BytesIO(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return [(member, mode) for member, mode, _ in members]


def _quoted(text: str) -> str:
    """A TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
