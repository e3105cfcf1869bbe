"""Run a bundle on one edge backend in a clean process: scores for given pixels, and latency.

The converter's own process has imported TensorFlow, and tflite-runtime breaks in such a process
(`vector::reserve` in GetSignatureDefs), so every TFLite evaluation goes through this module in a
subprocess: it imports the edge runtime only, exactly as a device would.

    python -m converter.crosscheck BUNDLE PIXELS.npy SCORES.npy --backend tflite-runtime
prints one JSON line: {"backend", "version", "latency_ms", "input", "output"}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class CrossCheckError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("pixels", type=Path)
    parser.add_argument("scores", type=Path)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    assert "tensorflow" not in sys.modules
    from edge.model.loaded import load_model

    model = load_model(args.bundle, backend=args.backend, num_threads=1)
    pixels = np.load(args.pixels)
    scores = np.concatenate([model.predict(pixels[i : i + 64]) for i in range(0, len(pixels), 64)])
    np.save(args.scores, scores)
    one = pixels[:1]
    model.predict(one)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        model.predict(one)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "backend": model.runner.backend,
        "version": model.runner.backend_version,
        "latency_ms": round(statistics.median(times) * 1000, 3),
        "input": model.runner.input.dtype,
        "output": model.runner.output.dtype,
    }))
    return 0


def run_on_backend(bundle: Path, pixels: np.ndarray, backend: str, repeat: int = 50) -> tuple[np.ndarray, dict]:
    """Scores and timing of `bundle` on `backend`, measured in a fresh process without TensorFlow."""
    with tempfile.TemporaryDirectory() as tmp:
        px, sc = Path(tmp) / "pixels.npy", Path(tmp) / "scores.npy"
        np.save(px, pixels)
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(
            [sys.executable, "-m", "converter.crosscheck", str(bundle), str(px), str(sc), "--backend", backend, "--repeat", str(repeat)],
            capture_output=True, text=True, env=env, timeout=1800,
        )
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise CrossCheckError(f"{bundle.name} does not run on {backend}: {last}")
        return np.load(sc), json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
