"""The Debian 12 arm64 root of `make arm64-check` (scripts/arm64_check.py): the host's tools, binfmt_misc,
debootstrap, the mounts, and running a command inside the root under qemu-user."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
# What the unit's OS has beyond minbase: the venv tooling, PortAudio (sounddevice), systemd (sysusers,
# tmpfiles and systemctl, which the installer uses) and the CA bundle pip needs for PyPI.
ROOT_PACKAGES = ["python3", "python3-venv", "libportaudio2", "systemd", "ca-certificates"]
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# A Raspberry Pi 4's core: a wheel built for a newer Arm core fails here as it would on the Pi.
QEMU_CPU = "cortex-a72"


def say(text: str) -> None:
    print(f"== {text}", flush=True)


def fail(text: str) -> None:
    raise SystemExit(f"arm64-check: {text}")


# -- the host's tools -------------------------------------------------------------------------------

def need_tools() -> None:
    if os.geteuid() != 0:
        fail("run as root (debootstrap, chroot and mounts need it): sudo make arm64-check")
    missing = [pkg for tool, pkg in (("debootstrap", "debootstrap"), ("qemu-aarch64-static", "qemu-user-static"),
                                     ("mosquitto", "mosquitto"), ("mosquitto_passwd", "mosquitto"))
               if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]
    if missing:
        say(f"installing {' '.join(sorted(set(missing)))} with apt-get")
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *sorted(set(missing))]):
            if subprocess.run(argv).returncode != 0:
                fail(f"`{' '.join(argv)}` failed: install {' '.join(sorted(set(missing)))} by hand and run again")


def register_binfmt() -> None:
    """Let the kernel run aarch64 binaries through qemu-aarch64-static. The F flag in Debian's entry
    opens the emulator now, so the root needs no copy of it."""
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    entry = BINFMT / "qemu-aarch64"
    if entry.exists():
        if entry.read_text().splitlines()[0] != "enabled":
            entry.write_text("1")
        return
    conf = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
    if not conf.exists():
        fail(f"{conf} is missing: apt-get install --reinstall qemu-user-static")
    (BINFMT / "register").write_text(conf.read_text().strip())
    say("registered qemu-aarch64 in binfmt_misc")


# -- the arm64 root ---------------------------------------------------------------------------------

def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def build_root(root: Path, rebuild: bool) -> bool:
    """The Debian 12 arm64 root, made once; `.complete` marks a finished build. Returns True if built now."""
    done = root / ".complete"
    if done.exists() and not rebuild:
        say(f"reusing the arm64 root in {root} (built {time.ctime(done.stat().st_mtime)}; --rebuild makes a new one)")
        return False
    if mounts_under(root):
        fail(f"something is still mounted under {root}: {' '.join(mounts_under(root))}; umount it first")
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    first = ["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}",
             SUITE, str(root), MIRROR]
    say(" ".join(first))
    if subprocess.run(first).returncode != 0:
        fail(f"debootstrap (first stage) failed; its log: {root / 'debootstrap/debootstrap.log'}")
    say("debootstrap --second-stage inside the root (under qemu)")
    if subprocess.run(["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"], env=chroot_env()).returncode:
        fail(f"debootstrap --second-stage failed; its log: {root / 'debootstrap/debootstrap.log'}")
    done.write_text(f"{SUITE} arm64 {' '.join(ROOT_PACKAGES)}\n")
    return True


def trust_host_cas(root: Path) -> None:
    """CAs this machine added (a TLS-inspecting proxy on the way to PyPI) are needed by pip in the root too."""
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if not extra:
        return
    target = root / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    changed = False
    for cert in extra:
        if not (target / cert.name).exists() or (target / cert.name).read_bytes() != cert.read_bytes():
            shutil.copy(cert, target / cert.name)
            changed = True
    if changed:
        chroot(root, ["update-ca-certificates"], capture=True)


def chroot_env() -> dict[str, str]:
    """A clean environment: nothing of this machine's (its pip settings name host paths) leaks in."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8", "QEMU_CPU": QEMU_CPU, "DEBIAN_FRONTEND": "noninteractive",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def arm_cpuinfo(folder: Path) -> Path:
    """/proc/cpuinfo as a Raspberry Pi 4 shows it, one Cortex-A72 per host CPU. qemu-user passes the host's
    x86 /proc/cpuinfo through, and LiteRT's CPU detection (the cpuinfo library behind XNNPACK) crashes
    with SIGSEGV on that mix of an Intel /proc/cpuinfo and Arm HWCAPs; on a real Pi both say Arm."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    fake = folder / "cpuinfo"
    fake.write_text("".join(
        f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n" for n in range(cpus))
        + "Model\t\t: Raspberry Pi 4 Model B (emulated: make arm64-check)\n")
    return fake


@contextmanager
def mounted(root: Path, work: Path):
    """/proc (with an Arm /proc/cpuinfo), /sys and /dev in the root while it is used; unmounted again
    whatever happens."""
    points = []
    try:
        for source, target, args in (("proc", "proc", ["-t", "proc"]), ("sysfs", "sys", ["-t", "sysfs"]),
                                     ("/dev", "dev", ["--rbind"])):
            path = root / target
            path.mkdir(exist_ok=True)
            subprocess.run(["mount", *args, source, str(path)], check=True)
            if target == "dev":
                subprocess.run(["mount", "--make-rslave", str(path)], check=True)
            points.append(path)
        subprocess.run(["mount", "--bind", str(arm_cpuinfo(work)), str(root / "proc/cpuinfo")], check=True)
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        yield
    finally:
        for path in reversed(points):
            subprocess.run(["umount", "-R", "-l", str(path)])


def chroot(root: Path, argv: list[str], *, user: str | None = None, capture: bool = False, check: bool = True,
           timeout: float | None = None) -> subprocess.CompletedProcess:
    if user:  # setpriv execs (su and runuser fork), so a signal to the chroot reaches the program itself
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]
    env = chroot_env() | ({"HOME": "/var/lib/naturevision"} if user else {})
    proc = subprocess.run(["chroot", str(root), *argv], env=env, text=True, timeout=timeout,
                          capture_output=capture)
    if check and proc.returncode != 0:
        detail = f":\n{proc.stdout}{proc.stderr}" if capture else ""
        fail(f"in the arm64 root, `{' '.join(argv)}` exited with {proc.returncode}{detail}")
    return proc
