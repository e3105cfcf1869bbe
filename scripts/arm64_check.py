"""`make arm64-check`: the field unit's software on a Debian 12 arm64 root, run under qemu-user.

    sudo .venv/bin/python scripts/arm64_check.py [--cache .cache/arm64-root] [--tolerance 0.02]
                                                 [--legacy-tolerance 0.1] [--rebuild]

1. Builds a Debian 12 (bookworm) arm64 root with debootstrap (first stage on this machine, second stage
   inside the root under qemu-aarch64-static), once: it is kept in --cache and reused.
2. Installs a field unit there as the install guide says: a copy of this checkout, then
   `scripts/install-unit.sh` as root inside the root (python3-venv, the venv under /opt/naturevision,
   `pip install -c constraints.txt ".[edge]"` from PyPI, the models, the unit file, the config).
   A second venv adds the `edge-legacy` extra (tflite-runtime) to check the fallback interpreter too.
   The offline path as well: the aarch64 wheel folder made here (scripts/build-wheels.sh), installed
   with `install-unit.sh --wheels` in a network namespace without network, into a scratch root.
3. `nv-edge doctor` with a config for the arm64 unit (the shipped models, a watched folder, a throwaway
   mosquitto on this machine's loopback: a chroot shares the host's network).
4. `nv-edge classify samples/` on arm64 (LiteRT and tflite-runtime) against the same command on this
   x86-64 machine, printed side by side: same labels and alert decisions (a label may differ only in a near
   tie: both labels' scores within the tolerance on both machines), every score within the tolerance
   (--tolerance for LiteRT, --legacy-tolerance for tflite-runtime).
5. A short `nv-edge run`: the sample frames and a clip dropped into watched folders, the records
   received by `nv-base listen` on the host.

Needs: root (debootstrap, chroot, mounts), debootstrap and qemu-user-static (installed with apt-get
when missing), mosquitto, binfmt_misc (mounted and the aarch64 entry registered when missing), the
package registries (Debian's mirror, PyPI), and this checkout's .venv with `.[edge,edge-legacy,base]`
(`make arm64-check` makes it). The CPU is emulated as a Cortex-A72 (Raspberry Pi 4): a wheel built for
a newer Arm core fails here as it would on the Pi.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from arm64root import QEMU_CPU, build_root, chroot, chroot_env, fail, mounted, need_tools, register_binfmt, say, trust_host_cas

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHECKOUT_IN_ROOT = "/root/naturevision"
LEGACY_VENV = "/root/nv-legacy"
DEVICE = "arm64-unit"
timings: dict[str, float] = {}


results: list[str] = []  # one line per check for the summary


@contextmanager
def phase(name: str):
    start = time.monotonic()
    timings[name] = 0.0  # its place in the summary, before the steps timed inside it
    say(f"{name} ...")
    yield
    timings[name] = time.monotonic() - start
    say(f"{name}: {timings[name]:.0f} s")


# -- the field unit in the root ---------------------------------------------------------------------

def copy_checkout(root: Path) -> None:
    """What a technician copies to the unit: the checkout's files (tracked and new, not ignored ones)."""
    target = root / CHECKOUT_IN_ROOT.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def install_unit(root: Path) -> None:
    proc = chroot(root, ["bash", f"{CHECKOUT_IN_ROOT}/scripts/install-unit.sh"], capture=True)
    print(proc.stdout + proc.stderr, end="")
    software = next(line.removeprefix("== ") for line in proc.stdout.splitlines() if "installed nv-edge" in line
                    or "unchanged since" in line)
    results.append(f"install-unit.sh (as root in the root, from PyPI): {software}")


def install_legacy(root: Path) -> None:
    """tflite-runtime beside LiteRT, in a venv of its own so the unit's venv stays as the installer made it."""
    if not (root / LEGACY_VENV.lstrip("/") / "bin/python").exists():
        chroot(root, ["python3", "-m", "venv", LEGACY_VENV])
    chroot(root, [f"{LEGACY_VENV}/bin/pip", "install", "-q", "-c", f"{CHECKOUT_IN_ROOT}/constraints.txt",
                  f"{CHECKOUT_IN_ROOT}[edge,edge-legacy]"])


