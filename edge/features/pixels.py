"""How a picture becomes the model's input tensor: the manifest's input spec, RGB conversion, crop and
resize, normalisation. One implementation: the converter imports this module for its training data, so
the edge feeds the model exactly what it learnt from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
# Test-time augmentation: overhead imagery has no "up", so a tile may be scored as the mean of its scores
# in several orientations. n -> the orientations, each (quarter turns, mirrored first): 2 adds the mirror
# image, 4 the four quarter turns (chosen over {mirrors, half turn} on validation), 8 all of them.
TTA_ORIENTATIONS = {1: ((0, False),), 2: ((0, False), (0, True)),
                    4: ((0, False), (1, False), (2, False), (3, False)),
                    8: tuple((turns, mirror) for mirror in (False, True) for turns in range(4))}


@dataclass(frozen=True)
class InputSpec:
    """How a picture becomes the model's input tensor: resize to `size`, then (x - mean) / std."""

    size: tuple[int, int]  # (width, height) in model pixels
    colour: str = "rgb"  # "log-mel" for audio models: size is then (n_mels, frames) and mean/std are unused
    resize: str = "bilinear"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    dtype: str = "int8"  # the model's input tensor type, checked against the tensor on load
    tta: int = 1  # image models: orientations averaged per tile (a key of TTA_ORIENTATIONS); 1 = none

    def __post_init__(self) -> None:
        if isinstance(self.tta, bool) or self.tta not in TTA_ORIENTATIONS:
            raise ValueError(f"tta: expected one of {', '.join(map(str, TTA_ORIENTATIONS))}, got {self.tta!r}")
        if self.tta > 1 and self.colour != "rgb":
            raise ValueError(f"tta: only pictures are turned and mirrored, this input is {self.colour!r}: use 1")
        if self.tta > 2 and self.size[0] != self.size[1]:
            raise ValueError(f"tta: {self.tta} turns a tile a quarter, which needs a square input, not {list(self.size)}")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. 16-bit greyscale is scaled down, not clipped."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16"):
        arr = (np.asarray(img, dtype=np.float32) / 257.0).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode in ("I", "F"):
        arr = np.clip(np.asarray(img, dtype=np.float32), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA").convert("RGB")
    return img.convert("RGB")


def prepare_tile(img: Image.Image, spec: InputSpec, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Crop `box` (image pixels) and resize to the model's input size: uint8 array (H, W, 3)."""
    if box is not None:
        img = img.crop(tuple(int(round(v)) for v in box))
    if img.size != spec.size:
        img = img.resize(spec.size, _RESAMPLE[spec.resize])
    return np.asarray(to_rgb(img), dtype=np.uint8)


def normalise(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels (..., 3) -> float32 (x - mean) / std, as the model was trained."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (pixels.astype(np.float32) - mean) / std


def orientations(pixels: np.ndarray, n: int) -> np.ndarray:
    """uint8 tiles (N, H, W, 3) -> (n * N, H, W, 3): the n orientations of TTA_ORIENTATIONS[n], orientation-major
    (rows k * N .. k * N + N - 1 are every tile in orientation k; orientation 0 is the tile as it is)."""
    if n not in TTA_ORIENTATIONS:
        raise ValueError(f"tta: expected one of {', '.join(map(str, TTA_ORIENTATIONS))}, got {n!r}")
    if n == 1:
        return pixels
    return np.concatenate([np.rot90(pixels[:, :, ::-1] if mirror else pixels, turns, axes=(1, 2))
                           for turns, mirror in TTA_ORIENTATIONS[n]])
