"""Pictures *named* as copies of one another: the names propose, the pictures decide.

`augmentation_stem` gives the stem that copies share (`x_aug3.png`, `x (2).jpg`, `aug_7_x.png`: `x`);
the pictures of one folder with one stem are a name group. A name only says that someone may have
copied a picture: a bulk rename also calls 372 different desert photos `Desert (1).jpg` ...
`Desert (372).jpg`. So two pictures of a name group are copies only when `agreeing_pairs` finds the one
to be the other flipped or turned (the 8 orientations of `converter.phash`), rotated by up to about 20
degrees, cropped or zoomed down to about 70 %, shifted, re-lit or recompressed.

How: the middle 75 % of picture b is sampled on a grid, and picture a is read on the same grid through
a pose (orientation, angle, scale, shift) that keeps the grid inside a. A coarse set of poses, on an 8x8
grid of blurred samples, scores every pair of a name group at once (a matrix product); each picture's
best partners are then refined by a local search on a 16x16 grid. Two pictures agree when, at the best
pose, both the samples and their fine detail (a sample minus its 3x3 mean) correlate at
`MIN_AGREEMENT` or more, with some contrast to correlate: two photos of sand under a sky share their
layout, not their detail.

`bench/copies.py` measures it. Over 600 different pictures taken as one name group (179,700 pairs): no
pair of random textures nor of landscapes sharing one horizon agreed, and 2 pairs of Sentinel-2 tiles
(one per place of ../shared/data/images; tiles showing little but one edge or one blob do). Copies of
20 kinds (those above, blur, noise) agreed in 98 to 100 % of cases for textures, 89 to 100 % for
landscapes, and 85 to 97 % for the 48-pixel tiles, of which a tenth are nearly flat; heavy noise
(sigma 20) is the exception there, at 25 %.
"""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path

import numpy as np

from converter import phash

# Words that image augmentation tools and people append to copies of a picture.
_AUG_WORDS = r"aug|augmented|augment|copy|flip|flipped|fliph|flipv|hflip|vflip|mirror|mirrored|rot|rotated|rot90|rot180|rot270|bright|dark|contrast|crop|cropped|zoom|noise|noisy|blur|blurred|shift|transformed"
_AUG_SUFFIX = re.compile(rf"(?:[ _.\-]+(?:{_AUG_WORDS})(?:[ _\-]?\d+)?|\s*\(\d+\)|[ _\-]copy(?:[ _\-]?\d+)?)$", re.IGNORECASE)
_AUG_PREFIX = re.compile(rf"^(?:{_AUG_WORDS})[_\-]\d*[_\-]?", re.IGNORECASE)

GRID, COARSE_GRID = 16, 8
INNER = 0.75  # rotated copies have filled corners; compare the middle of b
# angle (degrees), scale (a's side per b's side), shift x, y (pixels of the 32-px grey sample)
COARSE_POSES = np.array(list(product((-15.0, 0.0, 15.0), (1.0, 0.85, 0.7), (-4.0, 0.0, 4.0), (-4.0, 0.0, 4.0))))
_IDENTITY_POSE = np.array([[0.0, 1.0, 0.0, 0.0]])
STEPS = np.array([5.0, 0.05, 2.0, 2.0])  # first step of the local search, halved `REFINE_LEVELS` times
REFINE_LEVELS = 4
MAX_MOVES = 6  # steps a pose may move per level
KEEP = (0.3, 0.6)  # mean correlation a trial needs after the first levels to go on
PREFILTER = 0.7  # coarse correlation a pair needs to be refined
PARTNERS = 2  # refined partners per picture: its best coarse matches
POSES_TRIED = 2  # coarse poses refined per pair and direction
MIN_AGREEMENT = 0.85
MIN_CONTRAST = 2.0  # grey levels (standard deviation) both compared regions need
MARGIN = 1.0  # pixels a pose may read beyond a's edge
COARSE_BLUR = 3  # pixels: the coarse grid's spacing
_BLOCK = 64  # pictures per block of the coarse matrix product (bounds memory)
_TRIALS = 2048  # refinements at once (bounds memory)
_MOVES = np.concatenate([np.eye(4), -np.eye(4)])


