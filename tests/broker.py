"""A real mosquitto for the tests: the shipped example config, a test PKI, kill -9 and restart.

The broker runs `systemd/mosquitto/naturevision.conf` with only its paths and port rewritten, so
the tests exercise the configuration a base station installs. Keys and certificates are made
with `openssl` at test time into a temporary folder; none is ever committed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from basestation.certificates import write_crl
from basestation.settings import Tls

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONF = ROOT / "systemd" / "mosquitto" / "naturevision.conf"
EXAMPLE_ACL = ROOT / "systemd" / "mosquitto" / "naturevision.acl"
ETC = "/etc/mosquitto/naturevision/"
VAR = "/var/lib/mosquitto/"
BASE_USER = "nv-base"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


@dataclass
class Pki:
    """A CA, the broker's certificate (for 127.0.0.1 and localhost) and one client cert per user."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]  # user -> (cert, key)
    rogue_ca: Path  # a CA that signed nothing here: the "wrong CA" case
    crl: Path  # the CA's CRL, revoking nothing (the broker's crlfile)


def make_pki(dir: Path, users: list[str]) -> Pki:
    dir.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "rogue-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                 "-subj", f"/CN=NatureVision test {name}", cwd=dir)

    def issue(name: str, cn: str, ext: str) -> tuple[Path, Path]:
        (dir / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=dir)
        return dir / f"{name}.crt", dir / f"{name}.key"

    server_cert, server_key = issue("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    clients = {user: issue(f"client-{user}", user, "extendedKeyUsage=clientAuth\n") for user in users}
    crl = dir / "crl.pem"
    write_crl(Tls(ca=dir / "ca.crt", client_certificates=True, ca_key=dir / "ca.key", ca_dir=dir / "ca-records", crl=crl))
    return Pki(dir, dir / "ca.crt", server_cert, server_key, clients, dir / "rogue-ca.crt", crl)


@dataclass
class Broker:
    """mosquitto on a free loopback port, in its own folder, with the example config and ACL."""

    dir: Path
    pki: Pki
    passwords: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0

    def __post_init__(self):
        self.etc = self.dir / "etc"
        self.var = self.dir / "var"
        self.etc.mkdir(parents=True, exist_ok=True)
        self.var.mkdir(exist_ok=True)
        self.log = self.dir / "mosquitto.log"
        for src, name in ((self.pki.ca, "ca.crt"), (self.pki.server_cert, "server.crt"), (self.pki.server_key, "server.key"),
                          (self.pki.crl, "crl.pem")):
            (self.etc / name).write_bytes(src.read_bytes())
        (self.etc / "acl").write_text(EXAMPLE_ACL.read_text())
        passwd = self.etc / "passwd"
        passwd.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True, timeout=30)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(self.render_config())

    def render_config(self) -> str:
        text = EXAMPLE_CONF.read_text()
        assert ETC in text and VAR in text and "\nlistener 8883\n" in text, f"{EXAMPLE_CONF} changed shape"
        text = text.replace(ETC, f"{self.etc}/").replace(VAR, f"{self.var}/")
        text = text.replace("\nlistener 8883\n", f"\nlistener {self.port} 127.0.0.1\n")
        text = text.replace("log_dest syslog", f"log_dest file {self.log}")
        if os.geteuid() == 0:
            # mosquitto started as root drops to the `mosquitto` user, who cannot read a root-owned
            # temporary folder; the installed service never runs into this.
            text += "\nuser root\n"
        return text

    def start(self) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.starts += 1

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}: "
                                     f"{self.proc.stderr.read().decode()} {self.log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(listening, 15, f"mosquitto to listen on 127.0.0.1:{self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: what a power cut does to the broker. Nothing is saved."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
