"""systemd/: the service units verify with systemd-analyze, carry their hardening, and agree with the
example config; sysusers and tmpfiles files are applied to a scratch root by systemd's own tools."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNITS = ("naturevision-edge.service", "naturevision-base.service", "naturevision-web.service")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """[Service] and [Unit] settings as key -> values (a key may repeat), continuation lines joined."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(" ".join(value.split()))
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    assert key in settings, f"{key}= is missing"
    return settings[key][-1]


def runnable_copy(unit: str, folder: Path) -> Path:
    """The unit with ExecStart= pointed at a binary that exists here, so that verify checks the rest
    instead of stopping at 'not executable' (nv-edge is not installed under /opt in the test machine)."""
    text = (SYSTEMD / unit).read_text().replace("\\\n", " ")
    text, count = re.subn(r"(?m)^ExecStart=\S+", "ExecStart=/usr/bin/true", text)
    assert count == 1
    copy = folder / unit
    copy.write_text(text)
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.skipif(not Path("/usr/bin/true").exists(), reason="no /usr/bin/true to stand in for ExecStart")
@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_without_warnings(unit, tmp_path):
    copy = runnable_copy(unit, tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=120)
    # verify exits 0 on unknown keys and bad values, which it only reports: any output about our file fails.
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, output
    assert unit not in output, output


def test_edge_unit_is_a_hardened_notify_service():
    s = unit_settings(SYSTEMD / "naturevision-edge.service")
    expected = {
        "Type": "notify", "NotifyAccess": "main", "Restart": "always", "User": "naturevision",
        "Group": "naturevision", "SupplementaryGroups": "audio video", "StateDirectory": "naturevision",
        "ConfigurationDirectory": "naturevision", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
        "PrivateTmp": "yes", "ProtectHome": "yes", "PrivateDevices": "no", "DevicePolicy": "closed",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "ExecStart": "/opt/naturevision/bin/nv-edge run --config /etc/naturevision/edge.toml",
    }
    assert {key: one(s, key) for key in expected} == expected
    assert {"char-alsa rw", "char-video4linux rw"} <= set(s["DeviceAllow"])
    assert s["ReadWritePaths"] == ["-/srv/naturevision"]  # the state dir is writable through StateDirectory=
    for key in ("WatchdogSec", "RestartSec", "TimeoutStopSec"):
        assert re.fullmatch(r"\d+s", one(s, key)), key
    assert 30 <= int(one(s, "WatchdogSec")[:-1]) <= 300
    assert int(one(s, "TimeoutStopSec")[:-1]) >= 30  # time to finish the current item and flush the outbox
    # a 1 GB, 4-core board: headroom for the OS in memory and one core left free
    high, hard = (int(one(s, key).removesuffix("M")) for key in ("MemoryHigh", "MemoryMax"))
    assert high < hard <= 800
    assert int(one(s, "CPUQuota").removesuffix("%")) <= 300


def test_base_unit_runs_the_listener_with_the_installed_paths():
    s = unit_settings(SYSTEMD / "naturevision-base.service")
    command = one(s, "ExecStart").split()
    assert command[:2] == ["/opt/naturevision/bin/nv-base", "listen"]
    options = dict(zip(command[2::2], command[3::2]))
    assert set(options) == {"--db", "--cafile", "--certfile", "--keyfile", "--username", "--password-file"}
    assert options["--db"].startswith("/var/lib/naturevision/") and options["--username"] == "nv-base"
    for key, value in {"User": "naturevision", "Restart": "always", "ProtectSystem": "strict",
                       "PrivateDevices": "yes", "NoNewPrivileges": "yes"}.items():
        assert one(s, key) == value


def test_web_unit_serves_the_listeners_database_with_the_base_config():
    s = unit_settings(SYSTEMD / "naturevision-web.service")
    listener = unit_settings(SYSTEMD / "naturevision-base.service")
    command = one(s, "ExecStart").split()
    assert command[:2] == ["/opt/naturevision/bin/nv-base", "serve"]
    options = dict(zip(command[2::2], command[3::2]))
    listen = one(listener, "ExecStart").split()
    assert options["--db"] == listen[listen.index("--db") + 1]
    assert options["--config"] == "/etc/" + one(s, "ConfigurationDirectory") + "/base.toml"
    for key, value in {"User": "naturevision", "Restart": "always", "ProtectSystem": "strict",
                       "NoNewPrivileges": "yes", "StateDirectory": one(listener, "StateDirectory")}.items():
        assert one(s, key) == value


def test_the_example_config_uses_the_folders_the_unit_opens():
    s = unit_settings(SYSTEMD / "naturevision-edge.service")
    cfg = tomllib.loads((SYSTEMD / "edge.example.toml").read_text())
    assert cfg["device"]["state_dir"] == "/var/lib/" + one(s, "StateDirectory")
    writable = one(s, "ReadWritePaths").lstrip("-")
    for source in cfg["image"]["sources"]:
        for key in ("path", "done_dir"):
            if key in source:
                assert source[key].startswith(writable + "/"), f"{source[key]} is read-only for the service"
    assert "/etc/" + one(s, "ConfigurationDirectory") + "/edge.toml" in one(s, "ExecStart")


def test_readme_install_steps_match_the_units():
    readme = (SYSTEMD / "README.md").read_text()
    for needle in ("/opt/naturevision", "naturevision.sysusers", "naturevision.tmpfiles", "/etc/naturevision/edge.toml",
                   "naturevision-edge.service", "naturevision-base.service", "nv-edge config check", "journalctl",
                   "naturevision-web.service", "/etc/naturevision/base.toml", "nv-base config check", "nv-base user add"):
        assert needle in readme, needle


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers/systemd-tmpfiles are not installed")
def test_sysusers_and_tmpfiles_create_the_user_and_folders(tmp_path):
    for name, folder in (("naturevision.sysusers", "usr/lib/sysusers.d"), ("naturevision.tmpfiles", "usr/lib/tmpfiles.d")):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(SYSTEMD / name, tmp_path / folder / "naturevision.conf")
    (tmp_path / "etc").mkdir()
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        args = [tool, f"--root={tmp_path}"] + (["--create"] if tool == "systemd-tmpfiles" else [])
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    user = next(line.split(":") for line in passwd.splitlines() if line.startswith("naturevision:"))
    assert user[5:] == ["/var/lib/naturevision", "/usr/sbin/nologin"]
    groups = {line.split(":")[0]: line.split(":")[3] for line in (tmp_path / "etc" / "group").read_text().splitlines()}
    assert "naturevision" in groups["audio"] and "naturevision" in groups["video"]
    incoming = (tmp_path / "srv" / "naturevision" / "incoming").stat()
    assert stat.S_IMODE(incoming.st_mode) == 0o2770 and incoming.st_uid == int(user[2])
    etc = (tmp_path / "etc" / "naturevision").stat()
    assert stat.S_IMODE(etc.st_mode) == 0o750 and etc.st_uid == 0 and etc.st_gid == int(user[3])
