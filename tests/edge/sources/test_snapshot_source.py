"""The snapshot URL against a real HTTP server on 127.0.0.1 serving real JPEGs: what counts as a
snapshot, what is an error (and never a frame), auth, TLS, and a capture loop that survives errors."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from broker import free_port, make_pki, wait_for
from imagefiles import RED, encode, solid

from edge.image.decode import open_frame
from edge.sources.item import SourceError
from edge.sources.snapshot import SnapshotSource, read_password_file
from edge.sources.timed import MAX_BACKOFF_S, CaptureError, backoff_s

USER, PASSWORD, REALM, NONCE = "viewer", "s3cret", "camera", "5f1e0c"
JPEG = encode(solid(RED, (64, 48)), "JPEG")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Camera(BaseHTTPRequestHandler):
    """Routes like a real IP camera's, and a few of the ways real cameras fail."""

    release = threading.Event()  # /slow answers once this is set
    flaky_failures = [0]  # /flaky answers 500 this many times, then the picture

    def do_GET(self):
        route = self.path
        if route == "/snap.jpg":
            return self.send(200, "image/jpeg", JPEG)
        if route == "/html":
            return self.send(200, "text/html; charset=utf-8", b"<html><body>Please log in</body></html>")
        if route == "/404":
            return self.send(404, "text/plain", b"no such channel")
        if route == "/500":
            return self.send(500, "text/plain", b"encoder busy")
        if route == "/slow":
            self.release.wait(10)
            return self.send(200, "image/jpeg", JPEG)
        if route == "/flaky":
            if self.flaky_failures[0] > 0:
                self.flaky_failures[0] -= 1
                return self.send(500, "text/plain", b"warming up")
            return self.send(200, "image/jpeg", JPEG)
        if route == "/basic.jpg":
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.send(401, "text/plain", b"login", {"WWW-Authenticate": f'Basic realm="{REALM}"'})
            return self.send(200, "image/jpeg", JPEG)
        if route == "/digest.jpg":
            if not self.digest_ok(self.headers.get("Authorization", "")):
                challenge = f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth", algorithm="MD5"'
                return self.send(401, "text/plain", b"login", {"WWW-Authenticate": challenge})
            return self.send(200, "image/jpeg", JPEG)
        self.send(404, "text/plain", b"?")

    def digest_ok(self, header: str) -> bool:
        if not header.startswith("Digest "):
            return False
        f = dict(re.findall(r'(\w+)="?([^",]+)"?', header[7:]))
        ha1, ha2 = md5(f"{USER}:{REALM}:{PASSWORD}"), md5(f"GET:{f.get('uri')}")
        expected = md5(f"{ha1}:{NONCE}:{f.get('nc')}:{f.get('cnonce')}:{f.get('qop')}:{ha2}")
        return f.get("username") == USER and f.get("response") == expected

    def send(self, status: int, content_type: str, body: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class CameraServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the client hangs up on purpose here (timeouts, size limits, refused certificates)


def serve(context: ssl.SSLContext | None = None):
    server = CameraServer(("127.0.0.1", 0), Camera)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def camera():
    Camera.release.clear()
    server, thread = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Camera.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def snapshot(url, **kwargs) -> SnapshotSource:
    kwargs.setdefault("timeout_s", 5.0)
    return SnapshotSource("cam", url, **kwargs)


def test_a_snapshot_is_the_jpeg_bytes_with_the_time_received(camera):
    src = snapshot(camera + "/snap.jpg", clock=lambda: 1234.5)
    item = src.capture_once()
    assert item.data == JPEG and item.path is None
    assert item.arrived == 1234.5 and item.origin == camera + "/snap.jpg" and item.source == "cam"
    assert open_frame(item.data).width == 64
    assert src.stats().captured == 1 and src.stats().failures == 0


@pytest.mark.parametrize(("route", "kwargs", "message"), [
    ("/404", {}, r"HTTP 404"),
    ("/500", {}, r"HTTP 500"),
    ("/html", {}, r"Content-Type 'text/html; charset=utf-8', not an image"),
    ("/slow", {"timeout_s": 0.3}, r"no answer within timeout_s = 0.3 s"),
    ("/snap.jpg", {"max_bytes": 100}, r"above the limit of 100"),
    ("/basic.jpg", {"username": USER, "password": "wrong"}, r"HTTP 401.*check `username` and `password_file`"),
    ("/digest.jpg", {"username": USER, "password": "wrong"}, r"HTTP 401.*check `username` and `password_file`"),
    ("/basic.jpg", {}, r"HTTP 401"),
])
def test_failures_are_errors_that_say_why_never_frames(camera, route, kwargs, message):
    src = snapshot(camera + route, **kwargs)
    for n in (1, 2):
        with pytest.raises(CaptureError, match=message):
            src.capture_once()
        stats = src.stats()
        assert (stats.failures, stats.consecutive_failures, stats.captured) == (n, n, 0)
        assert re.search(message, stats.last_error)


def test_basic_and_digest_auth_with_the_right_password(camera):
    for route in ("/basic.jpg", "/digest.jpg"):
        assert snapshot(camera + route, username=USER, password=PASSWORD).capture_once().data == JPEG


def test_a_camera_that_is_off_is_an_error(tmp_path):
    src = snapshot(f"http://127.0.0.1:{free_port()}/snap.jpg")
    with pytest.raises(CaptureError, match=r"cannot reach the camera"):
        src.capture_once()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test CA")
def test_https_is_verified_against_the_ca_file(tmp_path):
    pki = make_pki(tmp_path / "pki", users=[])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server, thread = serve(context)
    url = f"https://127.0.0.1:{server.server_address[1]}/snap.jpg"
    try:
        assert snapshot(url, ca_file=pki.ca).capture_once().data == JPEG
        with pytest.raises(CaptureError, match=r"TLS certificate is not trusted.*set ca_file"):
            snapshot(url).capture_once()  # the system CAs do not know this camera
        with pytest.raises(CaptureError, match=r"TLS certificate is not trusted"):
            snapshot(url, ca_file=pki.rogue_ca).capture_once()
        assert snapshot(url, tls_verify=False).capture_once().data == JPEG
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_capture_loop_survives_errors_backs_off_and_recovers(camera):
    Camera.flaky_failures[0] = 2
    src = snapshot(camera + "/flaky", interval_s=0.05)
    try:
        items = wait_for(lambda: src.poll(), 30, "a snapshot after two failures")
        assert items[0].data == JPEG
        stats = src.stats()
        assert stats.failures == 2 and stats.consecutive_failures == 0 and stats.captured >= 1
    finally:
        src.close()


def test_backoff_doubles_per_failure_and_is_capped():
    assert [backoff_s(60, n) for n in range(5)] == [60, 120, 240, 480, MAX_BACKOFF_S]
    assert backoff_s(60, 10_000) == MAX_BACKOFF_S
    assert backoff_s(3600, 3) == 3600  # never sooner than the interval itself


def test_the_loop_keeps_only_the_newest_frames_when_nobody_takes_them(camera):
    src = snapshot(camera + "/snap.jpg", interval_s=0.01, max_queued=2)
    try:
        src.poll()  # starts the thread
        wait_for(lambda: src.stats().dropped >= 1, 30, "a snapshot pushed out of the queue")
        assert len(src.poll()) <= 2
    finally:
        src.close()


def test_bad_settings_are_errors_at_start(tmp_path):
    with pytest.raises(SourceError, match=r"url = 'ftp://cam/x.jpg' is not an http"):
        SnapshotSource("cam", "ftp://cam/x.jpg")
    with pytest.raises(SourceError, match=r"user name or password in it; put them in `username`"):
        SnapshotSource("cam", "http://viewer:pw@cam/x.jpg")
    with pytest.raises(SourceError, match=r"ca_file .*missing.pem does not exist"):
        SnapshotSource("cam", "https://cam/x.jpg", ca_file=tmp_path / "missing.pem")
    with pytest.raises(SourceError, match=r"cannot read password_file .*camera.pass.*write the camera password"):
        read_password_file("cam", tmp_path / "camera.pass")
    (tmp_path / "camera.pass").write_text("s3cret\n")
    assert read_password_file("cam", tmp_path / "camera.pass") == "s3cret"
