"""Real local servers for the notification tests: an HTTP webhook, one that never answers, an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Webhook:
    """An HTTP server on a free loopback port (or `port`) that keeps every JSON body POSTed to it.
    `statuses` are answered in turn (then 200 for ever)."""

    def __init__(self, statuses: tuple[int, ...] = (), port: int = 0):
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                hook.attempts += 1
                status = hook.statuses.pop(0) if hook.statuses else 200
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeadWebhook:
    """A port that takes connections (the kernel's backlog) and never answers: the worst webhook."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(100)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def dead_webhook():
    hook = DeadWebhook()
    yield hook
    hook.close()


@pytest.fixture
def smtp_server():
    """aiosmtpd on a free loopback port; yields (port, messages) with each message as email.message.Message."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    messages = []

    class Keep(Message):
        def handle_message(self, message):
            messages.append(message)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()
