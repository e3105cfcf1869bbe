"""edge/service/sdnotify.py against real AF_UNIX datagram sockets: one bound to a path, one abstract."""

from __future__ import annotations

import os
import socket

import pytest

from edge.service.sdnotify import notify, watchdog_interval


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """systemd's side: a datagram socket bound in a temp dir, named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)  # a failure to send shows as an error, not a hung test
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_fields_arrive_as_one_datagram_of_lines(manager):
    assert notify(READY=1, STATUS="classifying 2 sources") is True
    assert manager.recv(4096) == b"READY=1\nSTATUS=classifying 2 sources"


def test_lines_and_fields_can_be_mixed(manager):
    assert notify("WATCHDOG=1", STATUS="ok")
    assert manager.recv(4096) == b"WATCHDOG=1\nSTATUS=ok"
    assert notify("STOPPING=1")
    assert manager.recv(4096) == b"STOPPING=1"


def test_a_newline_in_a_value_cannot_add_a_field(manager):
    notify(STATUS="bad frame\nWATCHDOG=1")
    assert manager.recv(4096) == b"STATUS=bad frame WATCHDOG=1"


def test_abstract_namespace_socket(monkeypatch):
    name = f"nv-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify(READY=1)
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify(READY=1) is False


def test_a_socket_that_is_gone_is_reported_not_raised(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert notify(WATCHDOG=1) is False
    assert "sd_notify to" in caplog.text and "gone" in caplog.text


def test_watchdog_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    assert watchdog_interval() == 120.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 120.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "", "abc", "-5"):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert watchdog_interval() is None
