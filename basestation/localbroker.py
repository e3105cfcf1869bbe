"""A throwaway mosquitto for demos and benchmarks: a free loopback port, password files and the
project's ACL (systemd/mosquitto/naturevision.acl), so a unit may write only under
naturevision/<its user name>/ as in the field. No TLS (loopback only) and no persistence. Production
brokers are set up from systemd/mosquitto/ instead; the tests have their own, with TLS (tests/broker.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

ACL = Path(__file__).resolve().parent.parent / "systemd" / "mosquitto" / "naturevision.acl"
BASE_USER = "nv-base"


class LocalBroker:
    def __init__(self, folder: Path, users: list[str]):
        if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
            raise RuntimeError("mosquitto is not installed: sudo apt-get install mosquitto")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.passwords = {user: secrets.token_hex(8) for user in [*users, BASE_USER]}
        passwd = folder / "passwd"
        passwd.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
            (folder / f"{user}.pw").write_text(password)
        (folder / "acl").write_text(ACL.read_text())
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"per_listener_settings false\nallow_anonymous false\npassword_file {passwd}\nacl_file {folder / 'acl'}\n"
            f"listener {self.port} 127.0.0.1\npersistence false\nmax_queued_messages 100000\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
            + ("user root\n" if os.geteuid() == 0 else "")  # as root, mosquitto would drop to a user who cannot read here
        )
        self.proc: subprocess.Popen | None = None

    def password_file(self, user: str) -> Path:
        return self.folder / f"{user}.pw"

    def listen_argv(self, db: Path, client_id: str) -> list[str]:
        """`nv-base listen` arguments (after the program) that store what this broker carries in `db`."""
        return ["listen", "--db", str(db), "--host", "127.0.0.1", "--port", str(self.port), "--username", BASE_USER,
                "--password-file", str(self.password_file(BASE_USER)), "--client-id", client_id]

    def start(self) -> "LocalBroker":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start; see {self.folder / 'mosquitto.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