def offline_install(root: Path) -> str:
    """The wheel folder path of the guide: `build-wheels.sh --arch aarch64` here, then install-unit.sh --wheels
    inside the root in a network namespace of its own (no network at all), into a scratch root there."""
    wheels, scratch = root / "root/wheels", "/root/offline-unit"
    shutil.rmtree(wheels, ignore_errors=True)
    build = subprocess.run(["bash", str(ROOT / "scripts/build-wheels.sh"), "--python", sys.executable, "--arch", "aarch64",
                            "--out", str(wheels)], capture_output=True, text=True)
    if build.returncode != 0:
        fail(f"scripts/build-wheels.sh --arch aarch64 failed:\n{build.stderr}")
    say(f"{len(list(wheels.glob('*.whl')))} wheels in /root/wheels; install-unit.sh --root {scratch} --wheels /root/wheels"
        " with no network (unshare --net)")
    (root / scratch.lstrip("/")).mkdir(exist_ok=True)
    offline = ["unshare", "--net", "chroot", str(root)]
    for argv in (["bash", f"{CHECKOUT_IN_ROOT}/scripts/install-unit.sh", "--root", scratch, "--wheels", "/root/wheels"],
                 [f"{scratch}/opt/naturevision/bin/nv-edge", "info", f"{scratch}/opt/naturevision/models/mining-s2/mining-s2.nvm"]):
        proc = subprocess.run([*offline, *argv], env=chroot_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"offline, in the arm64 root: `{' '.join(argv)}` exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    backend = json.loads(proc.stdout)["backend"]
    say(f"offline install: nv-edge info opens mining-s2 on {backend}")
    results.append(f"offline: {len(list(wheels.glob('*.whl')))} aarch64 wheels from build-wheels.sh, install-unit.sh"
                   f" --wheels with no network, nv-edge info opens mining-s2 on {backend}")
    return backend


def versions(root: Path, venv: str) -> dict[str, str]:
    out = chroot(root, [f"{venv}/bin/python", "-m", "pip", "list", "--format=json"], capture=True).stdout
    wanted = {"ai-edge-litert", "tflite-runtime", "numpy", "pillow", "paho-mqtt", "soundfile", "sounddevice"}
    return {p["name"].lower(): p["version"] for p in json.loads(out) if p["name"].lower() in wanted}


def passwd_id(root: Path, name: str) -> int:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return int(line.split(":")[2])
    fail(f"no user {name} in the arm64 root: the installer did not create it")


def unit_config(root: Path, broker) -> str:
    """A config for the arm64 unit: the shipped models as installed, watched folders, the host's broker.
    Its state and folders are new on every run, so no ledger or outbox of an earlier run is seen."""
    uid = passwd_id(root, "naturevision")
    for folder in ("var/lib/naturevision-check", "srv/naturevision-check"):
        shutil.rmtree(root / folder, ignore_errors=True)
    for folder in ("var/lib/naturevision-check", "srv/naturevision-check/incoming", "srv/naturevision-check/done",
                   "srv/naturevision-check/clips"):
        (root / folder).mkdir(parents=True)
        os.chown(root / folder, uid, uid)
    secret = root / "etc/naturevision/arm64-check.password"
    shutil.copy(broker.password_file(DEVICE), secret)
    config = root / "etc/naturevision/arm64-check.toml"
    config.write_text(f"""[device]
id = "{DEVICE}"
state_dir = "/var/lib/naturevision-check"
location = {{ lat = -3.4653, lon = -62.2159 }}

[image]
model = "/opt/naturevision/models/mining-s2/mining-s2.nvm"
overlap = 0

[[image.sources]]
type = "folder"
path = "/srv/naturevision-check/incoming"
settle_s = 0.5
poll_s = 0.5
after = "move"
done_dir = "/srv/naturevision-check/done"

[audio]
model = "/opt/naturevision/models/mining-audio/mining-audio.nvm"

[audio.source]
type = "files"
path = "/srv/naturevision-check/clips"
settle_s = 0.5
poll_s = 0.5

[mqtt]
host = "127.0.0.1"
port = {broker.port}
password_file = "/etc/naturevision/arm64-check.password"
heartbeat_s = 10
""")
    for path in (config, secret):  # as the guide says for secrets: root:naturevision 640
        os.chown(path, 0, uid)
        path.chmod(0o640)
    return "/" + str(config.relative_to(root))


# -- classify: x86-64 against arm64 -----------------------------------------------------------------

def records(jsonl: str, samples: str) -> dict[tuple, dict]:
    """Records by (file under samples/, audio window offset): the two machines name files differently."""
    out = {}
    for line in jsonl.splitlines():
        record = json.loads(line)
        source = record.get("source", "")
        key = (source.split(samples.rstrip("/") + "/", 1)[-1], (record.get("audio") or {}).get("offset_s"))
        out[key] = record
    return out


def near_tie(record: dict, one: str, other: str, tolerance: float) -> bool:
    return abs(record["scores"][one] - record["scores"].get(other, -1.0)) <= tolerance


def compare(name: str, host: dict, arm: dict, tolerance: float, notes: list[str]) -> list[str]:
    """Prints the two runs side by side; returns what differs. A record differs when a score is off by more
    than the tolerance, the alert decision differs, or the label does, unless the two labels' scores are
    within the tolerance of each other on both machines (a near tie: which one wins is noise)."""
    problems = []
    if host.keys() != arm.keys():
        problems.append(f"{name}: different records: only x86-64 {sorted(host.keys() - arm.keys())[:5]}, "
                        f"only arm64 {sorted(arm.keys() - host.keys())[:5]}")
    print(f"\n{name}: {len(host)} record(s) on x86-64, {len(arm)} on arm64; tolerance {tolerance}")
    print(f"  {'file':<44} {'window':>6}  {'x86-64':<22} {'arm64':<22} {'max |d|':>7}")
    worst, ties = 0.0, 0
    for key in sorted(host.keys() & arm.keys(), key=lambda k: (k[0], k[1] or 0)):
        h, a = host[key], arm[key]
        if "scores" not in h or "scores" not in a:
            same = h.get("error") == a.get("error")
            print(f"  {key[0]:<44} {'':>6}  error record {'(same)' if same else '(DIFFERENT)'}")
            if not same:
                problems.append(f"{name}: {key[0]}: error records differ: {h.get('error')} / {a.get('error')}")
            continue
        delta = max(abs(h["scores"][label] - a["scores"].get(label, -1.0)) for label in h["scores"])
        worst = max(worst, delta)
        window = "" if key[1] is None else f"{key[1]:.2f}"
        tie = h["label"] != a["label"] and all(near_tie(r, h["label"], a["label"], tolerance) for r in (h, a))
        differs = delta > tolerance or h.get("alert") != a.get("alert") or (h["label"] != a["label"] and not tie)
        print(f"  {key[0]:<44} {window:>6}  {h['label'] + ' ' + format(h['score'], '.4f'):<22} "
              f"{a['label'] + ' ' + format(a['score'], '.4f'):<22} {delta:7.4f}"
              + ("  <-- DIFFERS" if differs else "  (near tie)" if tie else ""))
        what = f"{name}: {key[0]} {window}: x86-64 {h['label']} {h['scores']}, arm64 {a['label']} {a['scores']}"
        if differs:
            problems.append(what)
        elif tie:
            ties += 1
            notes.append(f"near tie, labels differ: {what}")
    print(f"  largest score difference: {worst:.4f}")
    labels = "DIFFER" if problems else f"equal except {ties} near tie(s)" if ties else "equal"
    results.append(f"{name}: {len(arm)} records, labels {labels}, largest score difference {worst:.4f}"
                   f" (tolerance {tolerance})")
    return problems


def classify_both(root: Path, tolerances: dict[str, float], notes: list[str]) -> list[str]:
    problems = []
    for backend, arm_venv in (("litert", "/opt/naturevision"), ("tflite-runtime", LEGACY_VENV)):
        argv = ["classify", "--device", DEVICE, "--backend", backend]
        host_models, arm_models = ((f"--model={m}/mining-s2/mining-s2.nvm", f"--audio-model={m}/mining-audio/mining-audio.nvm")
                                   for m in (ROOT / "models", "/opt/naturevision/models"))  # the arm64 unit: as installed
        host = subprocess.run([str(BIN / "nv-edge"), *argv, *host_models, str(ROOT / "samples")],
                              capture_output=True, text=True)
        if host.returncode != 0:
            fail(f"nv-edge classify on x86-64 ({backend}) failed:\n{host.stderr}")
        start = time.monotonic()
        arm = chroot(root, [f"{arm_venv}/bin/nv-edge", *argv, *arm_models, f"{CHECKOUT_IN_ROOT}/samples"], capture=True)
        timings[f"  of which nv-edge classify on arm64, {backend}"] = time.monotonic() - start
        problems += compare(f"nv-edge classify samples/ --backend {backend}", records(host.stdout, str(ROOT / "samples")),
                            records(arm.stdout, f"{CHECKOUT_IN_ROOT}/samples"), tolerances[backend], notes)
    return problems


# -- doctor and run against a broker on the host ----------------------------------------------------

def doctor(root: Path, config: str) -> list[str]:
    proc = chroot(root, ["/opt/naturevision/bin/nv-edge", "doctor", "--config", config], user="naturevision",
                  capture=True, check=False)
    print(proc.stdout + proc.stderr, end="")
    counts = {level: sum(line.startswith(level) for line in proc.stdout.splitlines()) for level in ("OK", "WARN", "FAIL")}
    results.append(f"nv-edge doctor: exit {proc.returncode}; " + ", ".join(f"{n} {level}" for level, n in counts.items())
                   + ": " + "; ".join(line[6:].split("  ")[0] + " WARN" for line in
                                      proc.stdout.splitlines() if line.startswith("WARN")))
    return [] if proc.returncode == 0 else [f"nv-edge doctor exited with {proc.returncode} (a check FAILed)"]


def stored(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return dict(con.execute("SELECT kind, count(*) FROM detections GROUP BY kind").fetchall())
    except sqlite3.OperationalError:
        return {}


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def run_service(root: Path, config: str, broker, work: Path) -> list[str]:
    """nv-edge run in the root as the service's user; frames and a clip dropped in; nv-base listen here."""
    frames = sorted((ROOT / "samples/tiles").glob("*.png")) + [ROOT / "samples/scenes/mosaic_a.png"]
    clip = ROOT / "samples/audio/chainsaw_169127.wav"
    db, problems, procs = work / "base.db", [], []
    listen_log, run_log = open(work / "nv-base-listen.log", "w"), open(work / "nv-edge-run.log", "w")
    try:
        procs.append(subprocess.Popen([str(BIN / "nv-base"), *broker.listen_argv(db, "nv-base-arm64-check")],
                                      stdout=listen_log, stderr=subprocess.STDOUT, start_new_session=True))
        argv = ["setpriv", "--reuid=naturevision", "--regid=naturevision", "--init-groups",
                "/opt/naturevision/bin/nv-edge", "run", "--config", config]
        edge = subprocess.Popen(["chroot", str(root), *argv], env=chroot_env() | {"HOME": "/var/lib/naturevision"},
                                stdout=run_log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(edge)
        started = time.monotonic()
        if not wait_for(lambda: "msg=started" in (work / "nv-edge-run.log").read_text() or edge.poll() is not None, 300) \
                or edge.poll() is not None:
            return [f"nv-edge run did not start; its log:\n{(work / 'nv-edge-run.log').read_text()}"]
        say(f"nv-edge run started in {time.monotonic() - started:.0f} s; dropping {len(frames)} frames and {clip.name}")
        uid = passwd_id(root, "naturevision")
        for source, folder in [(f, "incoming") for f in frames] + [(clip, "clips")]:
            target = root / "srv/naturevision-check" / folder / source.name
            shutil.copy(source, target)
            os.chown(target, uid, uid)
        dropped = time.monotonic()
        if not wait_for(lambda: stored(db).get("image", 0) >= len(frames) and stored(db).get("audio", 0) >= 1, 300):
            problems.append(f"the base station got {stored(db)} after 300 s, expected {len(frames)} image and >= 1 audio")
        timings["  of which frames and clip dropped -> all stored at the base station"] = time.monotonic() - dropped
        done = sorted(p.name for p in (root / "srv/naturevision-check/done").iterdir())
        if done != sorted(f.name for f in frames):
            problems.append(f"after = \"move\": {done} in done/, expected the {len(frames)} frames")
        edge.send_signal(signal.SIGTERM)
        code = edge.wait(timeout=120)
        if code != 0:
            problems.append(f"nv-edge run exited with {code} on SIGTERM")
        time.sleep(1)
        results.append(f"nv-edge run: {len(frames)} frames + 1 clip -> outbox -> mosquitto on 127.0.0.1:{broker.port} ->"
                       f" nv-base listen stored {stored(db)}; exit {code} on SIGTERM")
        say(f"the base station stored {stored(db)}; nv-base list:")
        subprocess.run([str(BIN / "nv-base"), "list", "--db", str(db), "--limit", "12"])
        print("   the service's last log lines:")
        for line in (work / "nv-edge-run.log").read_text().splitlines()[-3:]:
            print("     ", line)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return problems


# -- the whole check --------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "arm64-root", help="the arm64 root (kept)")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="LiteRT: largest score difference between x86-64 and arm64 (default 0.02, 5 int8 steps;"
                             " measured: 0, the scores are identical)")
    parser.add_argument("--legacy-tolerance", type=float, default=0.1,
                        help="tflite-runtime: the same (default 0.1; measured: up to 0.074 between x86-64 and arm64,"
                             " and 0.059 from LiteRT on one machine: its int8 kernels, without XNNPACK, round"
                             " differently on each CPU)")
    parser.add_argument("--rebuild", action="store_true", help="make a new arm64 root even if one is cached")
    args = parser.parse_args()
    from basestation.localbroker import LocalBroker  # from this checkout's .venv

    root, began, problems, notes = args.cache.resolve(), time.monotonic(), [], []
    tolerances = {"litert": args.tolerance, "tflite-runtime": args.legacy_tolerance}
    need_tools()
    register_binfmt()
    with phase("arm64 root (debootstrap)"):
        built = build_root(root, args.rebuild)
    work = Path(tempfile.mkdtemp(prefix="nv-arm64-check-"))
    broker = LocalBroker(work / "broker", [DEVICE])
    with mounted(root, work):
        uname = chroot(root, ["uname", "-m"], capture=True).stdout.strip()
        pyver = chroot(root, ["python3", "--version"], capture=True).stdout.strip()
        say(f"in the root: {uname}, {pyver}, CPU emulated as {QEMU_CPU}")
        trust_host_cas(root)
        with phase("install-unit.sh in the root (the edge extra from PyPI)"):
            copy_checkout(root)
            install_unit(root)
        with phase("the edge-legacy extra (tflite-runtime) in a second venv"):
            install_legacy(root)
        with phase("offline: make wheels ARCH=aarch64 here, install-unit.sh --wheels in the root without network"):
            offline_install(root)
        installed = versions(root, "/opt/naturevision") | {"tflite-runtime": versions(root, LEGACY_VENV).get("tflite-runtime", "-")}
        with phase("classify samples/ on x86-64 and arm64"):
            problems += classify_both(root, tolerances, notes)
        try:
            broker.start()
            say(f"mosquitto on 127.0.0.1:{broker.port} (host), logs in {work}")
            config = unit_config(root, broker)
            with phase(f"nv-edge doctor --config {config}"):
                problems += doctor(root, config)
            with phase("nv-edge run against the broker"):
                problems += run_service(root, config, broker, work)
        finally:
            broker.stop()
    total = time.monotonic() - began

    print("\n" + "=" * 100)
    print(f"arm64 check: Debian 12 arm64 root in {root} ({'built now' if built else 'cached'}), {uname}, {pyver},"
          f" qemu-user CPU {QEMU_CPU}")
    print("installed on arm64: " + ", ".join(f"{name} {version}" for name, version in sorted(installed.items())))
    for name, seconds in timings.items():
        print(f"  {seconds:7.0f} s  {name}")
    print(f"  {total:7.0f} s  total")
    for line in results:
        print("  -", line)
    for note in notes:
        print("  note:", note)
    if problems:
        print(f"FAILED ({len(problems)}):")
        for problem in problems:
            print("  -", problem)
        return 1
    print(f"PASSED: install-unit.sh, nv-edge doctor, nv-edge classify (same labels and alerts as x86-64, scores within"
          f" {args.tolerance} on LiteRT and {args.legacy_tolerance} on tflite-runtime), nv-edge run -> mosquitto ->"
          " nv-base listen")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
