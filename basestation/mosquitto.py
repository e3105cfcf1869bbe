"""mosquitto's side of provisioning: its password file, its ACL, and making it re-read both.

Passwords go through `mosquitto_passwd` (the hash format stays mosquitto's business), fed on its
standard input, never on a command line that `ps` would show.

The ACL needs no line per unit: systemd/mosquitto/naturevision.acl gives every user the unit's rights
with `pattern` lines, where mosquitto puts the connecting user's name for %u
(`pattern write naturevision/%u/detection`). A unit whose name is in the password file may therefore
write only under naturevision/<its name>/, and adding one changes nothing but the password file.
Per-unit `user` lines would only repeat the patterns, and a stale one left after a revoke would be
a right nobody meant to keep. What the ACL must have is checked instead (`check_acl`), and names it
gives rights of their own (`user nv-base`) are refused as unit names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from basestation.settings import Settings
from edge.delivery import topics

UNIT_PATTERNS = tuple(f"pattern write {topics.ROOT}/%u/{leaf}"
                      for leaf in (topics.DETECTION, topics.STATUS, topics.HEALTH, f"{topics.THUMBNAIL}/+")) + tuple(
    f"pattern read {topics.ROOT}/%u/{leaf}" for leaf in (topics.RECEIPT, topics.COMMAND))


class BrokerFilesError(Exception):
    """A broker file or command failed; the message names it and what to do."""


def check_acl(acl: Path) -> set[str]:
    """Checks that the ACL gives each unit its own topics by pattern; returns the users it names
    (`user X` lines), which hold rights of their own and so cannot be units."""
    lines = {" ".join(line.split()) for line in acl.read_text().splitlines() if not line.lstrip().startswith("#")}
    missing = [p for p in UNIT_PATTERNS if p not in lines]
    if missing:
        raise BrokerFilesError(f"{acl}: the ACL lacks {', '.join(repr(m) for m in missing)}: a unit would not be allowed "
                               f"its own topics; use the pattern lines of systemd/mosquitto/naturevision.acl")
    return {line.split(" ", 1)[1] for line in lines if line.startswith("user ")}


def users(password_file: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in password_file.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def set_password(password_file: Path, user: str, password: str) -> None:
    """Add the user, or replace its password."""
    _passwd([str(password_file), user], stdin=f"{password}\n{password}\n")


def remove_user(password_file: Path, user: str) -> None:
    _passwd(["-D", str(password_file), user])


def _passwd(args: list[str], stdin: str = "") -> None:
    if shutil.which("mosquitto_passwd") is None:
        raise BrokerFilesError("mosquitto_passwd is not installed: apt install mosquitto")
    proc = subprocess.run(["mosquitto_passwd", *args], input=stdin, capture_output=True, text=True, timeout=60)
    said = (proc.stdout + proc.stderr).replace("Password:", "").replace("Reenter password:", "").strip()
    if proc.returncode != 0 or "rror" in said:
        raise BrokerFilesError(f"mosquitto_passwd {' '.join(args)} failed: {said or proc.returncode}")


def reload(settings: Settings) -> str:
    """Tell mosquitto to re-read its password file, ACL and certificates (SIGHUP). Returns how it was
    done, for the operator's log."""
    how = settings.reload
    if how == "none":
        return f"not reloaded (reload = \"none\"): reload mosquitto yourself (systemctl reload {settings.service})"
    if how == "pid_file" or (how == "auto" and settings.pid_file is not None):
        return _signal_pid_file(settings.pid_file)
    if how == "auto" and not Path("/run/systemd/system").is_dir():
        raise BrokerFilesError(f"{settings.path}: [broker.reload]: systemd is not running here and no pid_file is "
                               f"set; set broker.pid_file (mosquitto's pid_file) or reload = \"none\"")
    if subprocess.run(["systemctl", "is-active", "--quiet", settings.service], timeout=60).returncode != 0:
        return f"{settings.service} is not running: mosquitto reads the new files when it starts"
    proc = subprocess.run(["systemctl", "reload", settings.service], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BrokerFilesError(f"systemctl reload {settings.service} failed: {proc.stderr.strip()}; the files are "
                               f"changed, but the broker goes on with the old ones until it is reloaded")
    return f"reloaded with systemctl reload {settings.service}"


def _signal_pid_file(pid_file: Path) -> str:
    not_running = f"mosquitto is not running (no live pid in {pid_file}): it reads the new files when it starts"
    try:
        pid = int(pid_file.read_text().split()[0])
    except FileNotFoundError:
        return not_running
    except (OSError, ValueError, IndexError) as exc:
        raise BrokerFilesError(f"{pid_file}: cannot read mosquitto's pid ({exc}); fix or remove the pid file, then "
                               f"reload mosquitto: the broker goes on with the old files until then") from None
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return not_running
    if name != "mosquitto":  # a stale pid file: the number may now belong to anything
        raise BrokerFilesError(f"{pid_file}: process {pid} is {name!r}, not mosquitto; the pid file is stale: "
                               f"reload mosquitto yourself, the broker goes on with the old files until then")
    os.kill(pid, signal.SIGHUP)
    return f"reloaded with SIGHUP to mosquitto (pid {pid})"
