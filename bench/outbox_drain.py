"""Delivery benchmark: how fast a full outbox drains into the base station, against what paho alone
can push through the same broker, and what writing a detection into the outbox costs.

    .venv/bin/python bench/outbox_drain.py [--records 20000] [--tiled]

Everything runs on this machine: a mosquitto with the shipped example config (TLS with client
certificates, password file, ACL) on a free loopback port, `nv-edge publish` and `nv-base listen`
as separate processes, exactly as the tests run them. Needs `mosquitto` and `openssl`; `strace`
(optional) to count real fsync calls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import paho.mqtt.client as mqtt  # noqa: E402
from broker import BASE_USER, Broker, make_pki, wait_for  # noqa: E402  (tests/broker.py: the same broker as the tests)
from detections import detections  # noqa: E402

from edge.delivery.outbox import Outbox  # noqa: E402

DEVICE = "unit-1"
WINDOW = 100


def fill(path: Path, records: list[dict]) -> tuple[float, int]:
    """Write the records as a unit does (default group commit). Returns (seconds, commits)."""
    start = time.perf_counter()
    with Outbox(path) as outbox:
        for record in records:
            outbox.put(record)
        outbox.flush()
        commits = outbox.commits
    return time.perf_counter() - start, commits


def count_fsyncs(records: int, tiled: bool, workdir: Path) -> int | None:
    """fsync + fdatasync calls made while writing `records` into a fresh outbox, counted by strace."""
    if shutil.which("strace") is None:
        return None
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
              f"from bench.outbox_drain import fill\nfrom detections import detections\nfrom pathlib import Path\n"
              f"fill(Path({str(workdir / 'strace.db')!r}), detections({DEVICE!r}, {records}, tiled={tiled}))\n")
    out = workdir / "strace.txt"
    proc = subprocess.run(["strace", "-f", "-c", "-o", str(out), "-e", "trace=fsync,fdatasync", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return None
    return sum(int(m.group(1)) for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync$",
                                                     out.read_text(), re.M))


def ceiling(broker: Broker, pki, passwords: dict, payloads: list[bytes]) -> float:
    """Raw paho: QoS-1 publishes of the same payloads to the same broker, window as nv-edge publish."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=mqtt.MQTTv5)
    cert, key = pki.clients[DEVICE]
    client.tls_set(ca_certs=str(pki.ca), certfile=str(cert), keyfile=str(key))
    client.username_pw_set(DEVICE, passwords[DEVICE])
    client.max_inflight_messages_set(WINDOW)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        start = time.perf_counter()
        for payload in payloads:
            client.publish(f"naturevision/{DEVICE}/detection", payload, qos=1)
        for _ in payloads:
            acked.acquire()
        return len(payloads) / (time.perf_counter() - start)
    finally:
        client.loop_stop()
        client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--tiled", action="store_true", help="records of a tiled frame (16 x 16 score grid) instead of one tile")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nv-bench-"))
    users = [DEVICE, BASE_USER]
    pki = make_pki(work / "pki", users)
    passwords = {user: f"bench-{user}" for user in users}
    broker = Broker(work / "broker", pki, passwords).start()
    procs: list[subprocess.Popen] = []
    try:
        records = detections(DEVICE, args.records, tiled=args.tiled)
        size = sum(len(json.dumps(r, separators=(",", ":"))) for r in records) / len(records)
        print(f"{args.records:,} {'tiled' if args.tiled else 'single-tile'} detection records, {size:.0f} bytes each on average; "
              f"{os.cpu_count()} cores; mosquitto {broker_version()} on loopback with TLS + client certificates + password + ACL")

        seconds, commits = fill(work / "outbox.db", records)
        fsyncs = count_fsyncs(5000, args.tiled, work)
        print(f"write cost:     {seconds / len(records) * 1e6:.0f} µs per detection into the outbox "
              f"(WAL, synchronous=FULL, group commit of 64); {commits / len(records) * 1000:.1f} commits per 1000 records; "
              + (f"{fsyncs / 5:.1f} fsync/fdatasync calls per 1000 records (strace)" if fsyncs is not None
                 else "fsync calls not counted (strace not installed)"))

        payloads = [json.dumps(dict(r, queued_s=0.0), separators=(",", ":")).encode() for r in records]
        raw = ceiling(broker, pki, passwords, payloads)
        print(f"ceiling:        {raw:,.0f} messages/s (raw paho QoS 1 to the same broker, window {WINDOW}, no subscriber)")

        env = dict(os.environ, PYTHONPATH=str(ROOT))

        def tls(user: str) -> list[str]:
            (work / f"{user}.pw").write_text(passwords[user])
            cert, key = pki.clients[user]
            return ["--host", "127.0.0.1", "--port", str(broker.port), "--cafile", str(pki.ca), "--certfile", str(cert),
                    "--keyfile", str(key), "--username", user, "--password-file", str(work / f"{user}.pw")]

        base_log = work / "listen.log"
        procs.append(subprocess.Popen([sys.executable, "-m", "basestation.cli", "listen", "--db", str(work / "base.db"),
                                       *tls(BASE_USER)], env=env, stderr=open(base_log, "w")))
        wait_for(lambda: "listening on" in base_log.read_text(), 30, "nv-base listen")
        start = time.perf_counter()
        publisher = subprocess.Popen([sys.executable, "-m", "edge.cli", "publish", "--outbox", str(work / "outbox.db"),
                                      "--device", DEVICE, *tls(DEVICE), "--window", str(WINDOW), "--until-empty"],
                                     env=env, stderr=open(work / "publish.log", "w"))
        procs.append(publisher)
        first = None
        while True:
            n = stored(work / "base.db")
            if n and first is None:
                first = (time.perf_counter(), n)
            if n >= len(records):
                break
            time.sleep(0.02)
        done = time.perf_counter()
        publisher.wait(timeout=120)
        emptied = time.perf_counter()
        e2e = len(records) / (done - start)
        steady = (len(records) - first[1]) / (done - first[0])
        print(f"end to end:     {e2e:,.0f} detections/s (outbox -> mosquitto -> nv-base -> committed in its database, "
              f"from starting nv-edge publish; {steady:,.0f}/s once the first row was stored); the outbox was empty "
              f"(every record receipted) {emptied - start:.1f} s after the start")
        print(f"ratio:          {e2e / raw:.2f} of the ceiling")
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM detections").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def broker_version() -> str:
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    match = re.search(r"mosquitto version (\S+)", out)
    return match.group(1) if match else "?"


if __name__ == "__main__":
    sys.exit(main())
