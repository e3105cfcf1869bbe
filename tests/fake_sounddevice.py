"""A stand-in for the `sounddevice` module, for the tests of the microphone path (there is no
microphone, nor PortAudio, on a test machine). It is injected at the import boundary
(`monkeypatch.setitem(sys.modules, "sounddevice", fake)`), so edge/audio/microphone.py runs unchanged.

Its InputStream plays real samples to the callback from its own thread, in blocks of the size
asked for, as PortAudio does: as fast as it can (`pace=0`), or at `pace` x real time.
"""

from __future__ import annotations

import threading
import time
import types
from dataclasses import dataclass, field

import numpy as np


class PortAudioError(Exception):
    pass


class CallbackStop(Exception):
    pass


@dataclass
class FakeDevice:
    name: str
    channels: int  # max input channels; 0 = an output-only device
    default_rate: int
    rates: tuple[int, ...] = ()  # rates it accepts (default: only its default rate)
    audio: dict[int, np.ndarray] = field(default_factory=dict)  # rate -> mono samples it "hears"
    only_channels: int | None = None  # accepts only this channel count (e.g. a stereo-only USB card)


@dataclass
class Flags:
    input_overflow: bool = False


class FakeStream:
    def __init__(self, module: "FakeSoundDevice", *, device, channels, samplerate, dtype, blocksize, callback, **_):
        self.module = module
        self.device = module.devices[device]
        self.channels, self.samplerate, self.blocksize, self.callback = channels, samplerate, blocksize, callback
        assert dtype == "float32"
        if module.open_error:
            raise PortAudioError(module.open_error)
        self.active = False
        self.done = threading.Event()  # every sample delivered (or stopped)
        self.overflows = 0
        self.blocks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        module.streams.append(self)

    def start(self):
        self.active = True
        self._thread.start()

    def _play(self):
        audio = self.device.audio.get(self.samplerate)
        if audio is None:  # a device that never delivers: a stall
            self._stop.wait()
            self.done.set()
            return
        audio = np.asarray(audio, dtype=np.float32)
        position = 0
        while not self._stop.is_set():
            if position >= audio.size:
                if not self.module.loop:
                    break
                position = 0
            block = audio[position:position + self.blocksize]
            position += block.size
            self.blocks += 1
            flagged = bool(self.module.overflow_every) and self.blocks % self.module.overflow_every == 0
            self.overflows += flagged
            indata = np.repeat(block[:, None], self.channels, axis=1)
            self.callback(indata, block.size, None, Flags(input_overflow=flagged))
            if self.module.on_block is not None:
                self.module.on_block(self)
            if self.module.pace:
                time.sleep(block.size / self.samplerate / self.module.pace)
        self.active = False
        self.done.set()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.active = False

    def close(self):
        self.closed = True


class FakeSoundDevice(types.ModuleType):
    def __init__(self, devices: list[FakeDevice], *, default: int = -1, pace: float = 0.0, loop: bool = False,
                 overflow_every: int = 0, on_block=None, open_error: str | None = None):
        super().__init__("sounddevice")
        self.devices = devices
        self.default = types.SimpleNamespace(device=[default, -1])
        self.pace, self.loop, self.overflow_every, self.on_block, self.open_error = pace, loop, overflow_every, on_block, open_error
        self.streams: list[FakeStream] = []
        self.PortAudioError = PortAudioError
        self.CallbackStop = CallbackStop

    def query_devices(self):
        return [{"name": d.name, "index": i, "hostapi": 0, "max_input_channels": d.channels,
                 "max_output_channels": 2, "default_samplerate": float(d.default_rate)}
                for i, d in enumerate(self.devices)]

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        d = self.devices[device]
        if samplerate not in (d.rates or (d.default_rate,)):
            raise PortAudioError("Invalid sample rate [PaErrorCode -9997]")
        if channels > d.channels or (d.only_channels and channels != d.only_channels):
            raise PortAudioError("Invalid number of channels [PaErrorCode -9998]")

    def InputStream(self, **kwargs):  # noqa: N802 - the real module's name
        return FakeStream(self, **kwargs)
