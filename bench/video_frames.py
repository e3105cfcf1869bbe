"""Memory and time of reading drone video frames (edge/image/video.py): a 1080p (or --size) H.264 video is
written once (in a process of its own), then sampled at --fps in a fresh process per case, and each prints its peak resident memory
(ru_maxrss) and seconds per second of video:

- full: frames at their full size (a tiled model that needs every pixel),
- reduced: frames scaled down in FFmpeg's scaler to a whole-frame model's 224 px input (min_size).

The ratio full / reduced of the peak memory says what scaling down early saves; the peak of `full` above
that of the bare interpreter-less process says that one frame is held at a time (the video is never held).

    .venv/bin/python bench/video_frames.py [--seconds 20] [--size 1920x1080] [--fps 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write(path: Path, seconds: float, size: tuple[int, int], rate: int = 30) -> None:
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * rate)):
            frame = np.roll(base, 4 * i, axis=1)  # a scene moving under the drone
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def case(path: str, every_s: float, reduced: bool) -> dict:
    from edge.image.video import sample_frames

    start = time.perf_counter()
    kwargs = {"min_scale": 0.0, "min_size": (224, 224)} if reduced else {}
    frames = sum(1 for _ in sample_frames(path, every_s, **kwargs))
    return {"frames": frames, "seconds": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        print(json.dumps(case(sys.argv[2], float(sys.argv[3]), sys.argv[4] == "reduced")))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--write":
        write(Path(sys.argv[2]), float(sys.argv[3]), tuple(int(v) for v in sys.argv[4].split("x")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "flight.mp4"
        # Linux keeps a process's peak memory across exec: the encoder's (hundreds of MB) must not be the
        # parent of the cases, so it runs in a process of its own too.
        subprocess.run([sys.executable, __file__, "--write", str(video), str(args.seconds), args.size], check=True)
        print(f"{args.size} H.264, {args.seconds:g} s at 30 fps ({video.stat().st_size / 1e6:.1f} MB), "
              f"sampled at {args.fps:g} fps")
        results = {}
        for name in ("full", "reduced"):
            proc = subprocess.run([sys.executable, __file__, "--case", str(video), str(1 / args.fps), name],
                                  capture_output=True, text=True, check=True)
            results[name] = r = json.loads(proc.stdout)
            print(f"  {name:8s} {r['frames']:4d} frames  peak {r['peak_mb']:7.1f} MB  "
                  f"{r['seconds'] / args.seconds:.3f} s per second of video")
        print(f"  peak memory full / reduced: {results['full']['peak_mb'] / results['reduced']['peak_mb']:.2f}")


if __name__ == "__main__":
    main()
