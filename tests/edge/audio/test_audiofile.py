"""edge/audio/audiofile.py: real WAV files in every layout a recorder writes, torn and broken ones, FLAC."""

from __future__ import annotations

import struct
import sys
import wave

import numpy as np
import pytest
from audiofiles import CHAINSAW, wav_bytes, write_wav

from edge.audio.audiofile import AudioFileError, is_audio_file, read_audio
from edge.features.logmel import resample

RATE = 16_000


def tone(seconds=0.5, rate=RATE, freqs=(220.0, 1000.0, 3100.0)) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.25 * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)).astype(np.float32)


def test_committed_sample_reads_as_the_stdlib_reads_it():
    clip = read_audio(CHAINSAW)
    with wave.open(str(CHAINSAW)) as w:
        expected = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    assert clip.sample_rate == clip.source_rate == RATE and clip.channels == 1 and clip.warning is None
    assert clip.format == "WAV PCM 16-bit"
    np.testing.assert_array_equal(clip.samples, expected)
    assert clip.duration_s == pytest.approx(5.0, abs=0.01)


@pytest.mark.parametrize("bits, code, tolerance", [
    (8, 1, 1 / 128), (16, 1, 1 / 32768), (24, 1, 2 ** -23), (32, 1, 2 ** -31), (32, 3, 0), (64, 3, 0),
])
def test_sample_formats(tmp_path, bits, code, tolerance):
    x = tone()
    clip = read_audio(write_wav(tmp_path / "x.wav", x, bits=bits, code=code))
    assert clip.samples.dtype == np.float32 and clip.samples.size == x.size
    np.testing.assert_allclose(clip.samples, x, atol=tolerance + 1e-7)
    assert clip.format == f"WAV {'PCM' if code == 1 else 'float'} {bits}-bit"


def test_eight_bit_is_unsigned_around_128(tmp_path):
    path = tmp_path / "u8.wav"
    path.write_bytes(wav_bytes(np.array([-1.0, -0.5, 0.0, 0.5, 0.9921875]), bits=8))  # 0, 64, 128, 192, 255
    np.testing.assert_allclose(read_audio(path).samples, [-1.0, -0.5, 0.0, 0.5, 0.9921875])


def test_negative_24_bit_samples_keep_their_sign(tmp_path):
    x = np.array([-1.0, -0.5, -2 ** -23, 0.0, 0.5], dtype=np.float64)
    clip = read_audio(write_wav(tmp_path / "x.wav", x, bits=24))
    np.testing.assert_allclose(clip.samples, x, atol=1e-7)


@pytest.mark.parametrize("bits, code", [(16, 1), (24, 1), (32, 3)])
def test_extensible(tmp_path, bits, code):
    x = tone()
    clip = read_audio(write_wav(tmp_path / "ext.wav", np.stack([x, x], axis=1), bits=bits, code=code, extensible=True))
    assert clip.channels == 2
    np.testing.assert_allclose(clip.samples, x, atol=2 ** -15)


def test_stdlib_wave_refuses_what_we_read(tmp_path):
    path = write_wav(tmp_path / "float.wav", tone(), bits=32, code=3)
    with pytest.raises(wave.Error):
        wave.open(str(path))
    assert read_audio(path).samples.size == tone().size


def test_48_khz_stereo_becomes_the_same_16_khz_mono(tmp_path):
    seconds = 2.0
    mono48 = tone(seconds, 48_000)
    rng = np.random.default_rng(1)
    side = (0.05 * rng.standard_normal(mono48.size)).astype(np.float32)
    stereo = np.stack([mono48 + side, mono48 - side], axis=1)  # the sides cancel in the mono mix
    clip = read_audio(write_wav(tmp_path / "st.wav", stereo, rate=48_000, bits=32, code=3), rate=RATE)
    assert (clip.sample_rate, clip.source_rate, clip.channels) == (RATE, 48_000, 2)
    assert clip.samples.size == int(seconds * RATE)
    np.testing.assert_allclose(clip.samples, resample(mono48, 48_000, RATE), atol=1e-6)
    # and it is the tone itself, sampled at 16 kHz (edges aside, where the filter sees the silence beyond)
    direct = tone(seconds, RATE)
    np.testing.assert_allclose(clip.samples[200:-200], direct[200:-200], atol=2e-3)


