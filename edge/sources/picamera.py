"""The Raspberry Pi camera through picamera2: a still every `interval_s`, handed on as JPEG bytes.

picamera2 comes from Raspberry Pi OS's apt (it needs libcamera's Python bindings, which pip cannot
build), so it is imported only when the config asks for this source, and its absence is a clear
start-up error rather than an ImportError on every unit.
"""

from __future__ import annotations

import importlib
import io
import time

from edge.sources.item import SourceError
from edge.sources.timed import DEFAULT_MAX_QUEUED, TimedSource

INSTALL_HINT = ("picamera2 is not installed: on Raspberry Pi OS run sudo apt install python3-picamera2, and "
                "create the service's venv with --system-site-packages so that it sees it")


def import_picamera2():
    try:
        return importlib.import_module("picamera2")
    except ImportError as exc:
        raise SourceError(f"{INSTALL_HINT} ({exc})") from None


class PicameraSource(TimedSource):
    def __init__(self, name: str, *, interval_s: float = 30.0, camera: int = 0,
                 size: tuple[int, int] | None = None, max_queued: int = DEFAULT_MAX_QUEUED, clock=time.time):
        super().__init__(name, interval_s, max_queued=max_queued, clock=clock)
        picamera2 = import_picamera2()
        self.origin = f"picamera2:{camera}"
        try:
            self._camera = picamera2.Picamera2(camera)
            self._camera.configure(self._camera.create_still_configuration(**({"main": {"size": tuple(size)}} if size else {})))
            self._camera.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises RuntimeError, IndexError ... for "no camera"
            raise SourceError(f"source {name!r}: cannot open Pi camera {camera}: {type(exc).__name__}: {exc}; "
                              f"check the ribbon cable and `rpicam-hello --list-cameras`") from None

    def capture(self) -> bytes:
        buffer = io.BytesIO()
        self._camera.capture_file(buffer, format="jpeg")
        return buffer.getvalue()

    def close(self) -> None:
        super().close()
        try:
            self._camera.close()
        except Exception:  # noqa: BLE001 - closing a camera that already failed must not hide the shutdown
            pass
