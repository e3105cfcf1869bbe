"""The Pi camera: a clear error when picamera2 is missing; the capture path with a fake picamera2
module put in sys.modules (the import boundary), since this machine has no camera."""

from __future__ import annotations

import sys
import types

import pytest
from broker import wait_for
from imagefiles import GREEN, solid

from edge.image.decode import open_frame
from edge.sources.item import SourceError
from edge.sources.picamera import PicameraSource


def test_without_picamera2_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # what `import picamera2` sees when it is absent
    with pytest.raises(SourceError, match=r"picamera2 is not installed: on Raspberry Pi OS run "
                                          r"sudo apt install python3-picamera2"):
        PicameraSource("pi", interval_s=30)


def fake_picamera2(fail_open: bool = False) -> types.ModuleType:
    class Picamera2:
        opened: list["Picamera2"] = []

        def __init__(self, camera_num=0):
            if fail_open:
                raise IndexError("list index out of range")  # what picamera2 raises with no camera attached
            self.started = self.closed = False
            Picamera2.opened.append(self)

        def create_still_configuration(self, **kwargs):
            return {"still": kwargs}

        def configure(self, config):
            self.config = config

        def start(self):
            self.started = True

        def capture_file(self, output, format="jpeg"):
            solid(GREEN, (80, 60)).save(output, format=format.upper())

        def close(self):
            self.closed = True

    module = types.ModuleType("picamera2")
    module.Picamera2 = Picamera2
    return module


def test_captures_jpeg_frames_at_the_interval(monkeypatch):
    module = fake_picamera2()
    monkeypatch.setitem(sys.modules, "picamera2", module)
    src = PicameraSource("pi", interval_s=0.01, size=(80, 60))
    camera = module.Picamera2.opened[0]
    assert camera.started and camera.config == {"still": {"main": {"size": (80, 60)}}}
    try:
        items = wait_for(lambda: src.poll(), 30, "a frame from the camera")
        assert open_frame(items[0].data).width == 80
        assert items[0].origin == "picamera2:0" and items[0].source == "pi"
    finally:
        src.close()
    assert camera.closed


def test_a_camera_that_does_not_open_is_an_error_at_start(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", fake_picamera2(fail_open=True))
    with pytest.raises(SourceError, match=r"cannot open Pi camera 0: IndexError.*ribbon cable"):
        PicameraSource("pi")