def test_many_channels_are_averaged(tmp_path):
    x = tone()
    layers = np.stack([x, 0.5 * x, -0.5 * x, x, np.zeros_like(x), x], axis=1)  # 5.1
    clip = read_audio(write_wav(tmp_path / "six.wav", layers, bits=24))
    np.testing.assert_allclose(clip.samples, layers.mean(axis=1), atol=1e-6)


def test_odd_chunks_before_data_are_skipped_with_their_pad_byte(tmp_path):
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"  # odd size, padded
    path = write_wav(tmp_path / "list.wav", tone(), extra_chunks=listing)
    np.testing.assert_allclose(read_audio(path).samples, tone(), atol=1 / 32768)


def test_truncated_data_uses_the_whole_frames_present(tmp_path):
    data = wav_bytes(np.stack([tone(1.0)] * 2, axis=1))  # 16-bit stereo: 4 bytes a frame
    path = tmp_path / "torn.wav"
    path.write_bytes(data[:-4 * 8000 - 3])  # half a second gone, and a frame cut in the middle
    clip = read_audio(path)
    assert clip.samples.size == RATE - 8000 - 1
    np.testing.assert_allclose(clip.samples, tone(1.0)[:clip.samples.size], atol=1 / 32768)
    assert str(path) in clip.warning and "truncated audio data" in clip.warning
    assert "32,003 bytes = 0.50 s missing" in clip.warning and "7,999 whole frames" in clip.warning


def test_a_header_never_finalised_reads_what_follows(tmp_path):
    path = write_wav(tmp_path / "live.wav", tone(), data_size=0)
    clip = read_audio(path)
    np.testing.assert_allclose(clip.samples, tone(), atol=1 / 32768)
    assert "never finalised" in clip.warning


def test_rf64(tmp_path):
    x = tone()
    payload = wav_bytes(x)[44:]
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    ds64 = struct.pack("<QQQI", 0, len(payload), x.size, 0)
    body = (b"WAVE" + b"ds64" + struct.pack("<I", len(ds64)) + ds64 + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", 0xFFFFFFFF) + payload)
    path = tmp_path / "big.wav"
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body)
    clip = read_audio(path)
    assert clip.warning is None
    np.testing.assert_allclose(clip.samples, x, atol=1 / 32768)


