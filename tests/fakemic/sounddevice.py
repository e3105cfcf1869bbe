"""Imported as `sounddevice` by an `nv-edge run` subprocess in the tests (PYTHONPATH=tests/fakemic): a USB
microphone at 48 kHz that hears the WAV named by $NV_FAKE_MIC_WAV, looped, in real time. The service's
microphone code runs unchanged above it (tests/fake_sounddevice.py is the stand-in at that boundary)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fake_sounddevice as fake  # noqa: E402

from edge.audio.audiofile import read_audio  # noqa: E402

_clip = read_audio(os.environ["NV_FAKE_MIC_WAV"], 48_000)
sys.modules[__name__] = fake.FakeSoundDevice(
    [fake.FakeDevice("HDA Intel PCH: ALC892 Analog (hw:0,0)", 2, 44_100),
     fake.FakeDevice("USB PnP Sound Device: Audio (hw:1,0)", 1, 48_000, audio={48_000: _clip.samples})],
    default=0, pace=1.0, loop=True)
