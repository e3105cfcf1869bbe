"""Real drone-like videos for the tests, encoded with PyAV (H.264, else MPEG-4 Part 2), and DJI telemetry
files (SRT) beside them in the newer and the older formats."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from imagefiles import GREEN, RED

SIZE = (160, 96)  # width, height: 10 x 6 tiles of the tiny model's 16 px
BLOCK = (64, 32, 96, 64)  # left, top, right, bottom of the red block ("the mine")
CREATED = datetime(2024, 5, 1, 10, 0, 0)  # UTC


def write_video(path: Path, *, seconds: float = 5.0, fps: int = 10, red_from_s: float | None = 2.0,
                created: datetime | None = CREATED, faststart: bool = True, noise: int = 6) -> Path:
    """A green video with a red block from `red_from_s` on (never when None), `fps` frames a second, a
    keyframe every second. Faint noise spreads the bytes over the frames, as a real scene does, so that a
    file cut at some fraction of its bytes is cut at about that fraction of its time."""
    import av

    rng = np.random.default_rng(7)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mov" if path.suffix.lower() == ".mov" else "mp4", options=options) as out:
        if created is not None:
            out.metadata["creation_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(fps), "crf": "20"} if codec == "libx264" else {"g": str(fps)}
        for i in range(round(seconds * fps)):
            pixels = np.empty((SIZE[1], SIZE[0], 3), np.int16)
            pixels[:] = GREEN
            if red_from_s is not None and i / fps >= red_from_s - 1e-9:
                x0, y0, x1, y1 = BLOCK
                pixels[y0:y1, x0:x1] = RED
            pixels += rng.integers(-noise, noise + 1, pixels.shape, dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def position(t: float) -> tuple[float, float]:
    """Where the test drone is at `t` seconds: flying north-east from (-3.1, -60.0), the Amazon."""
    return round(-3.1 + 0.0001 * t, 6), round(-60.0 + 0.0002 * t, 6)


def rel_alt(t: float) -> float:
    return 50.0 + 2.0 * t


def _clock(t: float) -> str:
    whole = int(t)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d},{round((t - whole) * 1000):03d}"


def write_srt_new(path: Path, *, seconds: float = 5.0, step: float = 0.1, focal_len: str = "24.00") -> Path:
    """Newer DJI (Mini 3 / Mavic 3): one cue per frame, bracketed values."""
    cues = []
    for n in range(round(seconds / step)):
        t = n * step
        lat, lon = position(t)
        moment = (CREATED + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        cues.append(f"{n + 1}\n{_clock(t)} --> {_clock(t + step)}\n"
                    f"<font size=\"28\">FrameCnt: {n + 1}, DiffTime: {round(step * 1000)}ms\n{moment}\n"
                    f"[iso: 100] [shutter: 1/1000.0] [fnum: 280] [ev: 0] [color_md: default] [focal_len: {focal_len}] "
                    f"[latitude: {lat:.6f}] [longitude: {lon:.6f}] [rel_alt: {rel_alt(t):.3f} abs_alt: "
                    f"{rel_alt(t) + 70:.3f}] [ct: 5310] </font>\n")
    path.write_text("\n".join(cues), encoding="utf-8")
    return path


def write_srt_old(path: Path, *, seconds: float = 5.0) -> Path:
    """Older DJI (Mavic Pro, Phantom 4): one cue a second, GPS (longitude, latitude, satellites), H = height."""
    cues = []
    for n in range(int(seconds)):
        lat, lon = position(n)
        cues.append(f"{n + 1}\n{_clock(n)} --> {_clock(n + 1)}\n"
                    f"F/2.8, SS 206.03, ISO 100, EV 0, GPS ({lon:.6f}, {lat:.6f}, 19), D 24.18m, "
                    f"H {rel_alt(n):.2f}m, H.S 0.00m/s, V.S 0.00m/s \n")
    path.write_text("\n".join(cues), encoding="utf-8")
    return path