@pytest.mark.parametrize("content, message", [
    (b"", "empty file (0 bytes)"),
    (b"RIFF\x10\x00", "truncated WAV header (6 bytes"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "truncated WAV header (the fmt chunk is cut short)"),
    (b"RIFF\x04\x00\x00\x00WAVE", "truncated WAV header (no fmt chunk"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "a RIFF file but not WAV"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "not an audio file this runtime reads (WAV, FLAC, Ogg)"),
    (b"field notes: nothing to hear\n", "not an audio file this runtime reads"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_unreadable_files_say_why(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError) as err:
        read_audio(path)
    assert str(path) in str(err.value) and message in str(err.value)


def _header_with(code=1, channels=1, rate=RATE, bits=16, block=None) -> bytes:
    block = channels * bits // 8 if block is None else block
    fmt = struct.pack("<HHIIHH", code, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + 4) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data\x04\x00\x00\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("header, message", [
    (_header_with(channels=0, block=0), "says 0 channels"),
    (_header_with(rate=0), "sample rate of 0 Hz"),
    (_header_with(code=7, bits=8), "format code 0x0007 (mu-law) is not supported"),
    (_header_with(code=0x55), "(MP3) is not supported"),
    (_header_with(code=0x1234), "(unknown) is not supported"),
    (_header_with(bits=16, block=3), "block align 3 for 1 channel(s) of 16 bits"),
    (_header_with(bits=12, block=2), "12-bit PCM WAV is not supported"),
    (_header_with(bits=20, block=3), "20-bit PCM WAV is not supported"),
    (_header_with(code=3, bits=16), "16-bit float WAV is not supported"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_headers_that_cannot_be_used(tmp_path, header, message):
    path = tmp_path / "h.wav"
    path.write_bytes(header)
    with pytest.raises(AudioFileError) as err:
        read_audio(path)
    assert str(path) in str(err.value) and message in str(err.value)
    if "not supported" in message:
        assert "ffmpeg" in str(err.value), "says what to do"


def test_a_wav_without_frames_or_without_data(tmp_path):
    empty = write_wav(tmp_path / "none.wav", np.zeros(0))
    with pytest.raises(AudioFileError, match="holds no audio"):
        read_audio(empty)
    nodata = tmp_path / "nodata.wav"
    nodata.write_bytes(wav_bytes(tone())[:36])  # RIFF + fmt, nothing after
    with pytest.raises(AudioFileError, match="without a data chunk"):
        read_audio(nodata)


def test_size_limits(tmp_path):
    path = write_wav(tmp_path / "long.wav", tone(1.0))
    with pytest.raises(AudioFileError, match="above the limit of 1,000; split"):
        read_audio(path, max_bytes=1000)
    with pytest.raises(AudioFileError, match="16,000 frames .* above the limit of 8,000"):
        read_audio(path, max_frames=8000)


def test_extensible_with_an_unknown_sub_format(tmp_path):
    data = bytearray(wav_bytes(tone(), extensible=True))
    data[20 + 24 + 2] ^= 0xFF  # the GUID's tail
    path = tmp_path / "odd.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError, match="unknown sub-format"):
        read_audio(path)


def test_flac_and_ogg_through_soundfile(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    x = tone(1.0, 44_100)
    flac = tmp_path / "x.flac"
    soundfile.write(str(flac), np.stack([x, x], axis=1), 44_100, subtype="PCM_16")
    clip = read_audio(flac, rate=RATE)
    assert (clip.format, clip.channels, clip.source_rate, clip.sample_rate) == ("FLAC", 2, 44_100, RATE)
    np.testing.assert_allclose(clip.samples, resample(read_audio(flac).samples, 44_100, RATE), atol=1e-6)
    np.testing.assert_allclose(read_audio(flac).samples, x, atol=1 / 32768 + 1e-6)
    ogg = tmp_path / "x.ogg"
    soundfile.write(str(ogg), x, 44_100, format="OGG", subtype="VORBIS")
    clip = read_audio(ogg)
    assert clip.format == "Ogg" and abs(clip.samples.size - x.size) < 2048
    torn = tmp_path / "torn.flac"
    torn.write_bytes(flac.read_bytes()[:flac.stat().st_size // 2])
    clip = read_audio(torn)  # read up to the tear, as a torn WAV is
    assert 0 < clip.samples.size < x.size and "breaks off" in clip.warning and str(torn) in clip.warning
    np.testing.assert_allclose(clip.samples, x[:clip.samples.size], atol=1 / 32768 + 1e-6)
    torn.write_bytes(flac.read_bytes()[:200])
    with pytest.raises(AudioFileError, match="corrupt or truncated FLAC data") as err:
        read_audio(torn)
    assert str(torn) in str(err.value)


def test_flac_without_soundfile_says_what_to_install(tmp_path, monkeypatch):
    flac = tmp_path / "x.flac"
    flac.write_bytes(b"fLaC\x00\x00\x00\x22" + bytes(40))
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as on a unit without it: import fails
    with pytest.raises(AudioFileError, match=r"reading FLAC needs the soundfile package \(pip install soundfile\)"):
        read_audio(flac)
    wav = write_wav(tmp_path / "x.wav", tone())
    assert read_audio(wav).samples.size, "WAV needs nothing"


def test_suffixes():
    assert all(is_audio_file(f"a{s}") for s in (".wav", ".WAV", ".flac", ".ogg"))
    assert not is_audio_file("a.png") and not is_audio_file("wav")
