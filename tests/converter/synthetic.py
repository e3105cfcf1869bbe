"""A small labelled picture set that a tiny model can learn in seconds, written as real files.

'mining' tiles are forest texture with bare orange-brown patches (mud flats, tailings);
'not_mining' tiles are forest texture with a dark river line. Every tile is different.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def tile(label: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    base = np.stack([rng.normal(50, 12, (size, size)), rng.normal(95, 15, (size, size)), rng.normal(45, 10, (size, size))], -1)
    if label == "mining":
        for _ in range(rng.integers(1, 4)):
            h, w = rng.integers(size // 5, size // 2, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            base[y : y + h, x : x + w] = rng.normal((200, 140, 90), 12, (h, w, 3))
    else:
        y = rng.integers(4, size - 4)
        for x in range(size):
            y = int(np.clip(y + rng.integers(-1, 2), 2, size - 3))
            base[y - 2 : y + 2, x] = rng.normal((30, 50, 70), 5, (4, 3))
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def write_class_folders(root: Path, per_class: int = 60, size: int = 32, seed: int = 0) -> dict[str, list[Path]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {}
    for label in ("mining", "not_mining"):
        (root / label).mkdir(parents=True, exist_ok=True)
        out[label] = []
        for k in range(per_class):
            path = root / label / f"{label[:3]}{k:03d}.png"
            tile(label, rng, size).save(path)
            out[label].append(path)
    return out


def photo(seed: int, size: int = 64) -> Image.Image:
    """A picture unlike that of any other seed: a smooth random texture (amplitude falling as 1/f, as in
    photographs) over a colour gradient."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    amplitude = 1.0 / np.maximum(np.hypot(*np.meshgrid(f, f)), 1.0 / size)
    texture = np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((size, size)))).real
    texture = (texture - texture.mean()) / texture.std()
    u = np.linspace(-1, 1, size)
    gradient = rng.uniform(-1, 1) * u[:, None] + rng.uniform(-1, 1) * u[None, :]
    pixels = rng.uniform(70, 180, 3) + 35 * texture[..., None] * rng.uniform(0.6, 1.4, 3) + 30 * gradient[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
