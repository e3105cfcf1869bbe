"""`nv-base unit add|revoke|list|crl`: the archive, its modes and its config as the unit checks it; and
against a real mosquitto (the example config, tests/broker.py), a provisioned unit publishing on its own
topics only, and a revoked one refused."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import BASE_USER, ROOT, Broker, wait_for
from delivery import Site, pki  # noqa: F401  (fixtures)
from detections import detections

from basestation.settings import load_settings
from basestation.store import Store
from basestation.units import UNIT_NAME
from edge.config.sections import DEVICE_ID
from edge.delivery.outbox import Outbox

IMAGE_MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"


def run(program: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", program, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


class BaseStation:
    """A base station's files around a (not yet started) broker: base.toml naming the broker's own
    password file, ACL and crlfile, the test CA, and a pid file for the reload."""

    def __init__(self, dir: Path, pki, *, template: str | None = None, db: str | None = None):
        self.dir = dir
        self.site = Site(dir, pki)
        self.broker: Broker = self.site.broker
        self.pid_file = dir / "mosquitto.pid"
        self.db = db or dir / "base.db"  # a SQLite file, or a PostgreSQL URI
        self.settings = dir / "base.toml"
        units = ""
        if template is not None:
            (dir / "template.toml").write_text(template)
            units = '\n[units]\ntemplate = "template.toml"\n'
        self.settings.write_text(f"""[broker]
host = "127.0.0.1"
port = {self.broker.port}
password_file = "{self.broker.etc / 'passwd'}"
acl_file = "{self.broker.etc / 'acl'}"
reload = "pid_file"
pid_file = "{self.pid_file}"

[tls]
ca = "{pki.ca}"
ca_key = "{pki.dir / 'ca.key'}"
ca_dir = "{dir / 'ca-records'}"
crl = "{self.broker.etc / 'crl.pem'}"
{units}
[store]
db = "{self.db}"
""")

    def start(self) -> None:
        self.broker.start()
        self.pid_file.write_text(f"{self.broker.proc.pid}\n")  # what mosquitto's pid_file would hold

    def unit(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        return run("basestation.cli", "unit", "--settings", self.settings, *args, check=check)

    def add(self, name: str, *extra) -> dict[str, bytes]:
        self.unit("add", name, "--out", self.dir / "out", *extra)
        return members(self.dir / "out" / f"{name}.tar.gz")

    def install(self, name: str) -> Path:
        """Extract the unit's archive as the technician would, into a stand-in /etc/naturevision."""
        etc = self.dir / f"unit-etc-{name}"
        etc.mkdir(exist_ok=True)
        with tarfile.open(self.dir / "out" / f"{name}.tar.gz") as tar:
            tar.extractall(etc, filter="data")
        return etc / "edge.toml"

    def close(self) -> None:
        self.site.close()


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def modes(archive: Path) -> dict[str, int]:
    with tarfile.open(archive) as tar:
        return {m.name: m.mode for m in tar.getmembers()}


@pytest.fixture
def base(tmp_path, pki):
    b = BaseStation(tmp_path, pki)
    yield b
    b.close()


def test_unit_names_are_device_ids():
    assert UNIT_NAME.pattern == DEVICE_ID.pattern


def test_add_writes_one_archive_with_the_secrets_and_a_config_the_unit_accepts(base):
    got = base.add("unit-07")
    archive = base.dir / "out" / "unit-07.tar.gz"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert modes(archive) == {"README.txt": 0o600, "edge.toml": 0o640, "mqtt.password": 0o640, "ca.crt": 0o640,
                              "unit-07.crt": 0o640, "unit-07.key": 0o640}
    for name in ("edge.toml", "mqtt.password", "ca.crt", "unit-07.crt", "unit-07.key"):
        assert f"/etc/naturevision/{name}" in got["README.txt"].decode()
    assert b"PRIVATE KEY" in got["unit-07.key"] and got["ca.crt"] == base.site.pki.ca.read_bytes()
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "extendedKeyUsage"],
                             input=got["unit-07.crt"], capture_output=True, check=True).stdout.decode()
    assert "CN = unit-07" in subject and "TLS Web Client Authentication" in subject
    assert "unit-07:" in (base.broker.etc / "passwd").read_text()
    assert not list(base.dir.glob("**/unit-07.key")) and not list((base.dir / "ca-records").glob("*.key"))
    config = base.install("unit-07")
    check = run("edge.cli", "config", "check", config)
    assert "device  unit-07" in check.stdout
    assert f"mqtt    127.0.0.1:{base.broker.port} (TLS + client certificate) as unit-07" in check.stdout
    assert "image   off" in check.stdout


