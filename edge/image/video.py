"""Frames of a video file (MP4 or MOV drone footage) at a chosen rate, decoded one at a time with PyAV
(the `video` extra: `pip install 'naturevision[video]'`; its wheels bundle FFmpeg).

Every frame must be decoded (a frame of H.264 or H.265 is built on those before it), but only the sampled
ones are converted to RGB, and they are scaled down in FFmpeg's scaler, before they become a picture, to
what the model needs (`edge.image.classify.decode_wish`): a 4K frame is never held at full size in RGB
unless the tiles need it. Nothing but the current frame is held.

A frame's time is its presentation time in seconds from the start of the stream. A file that cannot be
decoded from some point on (cut short by a full card or a dead battery, damaged data) ends its frames with
a VideoError saying at what time it failed; the frames before it have been yielded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from edge.image.decode import DEFAULT_MAX_PIXELS, Frame

VIDEO_SUFFIXES = (".mp4", ".mov")
INSTALL_HINT = "pip install 'naturevision[video]'"
DEFAULT_FPS = 1.0
# A stream that ends this much before the duration its header claims was cut short (not an encoder's rounding).
SHORT_BY_S = 1.0


class VideoError(Exception):
    """A video that cannot be decoded, from `offset_s` on (0: not at all). The message says why."""

    def __init__(self, message: str, offset_s: float = 0.0, frames: int = 0):
        super().__init__(message)
        self.offset_s = offset_s
        self.frames = frames  # sampled frames yielded before the failure


@dataclass(frozen=True)
class VideoInfo:
    width: int  # display size of a frame, source pixels
    height: int
    duration_s: float | None
    rate: float | None  # frames per second the header claims
    created: datetime | None  # the container's creation_time (UTC), when it has one
    codec: str


@dataclass
class VideoFrame:
    frame: Frame  # the picture (possibly scaled down: frame.scale), as edge.image.classify takes it
    offset_s: float  # presentation time from the start of the stream
    index: int  # the decoded frame's number, from 0


def is_video_file(path: str | Path) -> bool:
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def available() -> str | None:
    """None when PyAV imports; else what to do about it."""
    try:
        import av  # noqa: F401
    except ImportError:
        return f"video files need PyAV, which is not installed: {INSTALL_HINT}"
    return None


def sample_frames(path: str | Path, every_s: float, *, min_scale: float = 1.0, min_size: tuple[int, int] = (1, 1),
                  max_pixels: int = DEFAULT_MAX_PIXELS, info: list | None = None) -> Iterator[VideoFrame]:
    """The first frame at or after each of 0, every_s, 2 every_s, ... seconds, scaled down to no less than
    `min_scale` of its size nor below `min_size`. Appends the file's VideoInfo to `info` (when given) before
    the first frame. Raises VideoError (after the frames it could decode) when the file fails."""
    if not (every_s > 0 and math.isfinite(every_s)):
        raise ValueError(f"the time between frames must be a positive number of seconds, got {every_s!r}")
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"cannot open it as a video: {_cause(exc)}") from None
    with container:
        if not container.streams.video:
            raise VideoError("it has no video stream (an audio file, or the container's index was never "
                             "written: a recording cut off before it ended)")
        stream = container.streams.video[0]  # FFmpeg's default threading (slices): frame threads would hold
        # a decoded 4K frame per core, ~50 MB more at 4K, for no gain on a board's few cores
        about = _info(container, stream)
        if about.width * about.height > max_pixels:
            raise VideoError(f"its frames are {about.width}x{about.height} = {about.width * about.height:,} pixels, "
                             f"above the limit of {max_pixels:,} (raise it with --max-pixels)")
        if info is not None:
            info.append(about)
        start = stream.start_time * stream.time_base if stream.start_time is not None else 0.0
        size = _target_size(about.width, about.height, min_scale, min_size)
        due, sampled, index, last = 0.0, 0, -1, None
        half_frame = 0.5 / about.rate if about.rate else 0.0
        try:
            for decoded in container.decode(stream):
                index += 1
                if decoded.pts is None:
                    continue
                t = float(decoded.pts * stream.time_base - start)
                last = t
                if t + half_frame < due:
                    continue
                yield VideoFrame(_picture(decoded, about, size), round(t, 6), index)
                sampled += 1
                due = (math.floor((t + half_frame) / every_s) + 1) * every_s
        except (av.FFmpegError, OSError) as exc:
            at = 0.0 if last is None else last
            raise VideoError(f"decoding failed after {at:.3f} s (frame {index}): {_cause(exc)}", at, sampled) from None
        if about.duration_s is not None and (last is None or last < about.duration_s - SHORT_BY_S):
            at = 0.0 if last is None else last
            raise VideoError(f"decoding failed after {at:.3f} s (frame {index}): the frames end there but its "
                             f"header says {about.duration_s:.3f} s: the file is cut short or damaged", at, sampled)


def _info(container, stream) -> VideoInfo:
    ctx = stream.codec_context
    duration = None
    if stream.duration is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    rate = float(stream.average_rate) if stream.average_rate else None
    return VideoInfo(width=ctx.width, height=ctx.height, duration_s=duration, rate=rate,
                     created=creation_time(dict(container.metadata) | dict(stream.metadata)),
                     codec=ctx.name or "unknown")


def creation_time(metadata: dict) -> datetime | None:
    """The container's `creation_time` as UTC. QuickTime stores seconds since 1904 in UTC; FFmpeg gives
    them as ISO 8601. Zero (1904, or 1970 after some tools) means the camera did not set it."""
    text = metadata.get("creation_time")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment if moment.year > 1970 else None


def _target_size(width: int, height: int, min_scale: float, min_size: tuple[int, int]) -> tuple[int, int] | None:
    """The decoded size of a frame: as small as allowed, never larger than the source. None: as it is."""
    scale = max(min_scale, min_size[0] / width, min_size[1] / height)
    if scale >= 1.0:
        return None
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _picture(decoded, about: VideoInfo, size: tuple[int, int] | None) -> Frame:
    width, height = size or (about.width, about.height)
    image = decoded.to_image(width=width, height=height)  # scaled in FFmpeg's scaler, then RGB
    if image.mode != "RGB":
        image = image.convert("RGB")
    return Frame(image=image, width=about.width, height=about.height, scale=width / about.width,
                 format=f"video/{about.codec}", exif=Image.Exif())


def _cause(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.rstrip(".")
