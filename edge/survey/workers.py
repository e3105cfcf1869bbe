"""Classifying chunks of tiles: read each window (resampled to the training tile), run the chunk as one
batch, and return its scores and small thumbnails for the overview.

On more than one core, worker processes each open the ortho and the model themselves (a GDAL dataset
and an interpreter belong to one process) and take chunks from a short queue, and this process classifies
beside them. bench/scan.py measured processes against one process with interpreter threads: on 2 nearly
idle cores, 2 workers were 1.6-1.7x faster than one, interpreter threads 1.03-1.15x (the interpreter is a
sixth of the time; reading and resampling windows is the rest).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.features.pixels import prepare_tile
from edge.image.classify import predict_tiles
from edge.model.loaded import load_model
from edge.survey.grid import Tile
from edge.survey.raster import MIN_VALID, Ortho, WindowReader

QUEUE_PER_WORKER = 2  # chunks handed out ahead: enough to keep a worker busy, a short tail at the end


@dataclass(frozen=True)
class Job:
    ortho: Ortho
    model_path: Path
    backend: str | None
    threads: int | None
    out_px: int  # the training tile size (what a full window is read to)
    tile_w: int  # ortho pixels of a full tile
    tile_h: int
    thumb_scale: float  # overview pixels per ortho pixel


@dataclass
class ChunkResult:
    chunk: int
    scores: np.ndarray  # (tiles, labels) float32; NaN rows for tiles that were not classified (no ortho there)
    thumbs: list[bytes | None]  # RGB bytes of each tile's overview thumbnail
    read_s: float  # reading and resampling the windows
    invoke_s: float  # the interpreter


class ChunkClassifier:
    def __init__(self, job: Job):
        self.job = job
        self.reader = WindowReader(job.ortho)
        self.model = load_model(job.model_path, backend=job.backend, num_threads=job.threads, task="image")

    def run(self, chunk: int, tiles: list[Tile]) -> ChunkResult:
        start = time.perf_counter()
        spec, out_px = self.model.manifest.input, self.job.out_px
        inputs, rows, thumbs = [], [], []
        full_tile = self.job.tile_w * self.job.tile_h
        for i, tile in enumerate(tiles):
            covered = tile.width * tile.height >= MIN_VALID * full_tile  # a small ortho's edge clips a tile
            pixels = self.reader.read(tile.x, tile.y, tile.width, tile.height, tile.out_w, tile.out_h) if covered else None
            if pixels is None:
                thumbs.append(None)
                continue
            if pixels.shape[:2] != (out_px, out_px):  # clipped, but mostly ortho: the rest is black
                full = np.zeros((out_px, out_px, 3), np.uint8)
                full[: pixels.shape[0], : pixels.shape[1]] = pixels
                pixels = full
            picture = Image.fromarray(pixels)
            inputs.append(prepare_tile(picture, spec))
            rows.append(i)
            size = (max(1, round(tile.width * self.job.thumb_scale)), max(1, round(tile.height * self.job.thumb_scale)))
            crop = picture.crop((0, 0, tile.out_w, tile.out_h))
            thumbs.append(crop.resize(size, Image.Resampling.BOX).tobytes())
        read_s = time.perf_counter() - start
        scores = np.full((len(tiles), len(self.model.manifest.labels)), np.nan, dtype=np.float32)
        if inputs:
            scores[rows] = predict_tiles(self.model, np.stack(inputs), spec.tta)  # the model's TTA, as classify scores
        return ChunkResult(chunk, scores, thumbs, read_s, time.perf_counter() - start - read_s)

    def close(self) -> None:
        self.reader.close()


_WORKER: ChunkClassifier | None = None


def _start_worker(job: Job) -> None:
    global _WORKER
    _WORKER = ChunkClassifier(job)


def _run_in_worker(chunk: int, tiles: list[Tile]) -> ChunkResult:
    return _WORKER.run(chunk, tiles)


def classify_chunks(job: Job, chunks: dict[int, list[Tile]], workers: int) -> Iterator[ChunkResult]:
    """Results of every chunk, in the order they finish. With N workers, N - 1 are processes and this
    process is the N-th: it classifies from the start while the others are still starting (a spawned
    worker takes about a second to import and load the model), and it would only wait for them anyway."""
    if not chunks:  # a finished scan run again: nothing to open
        return
    todo = iter(chunks.items())
    here = ChunkClassifier(job)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(job,))
    try:
        running: set = set()
        while True:
            while pool is not None and len(running) < (workers - 1) * QUEUE_PER_WORKER and \
                    (item := next(todo, None)) is not None:
                running.add(pool.submit(_run_in_worker, *item))
            finished = {future for future in running if future.done()}
            running -= finished
            for future in finished:
                yield future.result()
            if (item := next(todo, None)) is not None:
                yield here.run(*item)
                continue
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        here.close()
