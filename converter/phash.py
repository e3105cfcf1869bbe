"""Perceptual hashes to find near-duplicate pictures, including flipped and rotated copies.

pHash: the picture as 32x32 greyscale, its 2-D DCT, the 8x8 lowest frequencies (DC dropped)
compared with their median -> 64 bits. Brightness and contrast changes, mild blur and JPEG
recompression keep the hash within a few bits. Flips and 90-degree rotations do not, so every
picture is also hashed in its 8 orientations and a pair matches when any orientation of one is
within `max_distance` bits of the other.

Hash matches are confirmed by the correlation of the two 32x32 greyscale samples, because on
low-texture scenes (forest, water) unrelated pictures can hash alike.

Pairs are found without comparing all n^2 hashes: a 64-bit hash cut into `max_distance + 1` bands
has, for any two hashes within `max_distance` bits, at least one band that is identical
(pigeonhole), so only hashes that share a band are compared.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from PIL import Image

HASH_SIZE = 8
SAMPLE = 32


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(SAMPLE)


def grey_sample(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((SAMPLE, SAMPLE), Image.Resampling.BILINEAR), dtype=np.float64)


def phash_bits(grey: np.ndarray) -> int:
    coeffs = (_DCT @ grey @ _DCT.T)[:HASH_SIZE, :HASH_SIZE].ravel()[1:]  # drop DC: brightness
    bits = coeffs > np.median(coeffs)
    return int("".join("1" if b else "0" for b in bits), 2)


def orientations(grey: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of a square array."""
    out = []
    for k in range(4):
        r = np.rot90(grey, k)
        out += [r, r[:, ::-1]]
    return out


def hashes(img: Image.Image) -> list[int]:
    """8 hashes: index 0 is the picture as it is."""
    return [phash_bits(g) for g in orientations(grey_sample(img))]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_pairs(all_hashes: list[list[int]], max_distance: int) -> dict[tuple[int, int], int]:
    """{(i, j): k} for i != j where orientation k of picture i is within max_distance bits of
    picture j as it is. Both (i, j) and (j, i) may appear."""
    bands = max_distance + 1
    bits = HASH_SIZE * HASH_SIZE - 1
    edges = [round(b * bits / bands) for b in range(bands + 1)]

    def keys(h: int):
        for band in range(bands):
            lo, hi = edges[band], edges[band + 1]
            yield band, (h >> lo) & ((1 << (hi - lo)) - 1)

    index: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for i, variants in enumerate(all_hashes):
        for k, h in enumerate(variants):
            for key in keys(h):
                index[key].append((i, k, h))
    pairs: dict[tuple[int, int], int] = {}
    for j, variants in enumerate(all_hashes):
        query = variants[0]
        for key in keys(query):
            for i, k, h in index.get(key, ()):
                if i != j and (i, j) not in pairs and hamming(h, query) <= max_distance:
                    pairs[(i, j)] = k
    return pairs


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0
