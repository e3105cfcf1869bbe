"""A DJI drone's telemetry subtitles (`DJI_0001.SRT` beside `DJI_0001.MP4`): where the drone was, and how
high, at each moment of the video.

An SRT file is a list of cues, each `INDEX`, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, then text lines, then a blank
line; DJI writes one cue per video frame (newer drones) or per second (older ones). The text is one of:

- newer DJI (Mini 2/3/4, Air 2S/3, Mavic 3): bracketed, labelled values, e.g.
  `[iso : 100] [shutter : 1/1000.0] [fnum : 280] [focal_len : 24.00] [latitude: 12.345678]
  [longitude: -67.891234] [rel_alt: 50.000 abs_alt: 120.300]`, after `FrameCnt: 1, DiffTime: 33ms` (or
  `SrtCnt : 1, DiffTime : 33ms`) and the drone's local date and time. `rel_alt` is metres above the take-off
  point, `abs_alt` (or a lone `altitude`) above sea level. `focal_len` is the 35 mm-equivalent focal length:
  in millimetres when written with a decimal point (`24.00`), in tenths of one without (`240`).
- older DJI (Phantom 3/4, Mavic Pro, Spark, Mavic Air, Mavic Mini, P4 RTK), positional:
  `F/2.8, SS 206.03, ISO 100, EV 0, GPS (149.0253, -35.2346, 19), D 24.18m, H 45.00m, H.S 0.00m/s, V.S 0.00m/s`
  or `HOME(149.0251,-35.2345) 2019.01.01 12:00:01` / `GPS(149.0253,-35.2345,19) BAROMETER:60.4`. GPS is
  (longitude, latitude, satellites): longitude first, and the third number is a satellite count, not an
  altitude. `H` and `BAROMETER` are metres above the take-off point.
- DJI Pilot on Matrice drones: `GPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M`, latitude first (the values carry
  an `M`). Whichever form, a coordinate above 90 in size is a longitude, wherever it stands.

Before the GPS has a fix DJI writes 0, 0: such cues give no position (and no warning). A cue that cannot be
read (times or numbers that are not numbers, a latitude beyond 90) gives a warning naming the file and the
line, and the frames it covers get no position; the rest of the file is used.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

SRT_SUFFIXES = (".SRT", ".srt", ".Srt")
MAX_BYTES = 64 * 1024 * 1024  # an hour of 60 fps cues is ~70 MB at most; anything larger is not telemetry

_TIMES = re.compile(r"^\s*(\d+):(\d+):(\d+)[,.](\d+)\s*-->\s*(\d+):(\d+):(\d+)[,.](\d+)\s*$")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_PAIR = re.compile(r"([A-Za-z_]+)\s*:\s*([^\s\[\]]+)")
_GPS = re.compile(r"\bGPS\s*\(\s*([^,()]+),\s*([^,()]+)(?:,\s*([^,()]*?))?\s*\)")
_HEIGHT = re.compile(r"(?:^|[\s,])H\s+([-+]?[\d.]+)\s*m\b")
_BAROMETER = re.compile(r"\bBAROMETER\s*[:(]\s*([-+]?[\d.]+)")


class SrtError(Exception):
    """A telemetry file that cannot be used at all; the message names the file and says why."""


@dataclass(frozen=True)
class Telemetry:
    """One cue: from `start_s` to `end_s` of the video."""

    start_s: float
    end_s: float
    line: int  # where the cue's times are, for messages
    lat: float | None = None
    lon: float | None = None
    abs_alt: float | None = None  # metres above sea level
    rel_alt: float | None = None  # metres above the take-off point
    focal_35mm: float | None = None  # 35 mm-equivalent focal length, mm

    def geo(self) -> dict | None:
        """The record's `geo`, or None when the cue has no position."""
        if self.lat is None or self.lon is None:
            return None
        geo = {"lat": round(self.lat, 7), "lon": round(self.lon, 7)}
        if self.abs_alt is not None:
            geo["alt"] = round(self.abs_alt, 2)
        if self.rel_alt is not None:
            geo["rel_alt"] = round(self.rel_alt, 2)
        geo["source"] = "srt"
        return geo


@dataclass
class Track:
    """A telemetry file's cues in time order, and what could not be read in it."""

    path: Path
    cues: list[Telemetry]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.cues.sort(key=lambda c: c.start_s)
        self._starts = [c.start_s for c in self.cues]

    def at(self, seconds: float) -> Telemetry | None:
        """The cue covering `seconds` of the video (start inclusive, end exclusive), or None."""
        i = bisect.bisect_right(self._starts, seconds + 1e-6) - 1  # a frame's time rounds; a microsecond is nothing
        if i < 0:
            return None
        cue = self.cues[i]
        return cue if seconds < cue.end_s else None


