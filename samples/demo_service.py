"""The whole path on one machine, offline: a local mosquitto on a free loopback port, `nv-edge run` on the
shipped sample frames and clip, `nv-base listen` storing what arrives, `nv-base list` printing it, and
`nv-base serve` showing it on a web page (its URL and a demo login are printed last; with a terminal,
the page stays up until Enter is pressed). Then everything it started is stopped. Run by `make demo`:

    python samples/demo_service.py OUTDIR

The broker uses the project's own ACL (systemd/mosquitto/naturevision.acl) and passwords, so the unit may
only write under naturevision/<its id>/, as in the field; TLS is left out on loopback (the field config
in systemd/edge.example.toml has it).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from basestation.localbroker import LocalBroker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEVICE = "demo-unit"
IMAGE_MODEL = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
AUDIO_MODEL = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
FRAMES = sorted((ROOT / "samples" / "tiles").glob("*.png")) + [ROOT / "samples" / "scenes" / "mosaic_a.png"]
CLIP = ROOT / "samples" / "audio" / "composite_rain_chainsaw_rain.wav"


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return con.execute("SELECT count(*) FROM detections").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def main(out: Path) -> int:
    work = out.resolve() / "service"
    shutil.rmtree(work, ignore_errors=True)
    for d in ("state", "incoming", "clips"):
        (work / d).mkdir(parents=True)
    broker = LocalBroker(work / "broker", [DEVICE])
    config = work / "edge.toml"
    text = f"""[device]
id = "{DEVICE}"
state_dir = "{work / 'state'}"
location = {{ lat = -3.4653, lon = -62.2159 }}

[image]
model = "{IMAGE_MODEL}"
gsd = 10.0  # the sample frames are Sentinel-2 tiles at 10 m/px, which their PNGs do not say
overlap = 0

[[image.sources]]
type = "folder"
path = "{work / 'incoming'}"
settle_s = 0.3
poll_s = 0.2

[mqtt]
host = "127.0.0.1"
port = {broker.port}
password_file = "{broker.password_file(DEVICE)}"
heartbeat_s = 10
"""
    if AUDIO_MODEL.exists():
        text += f"""
[audio]
model = "{AUDIO_MODEL}"

[audio.source]
type = "files"
path = "{work / 'clips'}"
settle_s = 0.3
poll_s = 0.2
"""
    config.write_text(text)
    db = work / "base.db"
    procs: list[subprocess.Popen] = []

    def spawn(name: str, argv: list[str]) -> subprocess.Popen:
        log = open(work / f"{name}.log", "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        print(f"== mosquitto on 127.0.0.1:{broker.port} (passwords + the project's ACL; logs in {work})")
        broker.start()
        print("== nv-base listen: stores what arrives in", db)
        spawn("nv-base-listen", [str(BIN / "nv-base"), *broker.listen_argv(db, "nv-base-demo")])
        print("== nv-edge run --config", config)
        edge = spawn("nv-edge-run", [str(BIN / "nv-edge"), "run", "--config", str(config)])
        wait(lambda: "msg=started" in (work / "nv-edge-run.log").read_text() or edge.poll() is not None, 60, "nv-edge run")
        if edge.poll() is not None:
            raise SystemExit("demo: nv-edge run exited:\n" + (work / "nv-edge-run.log").read_text())
        for frame in FRAMES:  # copied in as a drone controller or SD card reader would
            shutil.copy(frame, work / "incoming" / frame.name)
        expected = len(FRAMES)
        if AUDIO_MODEL.exists():
            shutil.copy(CLIP, work / "clips" / CLIP.name)
        print(f"== dropped {len(FRAMES)} frame(s){' and 1 clip' if AUDIO_MODEL.exists() else ''} into the watched folders")
        wait(lambda: stored(db) >= expected + (2 if AUDIO_MODEL.exists() else 0), 120, "the detections at the base station")
        time.sleep(2)  # late phases (an event's end) and the first heartbeat
        print("== nv-edge run: SIGTERM (a clean stop says `stopped`)")
        edge.send_signal(signal.SIGTERM)
        edge.wait(timeout=60)
        time.sleep(1)
        print("== nv-base list")
        subprocess.run([str(BIN / "nv-base"), "list", "--db", str(db), "--limit", "30"], check=True)
        print("== the service's log (logfmt for journald), last lines:")
        for line in (work / "nv-edge-run.log").read_text().splitlines()[-4:]:
            print("  ", line)
        web_page(work, db, spawn)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        broker.stop()
        print("== stopped everything the demo started")
    return 0


def web_page(work: Path, db: Path, spawn) -> None:
    """`nv-base serve` on a free loopback port with a demo account; checks that the page shows the
    demo's detections, prints its URL, and (with a terminal) keeps it up until Enter."""
    password = secrets.token_urlsafe(12)
    login = work / "demo-login.txt"
    login.write_text(password + "\n")
    subprocess.run([str(BIN / "nv-base"), "user", "add", "demo", "--role", "reviewer", "--password-file", str(login),
                    "--db", str(db)], check=True)
    serve = spawn("nv-base-serve", [str(BIN / "nv-base"), "serve", "--db", str(db), "--port", "0"])
    log = work / "nv-base-serve.log"
    wait(lambda: "nv-base serve: http://" in log.read_text() or serve.poll() is not None, 30, "nv-base serve")
    found = re.search(r"nv-base serve: (http://\S+)", log.read_text())
    if found is None:
        raise SystemExit("demo: nv-base serve did not start:\n" + log.read_text())
    url = found.group(1)
    shown = page_detections(url, "demo", password)
    print(f"== the web page (nv-base serve) shows the {shown} stored detection(s): map, live list, evidence, review")
    print(f"   {url}   log in as demo / {password}   (the password is also in {login})")
    print(f"   to open it again later: {BIN / 'nv-base'} serve --db {db} --port 8080")
    if sys.stdin.isatty():
        input("== press Enter to stop the page and end the demo ")


def page_detections(url: str, name: str, password: str) -> int:
    """Log in as a browser does (form token, session cookie) and count what /api/detections lists."""
    page = urllib.request.urlopen(url + "login", timeout=10)
    token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode()).group(1)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    form = urllib.parse.urlencode({"name": name, "password": password, "csrf": token}).encode()

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None  # the 302 carries the session cookie: read it, do not follow

    opener = urllib.request.build_opener(Keep)
    try:
        opener.open(urllib.request.Request(url + "login", data=form, headers={"Cookie": cookie}), timeout=30)
        raise SystemExit("demo: the web page refused the demo login")
    except urllib.error.HTTPError as answer:
        if answer.code != 302:
            raise SystemExit(f"demo: the web page answered the login with {answer.code}") from None
        session = answer.headers["Set-Cookie"].split(";")[0]
    listed = urllib.request.urlopen(urllib.request.Request(url + "api/detections", headers={"Cookie": session}), timeout=10)
    return len(json.load(listed)["records"])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")))
