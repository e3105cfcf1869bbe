"""scripts/install-unit.sh into a scratch root: a real venv with this project's own wheel (built here,
offline), the user and folders by systemd's tools, the models, the unit and the config. Twice gives the
same state; an edited config is kept; --uninstall keeps the data; --purge removes it and the user."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-unit.sh"
SOURCES = ("pyproject.toml", "README.md", "constraints.txt", "edge", "converter", "basestation")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer chowns files: run as root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in ("systemd-sysusers", "systemd-tmpfiles", "userdel")),
                       reason="systemd-sysusers, systemd-tmpfiles and userdel are needed"),
]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """This project's wheel, built from a copy of the sources without network (no build isolation)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheels")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out), str(src)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def install(root: Path, *args: str) -> str:
    proc = subprocess.run(["bash", str(SCRIPT), "--root", str(root), "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def manifest(root: Path) -> dict[str, tuple]:
    """Every path under root: type, mode, owner, group and content (a file's SHA-256, a link's target)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = None
        entries[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                                                st.st_gid, content)
    return entries


def ids(root: Path, table: str, name: str) -> int | None:
    for line in (root / "etc" / table).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    return None


def test_install_twice_then_uninstall_then_purge(tmp_path, wheels):
    root = tmp_path / "root"
    root.mkdir()
    opts = ("--wheels", str(wheels), "--no-deps")

    out = install(root, *opts)
    assert "not enabled" in out  # no systemd in a scratch root: nothing is enabled or started
    uid, gid = ids(root, "passwd", "naturevision"), ids(root, "group", "naturevision")
    assert uid is not None and gid is not None
    first = manifest(root)

    venv = root / "opt" / "naturevision"
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import edge, basestation; print(edge.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == subprocess.run([sys.executable, "-c", "import edge; print(edge.__version__)"], cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout.strip()
    assert (venv / "bin" / "nv-edge").exists()
    for bundle in ROOT.glob("models/*/*.nvm"):
        installed = venv / "models" / bundle.parent.name / bundle.name
        assert installed.read_bytes() == bundle.read_bytes()
        assert first[str(installed.relative_to(root))][1:4] == (0o644, 0, 0)
    rel = {name: first[name][1:4] for name in ("etc/naturevision", "etc/naturevision/edge.toml", "var/lib/naturevision",
                                                "srv/naturevision/incoming", "srv/naturevision/done",
                                                "etc/systemd/system/naturevision-edge.service")}
    assert rel == {"etc/naturevision": (0o750, 0, gid), "etc/naturevision/edge.toml": (0o640, 0, gid),
                   "var/lib/naturevision": (0o750, uid, gid), "srv/naturevision/incoming": (0o2770, uid, gid),
                   "srv/naturevision/done": (0o750, uid, gid),
                   "etc/systemd/system/naturevision-edge.service": (0o644, 0, 0)}
    assert (root / "etc/naturevision/edge.toml").read_bytes() == (ROOT / "systemd/edge.example.toml").read_bytes()

    out = install(root, *opts)
    assert "unchanged since the last install" in out and "kept as it is" in out
    second = manifest(root)
    assert second == first, {k: (first.get(k), second.get(k)) for k in first.keys() ^ second.keys() or
                             [k for k in first if first[k] != second[k]]}
    for table in ("passwd", "group", "shadow"):  # one user, one group: no duplicates
        assert sum(line.startswith("naturevision:") for line in (root / "etc" / table).read_text().splitlines()) == 1

    # the technician's config, a record waiting in the outbox and a frame in the watched folder
    config = root / "etc/naturevision/edge.toml"
    config.write_text('[device]\nid = "unit-42"\n')
    (root / "var/lib/naturevision/outbox.db").write_bytes(b"records not yet delivered")
    (root / "srv/naturevision/incoming/frame.jpg").write_bytes(b"a frame not yet classified")
    install(root, *opts)
    assert config.read_text() == '[device]\nid = "unit-42"\n'

    out = install(root, "--uninstall")
    assert not venv.exists()
    assert not (root / "etc/systemd/system/naturevision-edge.service").exists()
    assert not (root / "usr/lib/sysusers.d/naturevision.conf").exists()
    assert config.read_text() == '[device]\nid = "unit-42"\n'
    assert (root / "var/lib/naturevision/outbox.db").exists() and (root / "srv/naturevision/incoming/frame.jpg").exists()
    assert ids(root, "passwd", "naturevision") == uid
    install(root, "--uninstall")  # again: nothing left to remove is no error

    install(root, "--uninstall", "--purge")
    for gone in ("etc/naturevision", "var/lib/naturevision", "srv/naturevision", "opt/naturevision"):
        assert not (root / gone).exists(), gone
    assert ids(root, "passwd", "naturevision") is None and ids(root, "group", "naturevision") is None
    assert ids(root, "group", "audio") is not None  # shared groups stay


def test_refuses_a_wheel_folder_without_the_package(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--root", str(tmp_path), "--wheels", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "no naturevision-*.whl" in proc.stderr
