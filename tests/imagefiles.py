"""Real image files for the tests, written with Pillow."""

from __future__ import annotations

import io

import numpy as np
from build_models import TILE
from PIL import Image

RED = (230, 20, 20)  # the tiny model's "mining"
GREEN = (40, 160, 40)  # its "not_mining"


def solid(colour, size=(TILE, TILE)) -> Image.Image:
    return Image.new("RGB", size, colour)


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def scene_with_block(size=(160, 96), block=(64, 32, 96, 64), base=GREEN, colour=RED) -> Image.Image:
    """A green frame with one red block: the block is where the 'mine' is."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = base
    x0, y0, x1, y1 = block
    arr[y0:y1, x0:x1] = colour
    return Image.fromarray(arr)