def sidecar(video: str | Path) -> Path | None:
    """The telemetry file beside a video: the same name with `.SRT` or `.srt` (DJI writes upper case)."""
    video = Path(video)
    for suffix in SRT_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_track(path: str | Path) -> Track:
    """Parse a telemetry file. Raises SrtError when it cannot be read at all (gone, too large); a file with
    unreadable cues comes back with those cues left out and a warning for each in `warnings`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SrtError(f"{path}: {size:,} bytes, above the {MAX_BYTES:,} a telemetry file can be; not read")
        data = path.read_bytes()
    except OSError as exc:
        raise SrtError(f"{path}: cannot read the telemetry file: {exc.strerror or exc}") from None
    return parse_track(data.decode("utf-8-sig", errors="replace"), path)


def parse_track(text: str, path: Path) -> Track:
    cues: list[Telemetry] = []
    warnings: list[str] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        line = lines[n]
        if "-->" not in line:
            n += 1
            continue
        start_line = n + 1
        body = []
        n += 1
        while n < len(lines) and lines[n].strip() and "-->" not in lines[n]:
            body.append((n + 1, lines[n]))
            n += 1
        if body and n < len(lines) and body[-1][1].strip().isdigit():
            body.pop()  # the next cue's index, when a cue has no blank line after it
        times = _TIMES.match(line)
        if times is None:
            warnings.append(f"{path} line {start_line}: cannot read the cue's times ({line.strip()[:60]!r}); "
                            f"the frames it covers get no position")
            continue
        v = [int(g) for g in times.groups()]
        start = v[0] * 3600 + v[1] * 60 + v[2] + v[3] / 10 ** len(times.group(4))
        end = v[4] * 3600 + v[5] * 60 + v[6] + v[7] / 10 ** len(times.group(8))
        cue, problem = _cue(start, end, start_line, body)
        if problem is not None:
            warnings.append(f"{path} line {problem[0]}: {problem[1]}; the frames it covers get no position")
        cues.append(cue)
    if not cues:
        warnings.append(f"{path}: no subtitle cues (`00:00:00,000 --> 00:00:01,000` lines) in it: not DJI "
                        f"telemetry; the video's frames get no position")
    elif all(c.lat is None for c in cues) and not warnings:
        warnings.append(f"{path}: no cue has a GPS position (no fix during the flight, or a format this "
                        f"runtime does not know); the video's frames get no position")
    return Track(path, cues, warnings)


def _cue(start: float, end: float, line: int, body: list[tuple[int, str]]) -> tuple[Telemetry, tuple | None]:
    """The cue's values, and (line, problem) when a value it has cannot be read."""
    values: dict[str, tuple[int, str]] = {}
    gps: tuple[int, tuple[str, str, str | None]] | None = None
    for number, text in body:
        for bracket in _BRACKET.findall(text):
            for key, value in _PAIR.findall(bracket):
                values.setdefault(key.lower(), (number, value))
        if (m := _GPS.search(text)) is not None and gps is None:
            gps = (number, m.groups())
        if (m := _HEIGHT.search(text)) is not None:
            values.setdefault("h", (number, m.group(1)))
        if (m := _BAROMETER.search(text)) is not None:
            values.setdefault("barometer", (number, m.group(1)))
    bare = Telemetry(start, end, line)
    try:
        lat = lon = None
        if "latitude" in values or "longitude" in values:
            lat, lon = _number(values, "latitude"), _number(values, "longitude")
        elif gps is not None:
            lat, lon = _positional(gps)
        abs_alt = _number(values, "abs_alt") if "abs_alt" in values else _number(values, "altitude")
        rel_alt = next((_number(values, k) for k in ("rel_alt", "h", "barometer") if k in values), None)
        focal = _focal(values)
    except _Unreadable as exc:
        return bare, (exc.line, exc.problem)
    if lat is not None and lon is not None:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            where = values["latitude"][0] if "latitude" in values else gps[0]
            return bare, (where, f"latitude {lat:g}, longitude {lon:g} is not a place on Earth")
        if lat == 0.0 and lon == 0.0:  # before the GPS fix
            lat = lon = None
    else:
        lat = lon = None
    return Telemetry(start, end, line, lat, lon, abs_alt, rel_alt, focal), None


class _Unreadable(Exception):
    def __init__(self, line: int, problem: str):
        self.line, self.problem = line, problem


def _number(values: dict, key: str) -> float | None:
    if key not in values:
        return None
    line, text = values[key]
    return _float(text.rstrip("mM"), line, key)


def _float(text: str, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Unreadable(line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Unreadable(line, f"{what} {text!r} is not a number")
    return value


def _positional(gps: tuple[int, tuple[str, str, str | None]]) -> tuple[float, float]:
    line, (first, second, third) = gps
    a, b = _float(first.strip(), line, "GPS"), _float(second.strip(), line, "GPS")
    if abs(a) > 90.0 >= abs(b):
        return b, a
    if abs(b) > 90.0 >= abs(a):
        return a, b
    if third is not None and third.strip()[-1:] in ("M", "m"):  # DJI Pilot (Matrice): GPS(lat, lon, altM)
        return a, b
    return b, a  # DJI GO: GPS(lon, lat, satellites)


def _focal(values: dict) -> float | None:
    if "focal_len" not in values:
        return None
    line, text = values["focal_len"]
    value = _float(text, line, "focal_len")
    if "." not in text:
        value /= 10.0  # `[focal_len : 240]`: tenths of a millimetre
    return value if value > 0 else None
