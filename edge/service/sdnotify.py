"""sd_notify: tell systemd that the service is ready, alive (watchdog) or stopping.

The protocol is one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET
(a path, or "@name" for the abstract namespace). Written here directly: libsystemd's Python binding is
one more compiled dependency for a dozen lines. Without $NOTIFY_SOCKET (run by hand, in tests, under
another supervisor) every call does nothing.

    notify(READY=1, STATUS="classifying")      or      notify("READY=1", "STATUS=classifying")
    interval = watchdog_interval()             # seconds, or None when no watchdog is set for us
    ... every interval / 2: notify(WATCHDOG=1)
    notify(STOPPING=1)
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("nv.sdnotify")


def notify(*lines: str, **fields: object) -> bool:
    """Send the lines and KEY=VALUE fields in one datagram; False when there is no one to tell."""
    address = _address()
    if address is None:
        return False
    # A newline inside a value would start a new field: STATUS="a\nWATCHDOG=1" must not ping the watchdog.
    parts = [line.replace("\n", " ") for line in lines]
    parts += [f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()]
    if not parts:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(parts).encode("utf-8"))
    except OSError as exc:
        # Never fatal: a service must keep detecting even if the manager's socket is gone. If it was
        # a watchdog ping, systemd will restart us, which is the right outcome anyway.
        log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds (WatchdogSec=), or None when it is off or meant for another process.

    Ping at half of it: systemd kills the service when a whole interval passes without a WATCHDOG=1.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    # Set by systemd for the main process; a child that inherited the environment must not ping.
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


def _address() -> str | None:
    name = os.environ.get("NOTIFY_SOCKET", "")
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None  # absent, or a vsock address (VMs), which this service never runs under
