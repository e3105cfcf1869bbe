"""A drone video → one detection record per sampled frame (the frames from edge/image/video.py, the
position and height from the DJI telemetry file beside it, edge/image/srt.py).

Each record's `source` is the video's path with the frame's time as a media fragment, `DJI_0001.MP4#t=12.0`
(seconds from the start of the video), and `video` says the same in numbers. Its `time` is the video's
creation time plus that offset (`time_source` `video-metadata`), else the file's modification time plus it
(`file-mtime`). Its `geo` comes from the telemetry cue covering the frame (`source` `srt`), and its
`ground_resolution` from `--gsd`, else from that cue's altitude above the take-off point and focal length,
else from the config: absent when none says.

A video that fails part way gives an error record naming the file and the time where decoding failed, after
the records of the frames before it. A telemetry file that cannot be read, or has cues that cannot, gives
warnings (file and line) through `warn`, and the frames go on without a position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.image.classify import ClassifyOptions, classify_decoded, decode_wish
from edge.image.decode import Frame, ImageError
from edge.image.gsd import GroundResolution, NoGroundResolution, given, video_gsd
from edge.image.records import image_record
from edge.image.scale import Ground, plan_scale
from edge.image.srt import SrtError, Track, read_track, sidecar
from edge.image.video import DEFAULT_FPS, VideoError, VideoInfo, available, sample_frames
from edge.model.loaded import Model
from edge.records.record import SECONDS_DIGITS, error_record

log = logging.getLogger("nv.video")


def fragment(path: str | Path, offset_s: float) -> str:
    """`path#t=12.0`: a frame of a video as a W3C media fragment (seconds, at most millisecond digits)."""
    seconds = f"{offset_s:.3f}".rstrip("0")
    return f"{path}#t={seconds}{'0' if seconds.endswith('.') else ''}"


def video_records(model: Model, path: str | Path, options: ClassifyOptions, *, device: str,
                  every_s: float = 1.0 / DEFAULT_FPS, gsd: float | None = None, config_gsd: float | None = None,
                  warn: Callable[[str], None] = log.warning) -> Iterator[tuple[dict, Frame | None]]:
    """(record, decoded frame) per sampled frame, then (error record, None) if the video fails part way.
    Never raises for bad input: a video that cannot be read at all gives one error record."""
    path = Path(path)
    source = str(path)
    missing = available()
    if missing is not None:
        yield _error(model, source, f"{source}: {missing}", device), None
        return
    track = _telemetry(path, warn)
    m = model.manifest
    min_scale, min_size = decode_wish(model, options)
    info: list[VideoInfo] = []
    clock = None
    try:
        for sampled in sample_frames(path, every_s, min_scale=min_scale, min_size=min_size,
                                     max_pixels=options.max_pixels, info=info):
            if clock is None:
                clock = _clock(path, info[0])
            where = fragment(source, sampled.offset_s)
            cue = track.at(sampled.offset_s) if track is not None else None
            resolution = _resolution(gsd, config_gsd, cue, track, info[0])
            why = "" if resolution is not None else "the video has no DJI telemetry with the drone's height, and no --gsd or [image] gsd"
            scale = plan_scale(m.trained_on, Ground(resolution, why, sampled.frame.width, sampled.frame.height))
            try:
                result = classify_decoded(model, sampled.frame, options, scale)
            except (ImageError, ValueError) as exc:
                yield _error(model, where, f"{where}: {exc}", device, sampled.offset_s), None
                continue
            result.captured = (clock[0] + timedelta(seconds=sampled.offset_s), clock[1])
            record = image_record(result, model=model.identity, labels=m.labels, alert_labels=m.alert_labels,
                                  source=where, path=None, device=device)
            record["video"] = {"offset_s": round(sampled.offset_s, SECONDS_DIGITS), "frame_index": sampled.index,
                               "every_s": round(every_s, SECONDS_DIGITS)}
            if cue is not None and (geo := cue.geo()) is not None:
                record["geo"] = geo
            if resolution is not None:
                record["ground_resolution"] = resolution.to_dict()
            yield record, sampled.frame
    except VideoError as exc:
        where = fragment(source, exc.offset_s) if exc.frames else source
        kept = f"; the {exc.frames} frame(s) before it were classified" if exc.frames else ""
        yield _error(model, where, f"{source}: {exc}{kept}", device, exc.offset_s), None


def _error(model: Model, source: str, error: str, device: str, offset_s: float | None = None) -> dict:
    record = error_record(source=source, error=error, device=device, model=model.identity)
    if offset_s is not None:
        record["video"] = {"offset_s": round(offset_s, SECONDS_DIGITS)}
    return record


def _telemetry(path: Path, warn: Callable[[str], None]) -> Track | None:
    found = sidecar(path)
    if found is None:
        return None
    try:
        track = read_track(found)
    except SrtError as exc:
        warn(f"{exc}; the video's frames get no position")
        return None
    for message in track.warnings:
        warn(message)
    return track


def _clock(path: Path, info: VideoInfo) -> tuple[datetime, str]:
    """The time of the video's first frame, and how it is known."""
    if info.created is not None:
        return info.created, "video-metadata"
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc), "file-mtime"
    except OSError:
        return datetime.now(timezone.utc), "received"


def _resolution(option: float | None, config: float | None, cue, track: Track | None,
                info: VideoInfo) -> GroundResolution | None:
    if option is not None:
        return given(option, "option")
    if cue is not None:
        try:
            return video_gsd(cue.rel_alt, cue.focal_35mm, info.width, info.height,
                             where=f"{track.path.name} line {cue.line}")
        except NoGroundResolution:
            pass
    return given(config, "config") if config is not None else None
