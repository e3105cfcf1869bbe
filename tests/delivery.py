"""Real processes for the delivery tests: `nv-edge publish` and `nv-base listen` against a real
mosquitto (tests/broker.py), each in its own process that a test can SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import BASE_USER, Broker, Pki, make_pki, wait_for

ROOT = Path(__file__).resolve().parent.parent
DEVICES = ["unit-1", "unit-2"]
USERS = DEVICES + [BASE_USER]


@dataclass
class Proc:
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 30) -> None:
        wait_for(lambda: needle in self.text() or self._dead(needle), timeout, f"{needle!r} in {self.log}")

    def _dead(self, needle: str) -> bool:
        if self.popen.poll() is not None and needle not in self.text():
            raise AssertionError(f"{self.log.name} exited with {self.popen.returncode}:\n{self.text()[-3000:]}")
        return False

    def kill(self) -> None:
        """SIGKILL: no clean-up runs, as when the power goes."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
        return self.popen.wait(timeout=20)


class Site:
    """One base-station site: PKI, passwords, a broker, and helpers to run units and listeners."""

    def __init__(self, dir: Path, pki: Pki):
        self.dir = dir
        self.pki = pki
        self.passwords = {user: f"pw-{user}-{os.getpid()}" for user in USERS}
        self.broker = Broker(dir / "broker", pki, self.passwords)
        self.procs: list[Proc] = []
        self._n = 0

    def password_file(self, user: str, password: str | None = None) -> Path:
        path = self.dir / f"{user}.{'wrong' if password else 'pw'}"
        path.write_text(password or self.passwords[user])
        return path

    def broker_args(self, user: str, *, cafile: Path | None = None, password: str | None = None) -> list[str]:
        cert, key = self.pki.clients[user]
        return ["--host", "127.0.0.1", "--port", str(self.broker.port), "--cafile", str(cafile or self.pki.ca),
                "--certfile", str(cert), "--keyfile", str(key), "--username", user,
                "--password-file", str(self.password_file(user, password))]

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        self._n += 1
        log = self.dir / f"{self._n:02d}-{name}.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        popen = subprocess.Popen([sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
        proc = Proc(popen, log)
        self.procs.append(proc)
        return proc

    def publisher(self, outbox: Path, device: str = "unit-1", *, user: str | None = None, extra: tuple = (),
                  **broker_kw) -> Proc:
        argv = ["-m", "edge.cli", "publish", "--outbox", str(outbox), "--device", device,
                *self.broker_args(user or device, **broker_kw), "--max-backoff", "1", "--receipt-timeout", "2",
                "--heartbeat", "5", *extra]
        return self._spawn(f"publish-{device}", argv)

    def listener(self, db: Path | str, *, name: str | None = None, extra: tuple = ()) -> Proc:
        """`nv-base listen` into `db` (a file or a PostgreSQL URI), client id nv-base-<name or the file's stem>."""
        name = name or Path(db).stem
        argv = ["-m", "basestation.cli", "listen", "--db", str(db), "--client-id", f"nv-base-{name}",
                *self.broker_args(BASE_USER), *extra]
        return self._spawn(f"listen-{name}", argv)

    def mqtt_client(self, user: str, client_id: str) -> mqtt.Client:
        """A plain paho client in the test process (for rogue payloads and reading retained topics)."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        cert, key = self.pki.clients[user]
        client.tls_set(ca_certs=str(self.pki.ca), certfile=str(cert), keyfile=str(key))
        client.username_pw_set(user, self.passwords[user])
        client.connect("127.0.0.1", self.broker.port)
        return client

    def retained(self, topic: str, timeout: float = 10) -> dict:
        """The retained JSON message on `topic`, read by a fresh subscriber."""
        got: dict = {}
        ready = threading.Event()

        def on_message(client, userdata, message):
            got["value"] = json.loads(message.payload)
            ready.set()

        client = self.mqtt_client(BASE_USER, f"probe-{os.getpid()}-{self._n}")
        self._n += 1
        client.on_message = on_message
        client.subscribe(topic, qos=1)
        client.loop_start()
        try:
            assert ready.wait(timeout), f"no retained message on {topic}"
        finally:
            client.loop_stop()
            client.disconnect()
        return got["value"]

    def close(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.kill()
        self.broker.kill()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), USERS)


@pytest.fixture
def site(tmp_path, pki):
    s = Site(tmp_path, pki)
    yield s
    s.close()