def test_add_list_and_revoke_keep_the_units_in_postgresql(tmp_path, pki, pg_databases):
    dsn = pg_databases.new()
    base = BaseStation(tmp_path, pki, db=dsn)
    try:
        base.add("unit-07")
        base.add("unit-08")
        listed = {line.split()[0]: line for line in base.unit("list").stdout.splitlines()[1:] if line.strip()}
        assert "active" in listed["unit-07"] and "active" in listed["unit-08"]
        assert "revoked certificate" in base.unit("revoke", "unit-07").stdout
        store = Store(dsn)
        kept = {r["name"]: (r["access"], r["serial"] is not None) for r in store.query("SELECT * FROM units")}
        store.close()
        assert kept == {"unit-07": ("revoked", True), "unit-08": ("active", True)}
        assert any(line.startswith("unit-07 ") and "revoked" in line for line in base.unit("list").stdout.splitlines())
        assert "already revoked" in base.unit("revoke", "unit-07").stdout
        assert dsn.split("@")[0].split(":")[-1] not in base.unit("list").stdout  # never the password
    finally:
        base.close()


def test_a_template_gives_the_unit_its_pipelines(tmp_path, pki):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    base = BaseStation(tmp_path, pki, template=f"""[image]
model = "{IMAGE_MODEL}"

[[image.sources]]
type = "folder"
path = "{incoming}"
""")
    try:
        base.add("unit-08")
        check = run("edge.cli", "config", "check", base.install("unit-08"))
        assert "image   mining-s2" in check.stdout and f"folder {incoming}" in check.stdout
        (tmp_path / "template.toml").write_text('[device]\nid = "x"\n')
        refused = base.unit("add", "unit-09", "--out", tmp_path / "out", check=False)
        assert refused.returncode == 1 and "[device] is written by nv-base for each unit" in refused.stderr
    finally:
        base.close()


def test_add_of_an_existing_unit_fails_unless_forced_which_rotates_password_and_certificate(base):
    first = base.add("unit-07")
    again = base.unit("add", "unit-07", "--out", base.dir / "out", check=False)
    assert again.returncode == 1
    assert "unit unit-07 already exists; `nv-base unit add unit-07 --force`" in again.stderr
    assert members(base.dir / "out" / "unit-07.tar.gz") == first  # nothing was touched
    second = base.add("unit-07", "--force")
    assert second["mqtt.password"] != first["mqtt.password"] and second["unit-07.crt"] != first["unit-07.crt"]
    index = (base.dir / "ca-records" / "index.txt").read_text().splitlines()
    assert [line[0] for line in index] == ["R", "V"]  # the first certificate is revoked
    assert (base.broker.etc / "passwd").read_text().count("unit-07:") == 1


def test_names_that_cannot_be_units_and_unknown_revokes_are_refused(base):
    for name, why in (("Unit 7", "cannot be a unit name"), ("unit/7", "cannot be a unit name"),
                      (BASE_USER, "has rights of its own")):
        proc = base.unit("add", name, "--out", base.dir / "out", check=False)
        assert proc.returncode == 1 and why in proc.stderr, proc.stderr
    proc = base.unit("revoke", "unit-99", check=False)
    assert proc.returncode == 1
    assert "unknown unit 'unit-99': not in" in proc.stderr and "`nv-base unit list` shows the units" in proc.stderr


