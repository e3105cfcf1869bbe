"""What the unit says about itself: the heartbeat (`health`) and availability (`status`) payloads.

Both are JSON; their schemas are `edge/records/schema/health.schema.json` and `status.schema.json`.
Every probe degrades to null / "unknown" instead of failing: a heartbeat must always go out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from edge import __version__
from edge.delivery.outbox import OutboxStats
from edge.records.record import iso_utc

PAYLOAD_SCHEMA = "1.0"
THERMAL = Path("/sys/class/thermal")


def status_payload(device: str, state: str) -> bytes:
    """`online`, `offline` (the Last Will: its time is when the lost connection was opened) or `stopped`."""
    return _json({"schema": PAYLOAD_SCHEMA, "device": device, "state": state,
                  "time": iso_utc(datetime.now(timezone.utc)), "software": __version__})


def health_payload(device: str, *, started: float, stats: OutboxStats, outbox_dir: Path,
                   models: tuple[dict, ...], protocol: str, skipped_files: int | None = None) -> bytes:
    """`skipped_files`: entries the watched folders do not read (FIFOs, devices ...); left out when
    the caller has no sources (`nv-edge publish`)."""
    now = time.time()
    oldest = stats.oldest_age_s(now)
    payload = {
        "schema": PAYLOAD_SCHEMA,
        "device": device,
        "time": iso_utc(datetime.now(timezone.utc)),
        "software": __version__,
        "mqtt": protocol,
        "uptime_s": round(time.monotonic() - started, 1),
        "system_uptime_s": system_uptime_s(),
        "outbox": {
            "depth": stats.depth,
            "unsent": stats.unsent,
            "bytes": stats.bytes,
            "oldest_age_s": None if oldest is None else round(oldest, 1),
            "evicted": stats.evicted,
        },
        "disk_free_bytes": disk_free_bytes(outbox_dir),
        "cpu_temp_c": cpu_temperature_c(),
        "models": [dict(m) for m in models],
        "clock": clock_synchronised(),
    }
    if skipped_files is not None:
        payload["skipped_files"] = skipped_files
    return _json(payload)


def system_uptime_s() -> float | None:
    try:
        return round(float(Path("/proc/uptime").read_text().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


def disk_free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def cpu_temperature_c(thermal: Path = THERMAL) -> float | None:
    """The CPU's thermal zone (a Pi calls it cpu-thermal), else the first readable zone."""
    try:
        zones = sorted(thermal.glob("thermal_zone*"))
    except OSError:
        return None

    def kind(zone: Path) -> str:
        try:
            return (zone / "type").read_text().strip().lower()
        except OSError:
            return ""

    for zone in sorted(zones, key=lambda z: "cpu" not in kind(z)):
        try:
            return round(int((zone / "temp").read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            continue
    return None


def clock_synchronised() -> dict:
    """Is the wall clock (and so every capture time we stamp) trustworthy? A Pi has no RTC: until
    NTP or GPS sets it, it starts from the last saved time. Answers true, false or "unknown"."""
    try:
        proc = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=3)
        answer = proc.stdout.strip().lower()
        if proc.returncode == 0 and answer in ("yes", "no"):
            return {"synchronized": answer == "yes", "source": "timedatectl"}
    except (OSError, subprocess.SubprocessError):
        pass
    kernel = _adjtimex_synchronised()
    if kernel is not None:
        return {"synchronized": kernel, "source": "adjtimex"}
    return {"synchronized": "unknown", "source": None}


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; the fields after `status` are only padding for us
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("_rest", ctypes.c_byte * 256)]


_TIME_ERROR = 5  # adjtimex's return value when the kernel considers the clock unsynchronised
_STA_UNSYNC = 0x0040


def _adjtimex_synchronised() -> bool | None:
    """Read-only adjtimex (modes = 0 needs no privilege): the kernel's own sync flag, which NTP
    daemons (chrony, ntpd, systemd-timesyncd) maintain."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not (timex.status & _STA_UNSYNC)


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