def augmentation_stem(name: str) -> str:
    """`site12_aug3.png` -> `site12`: the stem that copies of one picture share, and so do pictures
    that are merely numbered alike (`Desert (7).jpg` -> `desert`). Pictures of one folder with one stem
    form a name group; `agreeing_pairs` says which of them are copies."""
    stem = Path(name).stem
    previous = None
    while previous != stem:
        previous = stem
        stem = _AUG_SUFFIX.sub("", stem)
        stem = _AUG_PREFIX.sub("", stem)
    return stem.lower() or Path(name).stem.lower()


def _points(grid: int) -> np.ndarray:
    u = ((np.arange(grid) + 0.5) / grid - 0.5) * INNER * phash.SAMPLE
    x, y = np.meshgrid(u, u)
    return np.stack([x.ravel(), y.ravel()])


_COARSE_POINTS, _POINTS = _points(COARSE_GRID), _points(GRID)
_REACH = float(_POINTS.max())  # half the side of b's grid


def _sample(greys: np.ndarray, poses: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P, M, points) bilinear samples of greys (P, n, n) through poses (P, M, 4): point p of b's grid
    is read in a at angle/scale/shift(p)."""
    n = greys.shape[-1]
    angle, scale = np.radians(poses[..., 0]), poses[..., 1]
    c, s = (scale * np.cos(angle))[..., None], (scale * np.sin(angle))[..., None]
    middle, last = (n - 1) / 2, n - 1.001  # outside a: its edge pixel, as most augmentation tools fill
    x = np.clip(c * points[0] - s * points[1] + poses[..., 2:3] + middle, 0, last).astype(np.float32)
    y = np.clip(s * points[0] + c * points[1] + poses[..., 3:4] + middle, 0, last).astype(np.float32)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = x - x0, y - y0
    flat = greys.reshape(-1).astype(np.float32, copy=False)
    at = (np.arange(len(greys), dtype=np.int32) * (n * n))[:, None, None] + y0 * n + x0
    top = flat[at] * (1 - fx) + flat[at + 1] * fx
    bottom = flat[at + n] * (1 - fx) + flat[at + n + 1] * fx
    return top * (1 - fy) + bottom * fy


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows with zero mean and unit length: their dot product is their correlation."""
    v = v - v.mean(-1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """The mean of each k x k neighbourhood of the last two axes (edges repeated)."""
    n = x.shape[-1]
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(k // 2, k // 2)] * 2, mode="edge")
    return sum(p[..., dy:dy + n, dx:dx + n] for dy in range(k) for dx in range(k)) / (k * k)


# v @ _DETAIL: a GRID x GRID sample minus its 3x3 mean, its fine detail
_EYE = np.eye(GRID * GRID).reshape(-1, GRID, GRID)
_DETAIL = (_EYE - _box(_EYE, 3)).reshape(GRID * GRID, -1)


def _coarse_views(grey: np.ndarray, orientations: int = 8, poses: np.ndarray = COARSE_POSES) -> np.ndarray:
    """(orientations x poses, COARSE_GRID^2): grey, blurred to the coarse grid's spacing (so that a pose a
    little off still scores well), in each orientation and pose."""
    oriented = np.stack(phash.orientations(_box(grey, COARSE_BLUR))[:orientations])
    posed = _sample(oriented, np.broadcast_to(poses, (len(oriented), *poses.shape)), _COARSE_POINTS)
    return _unit(posed).reshape(-1, COARSE_GRID * COARSE_GRID).astype(np.float32)


def _coarse(greys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """best[i, j]: the best coarse correlation of picture i posed onto j as it is; rows[i, j]: the rows
    (orientation x pose) of its `POSES_TRIED` best poses, best first."""
    n = len(greys)
    targets = np.concatenate([_coarse_views(g, 1, _IDENTITY_POSE) for g in greys])
    best = np.empty((n, n), np.float32)
    rows = np.empty((n, n, POSES_TRIED), np.int64)
    for start in range(0, n, _BLOCK):
        scores = np.stack([_coarse_views(g) for g in greys[start:start + _BLOCK]]) @ targets.T  # (block, rows, n)
        block = slice(start, start + len(scores))
        for k in range(POSES_TRIED):
            top = scores.argmax(1)
            rows[block, :, k] = top
            if k == 0:
                best[block] = np.take_along_axis(scores, top[:, None], 1)[:, 0]
            np.put_along_axis(scores, top[:, None], -np.inf, 1)
    np.fill_diagonal(best, -1.0)
    return best, rows


def _inside(poses: np.ndarray) -> np.ndarray:
    """Whether each pose reads b's grid from inside a (give or take MARGIN): a copy shows part of its
    original, and a region read from a's repeated edge pixels would match any flat target."""
    angle, scale = np.radians(poses[..., 0]), poses[..., 1]
    reach = scale * _REACH * (np.abs(np.cos(angle)) + np.abs(np.sin(angle))) + np.abs(poses[..., 2:]).max(-1)
    return reach <= (phash.SAMPLE - 1) / 2 + MARGIN


def _score(greys: np.ndarray, poses: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(P, M) mean of the sample and detail correlations of greys posed onto targets (P, 2, GRID^2); -1
    for a pose that reads outside a."""
    v = _sample(greys, poses, _POINTS)
    scores = (np.einsum("pmg,pg->pm", _unit(v), targets[:, 0]) + np.einsum("pmg,pg->pm", _unit(v @ _DETAIL), targets[:, 1])) / 2
    return np.where(_inside(poses), scores, -1.0)


def _refine(greys: np.ndarray, poses: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local search, all trials at once: every parameter one step up or down while that helps, then half
    steps. Returns the poses and the trials still alive: one below KEEP[level] after a level is dropped
    (true copies are well above it by then)."""
    best, score = poses.copy(), _score(greys, poses[:, None], targets)[:, 0]
    alive = np.arange(len(greys))
    for level in range(REFINE_LEVELS):
        for _ in range(MAX_MOVES):
            moves = best[alive, None] + _MOVES * (STEPS / 2 ** level)
            scores = _score(greys[alive], moves, targets[alive])
            k = scores.argmax(1)
            top = scores[np.arange(len(alive)), k]
            better = top > score[alive] + 1e-4
            if not better.any():
                break
            best[alive[better]], score[alive[better]] = moves[better, k[better]], top[better]
        if level < len(KEEP):
            alive = alive[score[alive] >= KEEP[level]]
    return best, alive


def _agreements(oriented: np.ndarray, greys_b: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """For each trial, how well a (already in its orientation), posed from its coarse pose and refined,
    shows b: the lower of the samples' and the details' correlation; -1 when the search gave up on it
    or a compared region is too flat to say."""
    b = _sample(greys_b, np.broadcast_to(_IDENTITY_POSE, (len(greys_b), 1, 4)), _POINTS)[:, 0]
    targets = np.stack([_unit(b), _unit(b @ _DETAIL)], 1)
    best, alive = _refine(oriented, poses, targets)
    v = _sample(oriented[alive], best[alive, None], _POINTS)[:, 0]
    out = np.full(len(poses), -1.0)
    out[alive] = np.minimum((_unit(v) * targets[alive, 0]).sum(1), (_unit(v @ _DETAIL) * targets[alive, 1]).sum(1))
    flat = (v.std(1) < MIN_CONTRAST) | (b[alive].std(1) < MIN_CONTRAST)  # correlation of noise says nothing
    out[alive[flat]] = -1.0
    return out


def agreeing_pairs(greys: list[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of one name group's grey samples whose pictures are copies of each other."""
    if len(greys) < 2:
        return []
    best, rows = _coarse(greys)
    either = np.maximum(best, best.T)
    pairs = sorted({(min(i, j), max(i, j)) for i in range(len(greys))
                    for j in np.argsort(-either[i], kind="stable")[:PARTNERS] if either[i, j] >= PREFILTER})
    # every pair is tried from its POSES_TRIED best coarse poses, in both directions, all trials at once
    trials = [(pair, a, b, int(row)) for pair, (i, j) in enumerate(pairs) for a, b in ((i, j), (j, i)) for row in rows[a, b]]
    agreed = set()
    for start in range(0, len(trials), _TRIALS):
        chunk = trials[start:start + _TRIALS]
        oriented = np.stack([phash.orientations(greys[a])[row // len(COARSE_POSES)] for _, a, _, row in chunk])
        poses = np.stack([COARSE_POSES[row % len(COARSE_POSES)] for *_, row in chunk])
        scores = _agreements(oriented, np.stack([greys[b] for _, _, b, _ in chunk]), poses)
        agreed |= {chunk[k][0] for k in np.flatnonzero(scores >= MIN_AGREEMENT)}
    return [pairs[k] for k in sorted(agreed)]
