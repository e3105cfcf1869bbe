"""An IP camera's snapshot URL (e.g. Hikvision `/ISAPI/Streaming/channels/101/picture`), fetched
every `interval_s` with urllib: no extra dependency on the unit.

A snapshot counts only if the camera answers 200 with an image/* Content-Type within `timeout_s`
and `max_bytes`: many cameras answer a failure with a 200 HTML page, which must not be classified
as a frame. Basic and digest auth (the password comes from a file, never from the config), TLS
verified by default against the system CAs or `ca_file`. Environment proxies are ignored: a proxy
set for package downloads must not carry traffic meant for a camera on the local network.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from edge import __version__
from edge.sources.item import SourceError
from edge.sources.timed import DEFAULT_MAX_QUEUED, CaptureError, TimedSource

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_CHUNK = 64 * 1024


class SnapshotSource(TimedSource):
    def __init__(self, name: str, url: str, *, interval_s: float = 60.0, timeout_s: float = 10.0,
                 username: str | None = None, password: str | None = None, ca_file: str | Path | None = None,
                 tls_verify: bool = True, max_bytes: int = DEFAULT_MAX_BYTES, max_queued: int = DEFAULT_MAX_QUEUED,
                 clock=time.time):
        super().__init__(name, interval_s, max_queued=max_queued, clock=clock)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"source {name!r}: url = {url!r} is not an http:// or https:// URL")
        if parts.username or parts.password:
            raise SourceError(f"source {name!r}: url has a user name or password in it; put them in `username` "
                              f"and `password_file` instead (the URL goes into every record)")
        if username and password is None:
            raise SourceError(f"source {name!r}: username is set but no password; set password_file")
        self.url = url
        self.origin = url
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if parts.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=tls_context(name, ca_file, tls_verify)))
        if username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, url, username, password)
            # The digest handler answers Digest challenges and passes Basic ones on to the basic handler.
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords), urllib.request.HTTPBasicAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def capture(self) -> bytes:
        """Fetch one snapshot; raises CaptureError saying what went wrong and what to check."""
        where = f"source {self.name!r}: {self.url}"
        request = urllib.request.Request(self.url, headers={"Accept": "image/*", "User-Agent": f"naturevision-edge/{__version__}"})
        deadline = time.monotonic() + self.timeout_s  # urllib's timeout is per socket operation, not per fetch
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                if response.status != 200:
                    raise CaptureError(f"{where}: HTTP {response.status} {response.reason}, expected 200 with an image")
                kind = response.headers.get("Content-Type", "")
                if not kind.lower().startswith("image/"):
                    raise CaptureError(f"{where}: answered with Content-Type {kind or 'none'!r}, not an image "
                                       f"(an error or login page?); check the URL in a browser")
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise CaptureError(f"{where}: snapshot is {int(length):,} bytes, above the limit of {self.max_bytes:,}")
                chunks, size = [], 0
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise CaptureError(f"{where}: snapshot is above the limit of {self.max_bytes:,} bytes")
                    if time.monotonic() > deadline:
                        raise CaptureError(f"{where}: snapshot not received within timeout_s = {self.timeout_s:g} s")
                    chunks.append(chunk)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 401:
                raise CaptureError(f"{where}: HTTP 401, the camera refused the login; check `username` and "
                                   f"`password_file`") from None
            raise CaptureError(f"{where}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise CaptureError(f"{where}: no answer within timeout_s = {self.timeout_s:g} s") from None
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise CaptureError(f"{where}: the camera's TLS certificate is not trusted ({reason.verify_message}); "
                                   f"set ca_file to the CA that signed it") from None
            raise CaptureError(f"{where}: cannot reach the camera: {reason}") from None
        except TimeoutError:
            raise CaptureError(f"{where}: no answer within timeout_s = {self.timeout_s:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise CaptureError(f"{where}: broken answer: {type(exc).__name__}: {exc}") from None
        data = b"".join(chunks)
        if not data:
            raise CaptureError(f"{where}: empty snapshot (0 bytes)")
        return data


def tls_context(name: str, ca_file: str | Path | None, verify: bool) -> ssl.SSLContext:
    if ca_file is not None and not Path(ca_file).is_file():
        raise SourceError(f"source {name!r}: ca_file {ca_file} does not exist; fix `ca_file` or remove it")
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        raise SourceError(f"source {name!r}: ca_file {ca_file} is not a PEM certificate: {exc}") from None
    if not verify:  # a camera with a self-signed certificate and no CA to pin: an explicit choice
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def read_password_file(name: str, path: str | Path) -> str:
    """The first line of `password_file`: kept out of the config so the config can be shared."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"source {name!r}: cannot read password_file {path}: {getattr(exc, 'strerror', None) or exc}; "
                          f"write the camera password into it (one line, readable by the service)") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise SourceError(f"source {name!r}: password_file {path} is empty; write the camera password into it")
    return lines[0]