def test_a_broken_settings_file_names_the_key(base):
    base.settings.write_text(base.settings.read_text().replace('reload = "pid_file"', 'reload = "sometimes"'))
    proc = base.unit("list", check=False)
    assert proc.returncode == 1
    assert f"{base.settings}: [broker.reload]: got 'sometimes'; expected one of: auto, systemctl, pid_file, none" in proc.stderr


# -- against a real mosquitto ------------------------------------------------------------------------

def connack(base: BaseStation, name: str, password: str, *, cert_of: Path):
    """Log in as `name` with the client certificate installed beside `cert_of`: the CONNACK's reason."""
    etc = cert_of.parent
    cert = next(p for p in etc.glob("*.crt") if p.name != "ca.crt")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{name}-{os.urandom(3).hex()}",
                         protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(etc / "ca.crt"), certfile=str(cert), keyfile=str(cert.with_suffix(".key")))
    client.username_pw_set(name, password)
    got, done = {}, threading.Event()
    client.on_connect = lambda c, u, flags, reason, props: (got.setdefault("reason", reason), done.set())
    client.connect("127.0.0.1", base.broker.port)
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()
    return got.get("reason")


def tls_answer(base: BaseStation, config: Path) -> str:
    """The broker's answer to a TLS handshake with the unit's certificate: "accepted", or its alert."""
    etc = config.parent
    name = next(etc.glob("*.key")).stem
    context = ssl.create_default_context(cafile=str(etc / "ca.crt"))
    context.load_cert_chain(str(etc / f"{name}.crt"), str(etc / f"{name}.key"))
    with socket.create_connection(("127.0.0.1", base.broker.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.settimeout(1.0)
                tls.recv(1)  # TLS 1.3: the server judges the client's certificate after the handshake
        except ssl.SSLError as exc:
            return str(exc)
        except TimeoutError:
            return "accepted"  # mosquitto waits for our CONNECT
    return "closed"


def password_of(config: Path) -> str:
    return (config.parent / "mqtt.password").read_text().strip()


def publish(base: BaseStation, config: Path, topic: str, payload: bytes):
    """Publish once as the unit; returns the PUBACK's reason code (MQTT 5)."""
    etc = config.parent
    name = next(etc.glob("*.key")).stem
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rogue-{name}", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(etc / "ca.crt"), certfile=str(etc / f"{name}.crt"), keyfile=str(etc / f"{name}.key"))
    client.username_pw_set(name, (etc / "mqtt.password").read_text().strip())
    acks = []
    client.on_publish = lambda c, u, mid, reason, props: acks.append(reason)
    client.connect("127.0.0.1", base.broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(10)
    wait_for(lambda: acks, 10, "the PUBACK")
    client.loop_stop()
    client.disconnect()
    return acks[0]


def stored(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    store = Store(db)
    try:
        return dict(store.db.execute("SELECT id, device FROM detections"))
    finally:
        store.close()


def test_a_provisioned_unit_publishes_on_its_own_topics_only_and_a_revoked_one_is_refused(tmp_path, pki):
    outbox = tmp_path / "outbox.db"
    base = BaseStation(tmp_path, pki, template=f'[outbox]\npath = "{outbox}"\n')
    try:
        base.add("unit-07")
        base.add("unit-08")
        base.unit("crl")  # before the broker's first start, as an operator would
        base.start()
        listener = base.site.listener(base.db)
        listener.wait_log("listening on")
        unit07, unit08 = base.install("unit-07"), base.install("unit-08")

        # its records reach nv-base listen, through the generated config and the real service
        records = detections("unit-07", 20)
        with Outbox(outbox) as box:
            for record in records:
                box.put(record)
        log = tmp_path / "run-unit-07.log"
        service = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(unit07)],
                                   stdout=open(log, "w"), stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_for(lambda: len(stored(base.db)) == 20, 60, "unit-07's 20 records at the base station")
        assert set(stored(base.db)) == {r["id"] for r in records}
        wait_for(lambda: depth(outbox) == 0, 30, "the receipts to empty unit-07's outbox")

        # another unit's topic: the broker's ACL refuses it and nothing arrives
        spoof = detections("unit-08", 1, start=500)[0]
        reason = publish(base, unit07, "naturevision/unit-08/detection", json_bytes(spoof))
        assert reason.is_failure and "not authorized" in str(reason).lower()
        assert publish(base, unit08, "naturevision/unit-08/detection", json_bytes(detections("unit-08", 1, start=600)[0])) == 0
        wait_for(lambda: len(stored(base.db)) == 21, 30, "unit-08's own record")
        assert spoof["id"] not in stored(base.db)

        listing = base.unit("list").stdout
        assert any(line.startswith("unit-07 ") and "active" in line and "online" in line and "ago" in line
                   for line in listing.splitlines()), listing
        assert "CRL next update" in listing

        # revoke: the password goes, the certificate is revoked, mosquitto reloads
        done = base.unit("revoke", "unit-07").stdout
        assert "removed unit-07 from" in done and "revoked certificate" in done and "SIGHUP to mosquitto" in done
        assert "accepted" == tls_answer(base, unit08)
        wait_for(lambda: "revoked" in tls_answer(base, unit07), 10, "the broker to refuse unit-07's certificate (CRL)")
        # and its password is gone: with a valid certificate (unit-08's), the login is refused
        refused = connack(base, "unit-07", password_of(unit07), cert_of=unit08)
        assert refused is not None and "not authorized" in str(refused).lower(), refused
        assert connack(base, "unit-08", password_of(unit08), cert_of=unit08) == 0  # the others are untouched
        # the connected unit was dropped on the reload, and cannot come back
        wait_for(lambda: log.read_text().count("not connected to the broker") >= 2, 30,
                 "the running unit to be dropped and its reconnects refused")
        assert "lost the broker" in log.read_text() and log.read_text().count("msg=\"connected to") == 1
        assert "Client nv-edge-unit-07 disconnected" in base.broker.log_text().split("Reloading config", 1)[1]
        assert any(line.startswith("unit-07 ") and "revoked" in line for line in base.unit("list").stdout.splitlines())
        again = base.unit("revoke", "unit-07").stdout
        assert "already revoked" in again
    finally:
        if 'service' in locals() and service.poll() is None:
            service.kill()
        base.close()


def json_bytes(record: dict) -> bytes:
    return json.dumps(record).encode()


def depth(path: Path) -> int:
    with Outbox(path) as box:
        return box.depth()


def test_the_example_settings_load_once_their_files_exist(tmp_path, pki):
    text = (ROOT / "systemd" / "base.example.toml").read_text()
    for old, new in (("/etc/mosquitto/naturevision/", "broker/"), ("/etc/naturevision/", "etc/"), ("/var/lib/naturevision/", "")):
        text = text.replace(old, new)
    (tmp_path / "broker").mkdir()
    (tmp_path / "etc" / "ca").mkdir(parents=True)
    (tmp_path / "broker" / "passwd").write_text("")
    (tmp_path / "broker" / "acl").write_text((ROOT / "systemd" / "mosquitto" / "naturevision.acl").read_text())
    (tmp_path / "broker" / "ca.crt").write_bytes(pki.ca.read_bytes())
    (tmp_path / "etc" / "ca" / "ca.key").write_bytes((pki.dir / "ca.key").read_bytes())
    (tmp_path / "base.toml").write_text(text)
    settings = load_settings(tmp_path / "base.toml")
    assert (settings.host, settings.port, settings.reload) == ("base.example", 8883, "auto")
    assert settings.tls.client_certificates and settings.tls.ca_dir == tmp_path / "etc" / "ca" / "units"
    assert settings.db == tmp_path / "base.db" and settings.template is None
