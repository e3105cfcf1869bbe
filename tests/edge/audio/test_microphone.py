"""edge/audio/microphone.py with a fake `sounddevice` (tests/fake_sounddevice.py) playing the committed
ESC-10 recordings to the real callback, from its own thread, in device-sized blocks."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from audiofiles import CHAINSAW, COMPOSITE, RATE, silence
from fake_sounddevice import FakeDevice, FakeSoundDevice

from edge.audio.alert_recording import AlertRecorder
from edge.audio.audiofile import read_audio
from edge.audio.microphone import LiveWindow, Microphone, MicrophoneError, find_device, hop_samples, import_sounddevice
from edge.features.logmel import LogMelSpec, clip_windows, resample

SPEC = LogMelSpec()
HOP = hop_samples(SPEC, 0.5)
SIZE = SPEC.window_samples


@pytest.fixture(scope="module")
def composite() -> np.ndarray:
    return read_audio(COMPOSITE).samples  # 15 s at 16 kHz


def devices(audio16=None, audio48=None) -> list[FakeDevice]:
    return [
        FakeDevice("HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2, 44_100, rates=(44_100, 16_000)),
        FakeDevice("HDMI 0 (hw:0,3)", 0, 48_000),
        FakeDevice("USB PnP Sound Device: Audio (hw:1,0)", 1, 48_000, rates=(48_000, 16_000),
                   audio={16_000: audio16} if audio16 is not None else {}),
        FakeDevice("Stereo USB Codec (hw:2,0)", 2, 48_000, rates=(48_000,), only_channels=2,
                   audio={48_000: audio48} if audio48 is not None else {}),
    ]


@pytest.fixture
def fake(monkeypatch, composite):
    def install(**kwargs) -> FakeSoundDevice:
        module = FakeSoundDevice(kwargs.pop("devices", None) or devices(composite), **kwargs)
        monkeypatch.setitem(sys.modules, "sounddevice", module)
        return module

    return install


def total_windows(samples: int) -> int:
    return (samples - SIZE) // HOP + 1


def test_every_window_of_a_recording_arrives_as_a_file_would_give_it(fake, composite):
    sd = fake()
    with Microphone(SPEC, "usb pnp", max_lag_s=20, buffer_s=40) as mic:
        got = list(mic.windows())
    assert mic.device.index == 2 and mic.device_rate == RATE, "opened at the model's rate: no resampling"
    assert sd.streams[0].channels == 1 and sd.streams[0].blocksize == 1600
    assert [w.number for w in got] == list(range(total_windows(composite.size)))
    for w in got:
        np.testing.assert_array_equal(w.samples, composite[w.number * HOP:w.number * HOP + SIZE])
        assert w.offset_s == w.number * 0.5 and w.duration_s == SIZE / RATE
    # the same log-mel windows as the file path (clip_windows), bit for bit
    features, places = clip_windows(composite, SPEC, 0.5)
    from edge.features.logmel import log_mel
    np.testing.assert_array_equal(log_mel(got[7].samples, SPEC), features[7])
    s = mic.stats()
    assert (s.windows, s.dropped, s.overflows, s.lost_s, s.silent) == (len(got), 0, 0, 0.0, 0)
    assert all(w.start_time <= time.time() for w in got)


def test_a_48_khz_stereo_device_is_resampled(fake, composite):
    recorded = resample(composite, RATE, 48_000)
    fake(devices=devices(audio48=recorded))
    with Microphone(SPEC, 3, max_lag_s=20, buffer_s=40) as mic:
        got = list(mic.windows())
    assert (mic.device_rate, mic.rate) == (48_000, RATE)
    expected = resample(recorded, 48_000, RATE)  # the whole signal at once: streaming gives the same
    assert [w.number for w in got] == list(range(total_windows(expected.size)))
    for w in got:
        np.testing.assert_allclose(w.samples, expected[w.number * HOP:w.number * HOP + SIZE], atol=1e-6)
    middle = got[len(got) // 2]  # and it is the recording itself, back at 16 kHz (less what lay above 7.6 kHz)
    original = composite[middle.number * HOP:middle.number * HOP + SIZE]
    assert np.sqrt(np.mean((middle.samples - original) ** 2)) < 0.2 * np.sqrt(np.mean(original ** 2))


def test_a_slow_consumer_skips_to_the_newest_window_and_counts_what_it_dropped(fake, composite):
    fake(pace=10)  # 15 s of audio in 1.5 s; the consumer takes 0.2 s a window: it cannot keep up
    seen = []
    with Microphone(SPEC, "pnp", max_lag_s=0) as mic:
        for w in mic.windows():
            seen.append(w)
            np.testing.assert_array_equal(w.samples, composite[w.number * HOP:w.number * HOP + SIZE])
            time.sleep(0.2)
    s = mic.stats()
    numbers = [w.number for w in seen]
    assert s.dropped > 0 and s.windows == len(seen)
    assert s.windows + s.dropped == total_windows(composite.size), "every window is either seen or counted"
    assert numbers == sorted(set(numbers)) and numbers[-1] == total_windows(composite.size) - 1, "newest, in order"
    assert any(b - a > 1 for a, b in zip(numbers, numbers[1:])), "skipped, not queued"


def test_audio_overwritten_in_the_ring_is_lost_and_counted(fake, composite):
    sd = fake()
    with Microphone(SPEC, "pnp", buffer_s=2.5, max_lag_s=0) as mic:
        sd.streams[0].done.wait(10)  # the consumer is stalled while the whole recording plays
        got = list(mic.windows())
    s = mic.stats()
    assert s.lost_s == pytest.approx(composite.size / RATE - 2.5, abs=1e-3)
    assert len(got) == 1 and got[0].number == total_windows(composite.size) - 1
    np.testing.assert_array_equal(got[0].samples, composite[got[0].number * HOP:got[0].number * HOP + SIZE])
    assert s.windows + s.dropped == total_windows(composite.size)


def test_input_overflows_flagged_by_portaudio_are_counted(fake):
    sd = fake(overflow_every=7)
    with Microphone(SPEC, "pnp", max_lag_s=20, buffer_s=40) as mic:
        list(mic.windows())
    assert sd.streams[0].overflows == sd.streams[0].blocks // 7 > 0
    assert mic.stats().overflows == sd.streams[0].overflows


def test_silent_windows_are_marked(fake):
    saw = read_audio(CHAINSAW).samples
    fake(devices=devices(np.concatenate([silence(3.0), saw])))
    with Microphone(SPEC, "pnp", rms_gate_dbfs=-60, max_lag_s=20, buffer_s=40) as mic:
        got = list(mic.windows())
    quiet = [w.number for w in got if w.silent]
    assert quiet == [n for n in range(len(got)) if n * HOP + SIZE <= 3 * RATE] == [0, 1, 2, 3, 4]
    assert all(w.rms_dbfs > -60 for w in got if not w.silent)
    assert mic.stats().silent == 5


def test_duration_and_stop(fake):
    fake(loop=True, pace=20)
    with Microphone(SPEC, "pnp") as mic:
        got = list(mic.windows(duration_s=3.0))
    assert [w.number for w in got] == [0, 1, 2, 3, 4], "windows that end within 3 s of audio"
    stop = threading.Event()
    with Microphone(SPEC, "pnp") as mic:
        got = []
        for w in mic.windows(stop):
            got.append(w)
            if len(got) == 3:
                stop.set()
    assert len(got) == 3


def test_a_device_that_stops_delivering_is_reported(fake):
    fake(devices=devices())  # no audio: the stream stays active and silent, like an unplugged USB card
    with Microphone(SPEC, "pnp", stall_s=0.3) as mic:
        with pytest.raises(MicrophoneError, match=r"no audio from input device \[2\] USB PnP .* for 0 s: unplugged"):
            list(mic.windows())


def test_choosing_a_device(fake):
    sd = fake(default=2)
    assert find_device("usb pnp").index == 2
    assert find_device("Stereo USB Codec (hw:2,0)").index == 3
    assert find_device(0).index == find_device("0").index == 0
    assert find_device(None).index == 2, "the system default"
    with pytest.raises(MicrophoneError) as err:
        find_device("hdmi")  # an output-only device is not an input
    assert "no input device named like 'hdmi'" in str(err.value)
    assert "[0] HDA Intel PCH: ALC3246 Analog (hw:0,0) (2 ch, 44100 Hz)" in str(err.value), "lists what is there"
    with pytest.raises(MicrophoneError, match="no input device with index 1; input devices: .*USB PnP"):
        find_device(1)
    with pytest.raises(MicrophoneError, match="'usb' matches 2 input devices"):
        find_device("usb")
    sd.devices[:] = [d for d in sd.devices if d.channels == 0]
    with pytest.raises(MicrophoneError, match="no input device found"):
        find_device(None)


def test_a_device_that_refuses_the_model_rate_is_opened_at_its_own(fake):
    fake(devices=devices(audio48=np.zeros(48_000, np.float32)))
    with Microphone(SPEC, "stereo") as mic:
        assert (mic.device_rate, mic._stream.channels) == (48_000, 2)


def test_open_errors_name_the_device(fake):
    fake(open_error="Device unavailable [PaErrorCode -9985]")
    with pytest.raises(MicrophoneError, match=r"cannot open input device \[2\] USB PnP.*Device unavailable"):
        Microphone(SPEC, "pnp").open()
    with pytest.raises(MicrophoneError, match="not open"):
        next(Microphone(SPEC, "pnp").windows())


def test_missing_portaudio_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    try:
        import sounddevice  # noqa: F401
    except OSError:
        pass
    else:
        pytest.skip("PortAudio is installed on this machine")
    with pytest.raises(MicrophoneError, match="PortAudio is missing: sudo apt install libportaudio2"):
        import_sounddevice()
    with pytest.raises(MicrophoneError, match="PortAudio is missing"):
        Microphone(SPEC).open()


def test_alert_recorder_keeps_alert_windows_only(fake, tmp_path, composite):
    fake()
    recorder = AlertRecorder(tmp_path / "rec", RATE)
    alerts = {2, 3, 4, 5, 8}
    with Microphone(SPEC, "pnp", max_lag_s=20, buffer_s=40) as mic:
        for w in mic.windows(duration_s=6.0):
            recorder.add(w, w.number in alerts, "engine", HOP)
    recorder.close()
    assert [p.name.endswith("Z_engine.wav") for p in recorder.written] == [True, True]
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == sorted(p.name for p in recorder.written)
    first, second = (read_audio(p).samples for p in recorder.written)
    np.testing.assert_allclose(first, composite[2 * HOP:5 * HOP + SIZE], atol=1 / 32767)  # overlaps written once
    np.testing.assert_allclose(second, composite[8 * HOP:8 * HOP + SIZE], atol=1 / 32767)


def test_alert_segments_starting_in_one_millisecond_do_not_overwrite(tmp_path):
    """A burst of buffered windows (or a clock step) can start two segments at one stamp: both are kept."""
    recorder = AlertRecorder(tmp_path / "rec", RATE)
    size = int(RATE)

    def window(number, level):  # the clock held still (stepped back): every window has one start time
        return LiveWindow(samples=np.full(size, level, dtype=np.float32), number=number, offset_s=float(number),
                          start_time=1_800_000_000.0, duration_s=1.0, rms_dbfs=-12.0, silent=False)
    recorder.add(window(0, 0.25), True, "engine", size)
    recorder.add(window(1, 0.25), False, "engine", size)
    recorder.add(window(2, -0.25), True, "engine", size)
    recorder.close()
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert names == ["20270115T080000.000Z_engine-2.wav", "20270115T080000.000Z_engine.wav"]
    first, second = (read_audio(p).samples for p in recorder.written)
    assert first.mean() > 0.2 and second.mean() < -0.2
