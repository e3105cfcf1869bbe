"""Audio files -> mono float32 samples at the model's rate.

WAV is read by our own small RIFF reader: the stdlib `wave` module (3.11) refuses
WAVE_FORMAT_EXTENSIBLE and float files, which is what many field recorders write. It reads PCM
8-bit (unsigned), 16, 24 and 32-bit, IEEE float 32 and 64-bit, plain or extensible, RIFF or RF64,
any number of channels (averaged to mono). The samples are memory-mapped and converted in blocks,
so a long recording costs its mono float32 samples and little else.

FLAC and Ogg (Vorbis/Opus) go through `soundfile` when it is installed.

**A torn recording is used, not refused.** When a WAV's data chunk promises more bytes than the
file holds (the recorder lost power mid-write), or its header was never finalised (data size 0 or
0xFFFFFFFF), the whole frames present are read and `AudioClip.warning` says how much is missing; a
FLAC or Ogg stream that breaks off is read up to the last block that decodes. A field unit should
not lose an hour of audio to its last 10 ms. Only a file with no usable frame is refused.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.features.logmel import Resampler, to_mono_float

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus")
DEFAULT_MAX_BYTES = 2 * 1024**3  # file size; memory is bounded by max_frames
DEFAULT_MAX_FRAMES = 1 << 26  # 67 M frames: 70 min at 16 kHz, 23 min at 48 kHz; 256 MB as mono float32
_BLOCK = 1 << 16  # frames converted at a time
_SF_BLOCK = 4096  # frames decoded at a time: a torn FLAC loses at most this much before the tear
_RESAMPLE_BLOCK = 1 << 14  # input samples per resampler call: its work matrix is outputs x taps

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_KNOWN_CODES = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10",
                0x0050: "MPEG", 0x0055: "MP3"}
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_* after the 2-byte code
_UNSET_SIZES = (0, 0xFFFFFFFF)  # what streaming writers leave in a header they never finalised
_CONVERT_HINT = "convert it to PCM WAV or FLAC, e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav"


class AudioFileError(Exception):
    """An audio file that cannot be used; the message names the file and says what to do."""


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # mono float32, nominally in [-1, 1]
    sample_rate: int
    source_rate: int  # the file's rate, before resampling
    channels: int  # in the file; the samples are their average
    format: str  # e.g. "WAV PCM 16-bit", "FLAC"
    warning: str | None = None  # a torn file that was read as far as it goes

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


def is_audio_file(path: str | Path) -> bool:
    return str(path).lower().endswith(AUDIO_SUFFIXES)


def read_audio(path: str | Path, rate: int | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_frames: int = DEFAULT_MAX_FRAMES) -> AudioClip:
    """Read a WAV, FLAC or Ogg file as mono float32; resampled to `rate` when given (with the front
    end's resampler, `edge.features.logmel`). Raises AudioFileError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise AudioFileError(f"{path}: empty file (0 bytes)")
    if size > max_bytes:
        raise AudioFileError(f"{path}: file is {size:,} bytes, above the limit of {max_bytes:,}; split the recording")
    if head[:4] in (b"RIFF", b"RF64", b"RIFX"):
        clip = _read_wav(path, max_frames)
    elif head[:4] in (b"fLaC", b"OggS"):
        clip = _read_soundfile(path, "FLAC" if head[:4] == b"fLaC" else "Ogg", max_frames)
    else:
        raise AudioFileError(f"{path}: not an audio file this runtime reads (WAV, FLAC, Ogg): it starts with {head[:8]!r}")
    if clip.samples.size == 0:
        raise AudioFileError(f"{path}: holds no audio (0 frames)")
    if rate is not None and rate != clip.sample_rate:
        clip = AudioClip(_resample(clip.samples, clip.sample_rate, rate), rate, clip.source_rate, clip.channels,
                         clip.format, clip.warning)
    return clip


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Chunk by chunk into a preallocated array: the whole-signal output without a second copy."""
    r = Resampler(from_rate, to_rate)
    out = np.empty(-(-samples.size * r.up // r.down), dtype=np.float32)
    filled = 0
    for start in range(0, samples.size, _RESAMPLE_BLOCK):
        part = r.process(samples[start:start + _RESAMPLE_BLOCK])
        out[filled:filled + part.size] = part
        filled += part.size
    part = r.flush()
    out[filled:filled + part.size] = part
    return out[:filled + part.size]


# -- WAV ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _WavFormat:
    code: int
    channels: int
    rate: int
    block_align: int
    bits: int  # container bits per sample


def _read_wav(path: Path, max_frames: int) -> AudioClip:
    with open(path, "rb") as fh:
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        fmt, offset, length, warning = _parse_riff(path, data, len(data))
        dtype, name = _sample_type(path, fmt)
        frames = length // fmt.block_align
        if length % fmt.block_align and warning is None:
            warning = f"data chunk ends inside a frame ({length % fmt.block_align} stray bytes ignored)"
        if frames > max_frames:
            raise AudioFileError(
                f"{path}: {frames:,} frames ({frames / fmt.rate / 60:.1f} min at {fmt.rate} Hz) is above the limit of "
                f"{max_frames:,}; split the recording into shorter files")
        samples = _wav_samples(data, offset, frames, fmt, dtype)
    finally:
        data.close()
    if warning:
        warning = f"{path}: {warning}"
    return AudioClip(samples, fmt.rate, fmt.rate, fmt.channels, f"WAV {name}", warning)


def _parse_riff(path: Path, data, size: int) -> tuple[_WavFormat, int, int, str | None]:
    """-> (format, data offset, data length in bytes present, warning)."""
    if size < 12:
        raise AudioFileError(f"{path}: truncated WAV header ({size} bytes; a RIFF header alone is 12)")
    magic, _, wave_id = struct.unpack_from("<4sI4s", data, 0)
    if magic == b"RIFX":
        raise AudioFileError(f"{path}: big-endian WAV (RIFX) is not supported; {_CONVERT_HINT}")
    if wave_id != b"WAVE":
        raise AudioFileError(f"{path}: a RIFF file but not WAV (it is {wave_id!r})")
    fmt = None
    ds64_data_size = None
    pos = 12
    while pos + 8 <= size:
        chunk, length = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk == b"ds64" and length >= 16 and body + 16 <= size:
            ds64_data_size = struct.unpack_from("<Q", data, body + 8)[0]
        elif chunk == b"fmt ":
            if body + min(length, 16) > size or length < 16:
                raise AudioFileError(f"{path}: truncated WAV header (the fmt chunk is cut short)")
            fmt = _parse_fmt(path, data, body, length)
        elif chunk == b"data":
            if fmt is None:
                raise AudioFileError(f"{path}: invalid WAV: the data chunk comes before the fmt chunk; {_CONVERT_HINT}")
            present = size - body
            if magic == b"RF64" and length == 0xFFFFFFFF and ds64_data_size is not None:
                length = ds64_data_size
            elif length in _UNSET_SIZES and present > 0:
                return fmt, body, present, (f"the WAV header was never finalised (data size {length:#x}); "
                                            f"read the {present // fmt.block_align:,} whole frames present")
            if length > present:
                missing = length - present
                seconds = missing / fmt.block_align / fmt.rate
                return fmt, body, present, (
                    f"truncated audio data: the header promises {length:,} bytes, the file holds {present:,} "
                    f"({missing:,} bytes = {seconds:.2f} s missing; a torn write?); "
                    f"read the {present // fmt.block_align:,} whole frames present")
            return fmt, body, length, None
        pos = body + length + (length & 1)  # chunks are padded to an even size
    if fmt is None:
        raise AudioFileError(f"{path}: truncated WAV header (no fmt chunk in {size} bytes)")
    raise AudioFileError(f"{path}: WAV without a data chunk (truncated header, or no audio was ever written)")


def _parse_fmt(path: Path, data, body: int, length: int) -> _WavFormat:
    code, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", data, body)
    if code == _EXTENSIBLE:
        if length < 40:
            raise AudioFileError(f"{path}: truncated WAV header (an extensible fmt chunk needs 40 bytes, has {length})")
        guid = bytes(data[body + 24:body + 40])
        if guid[2:] != _GUID_TAIL:
            raise AudioFileError(f"{path}: extensible WAV with an unknown sub-format {guid.hex()}; {_CONVERT_HINT}")
        code = struct.unpack_from("<H", guid)[0]
    if channels == 0:
        raise AudioFileError(f"{path}: the WAV header says 0 channels; the file is damaged")
    if rate == 0:
        raise AudioFileError(f"{path}: the WAV header says a sample rate of 0 Hz; the file is damaged")
    if code not in (_PCM, _FLOAT):
        name = _KNOWN_CODES.get(code, "unknown")
        raise AudioFileError(f"{path}: WAV format code {code:#06x} ({name}) is not supported (only PCM and IEEE float); "
                             f"{_CONVERT_HINT}")
    if block_align != channels * ((bits + 7) // 8):
        raise AudioFileError(f"{path}: inconsistent WAV header: block align {block_align} for {channels} channel(s) "
                             f"of {bits} bits; the file is damaged")
    return _WavFormat(code, channels, rate, block_align, bits)


def _sample_type(path: Path, fmt: _WavFormat) -> tuple[str, str]:
    types = {(_PCM, 8): ("u1", "PCM 8-bit"), (_PCM, 16): ("<i2", "PCM 16-bit"), (_PCM, 24): ("i24", "PCM 24-bit"),
             (_PCM, 32): ("<i4", "PCM 32-bit"), (_FLOAT, 32): ("<f4", "float 32-bit"), (_FLOAT, 64): ("<f8", "float 64-bit")}
    if (fmt.code, fmt.bits) not in types:
        kind = "PCM" if fmt.code == _PCM else "float"
        raise AudioFileError(f"{path}: {fmt.bits}-bit {kind} WAV is not supported; {_CONVERT_HINT}")
    return types[fmt.code, fmt.bits]


def _wav_samples(data, offset: int, frames: int, fmt: _WavFormat, dtype: str) -> np.ndarray:
    out = np.empty(frames, dtype=np.float32)
    width = fmt.block_align // fmt.channels
    raw = np.frombuffer(data, dtype=np.uint8, count=frames * fmt.block_align, offset=offset)
    for start in range(0, frames, _BLOCK):
        stop = min(frames, start + _BLOCK)
        block = raw[start * fmt.block_align:stop * fmt.block_align].reshape(stop - start, fmt.channels, width)
        if dtype == "i24":
            # the three bytes go to the top of an int32: full scale stays 2**31, the sign comes free
            wide = np.zeros((stop - start, fmt.channels, 4), dtype=np.uint8)
            wide[..., 1:] = block
            values = wide.view("<i4")[..., 0]
        else:
            values = block.view(dtype)[..., 0]
        out[start:stop] = to_mono_float(values)
    return out  # no view of the mmap may outlive this call: the caller closes it


# -- FLAC / Ogg -----------------------------------------------------------------------------------

def _read_soundfile(path: Path, kind: str, max_frames: int) -> AudioClip:
    try:
        import soundfile
    except (ImportError, OSError) as exc:
        raise AudioFileError(f"{path}: reading {kind} needs the soundfile package (pip install soundfile); "
                             f"WAV needs nothing ({type(exc).__name__}: {exc})") from None
    try:
        with soundfile.SoundFile(str(path)) as sf:
            if sf.channels == 0 or sf.samplerate == 0:
                raise AudioFileError(f"{path}: the {kind} header says {sf.channels} channels at {sf.samplerate} Hz; "
                                     "the file is damaged")
            if sf.frames > max_frames:
                raise AudioFileError(
                    f"{path}: {sf.frames:,} frames ({sf.frames / sf.samplerate / 60:.1f} min at {sf.samplerate} Hz) "
                    f"is above the limit of {max_frames:,}; split the recording into shorter files")
            parts, broken = [], None
            while True:
                try:
                    block = sf.read(_SF_BLOCK, dtype="float32", always_2d=True)
                except RuntimeError as exc:  # a torn stream: keep what decoded, as for a torn WAV
                    broken = exc
                    break
                if not len(block):
                    break
                parts.append(to_mono_float(block))
            samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            if broken is not None and not samples.size:
                raise broken
            warning = None
            if broken is not None or 0 < samples.size < sf.frames:
                missing = max(0, sf.frames - samples.size)
                warning = (f"{path}: the {kind} stream breaks off after {samples.size:,} of {sf.frames:,} frames "
                           f"({missing / sf.samplerate:.2f} s missing{f': {broken}' if broken else ''}); "
                           "read what is there")
            return AudioClip(samples, sf.samplerate, sf.samplerate, sf.channels, kind, warning)
    except AudioFileError:
        raise
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise AudioFileError(f"{path}: corrupt or truncated {kind} data: {exc}") from None

