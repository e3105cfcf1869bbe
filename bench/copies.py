"""How well the name + picture rule (converter.copies) tells copies from different pictures.

For each set of different pictures it prints how many pairs agreed (each one a false merge) and the CPU
time of `agreeing_pairs` over the whole set taken as one name group (the `Desert (N).jpg` case), then the
share of copies of each kind that agreed with their original.

Sets: `textures` (tests/converter/synthetic.photo), `landscapes` (the same textures as ground under a sky
whose horizon every picture shares: alike in layout, different in detail) and, with --tiles, one picture
per group of a folder with index.csv (path,label,group), e.g. ../shared/data/images.

    .venv/bin/python bench/copies.py [--count 400] [--copies 60] [--tiles ../shared/data/images]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "converter"))

from synthetic import photo  # noqa: E402

from converter.copies import agreeing_pairs  # noqa: E402
from converter.phash import grey_sample  # noqa: E402

B = Image.Resampling.BILINEAR


def landscape(seed: int, size: int = 96) -> Image.Image:
    ground = np.asarray(photo(seed, size), dtype=np.float64)
    rows = np.arange(size)[:, None, None]
    horizon = size * np.random.default_rng(seed).uniform(0.3, 0.6)
    sky = np.broadcast_to(np.array([120.0, 160.0, 230.0]) + rows * np.array([0.6, 0.4, 0.0]), ground.shape)
    return Image.fromarray(np.where(rows > horizon, ground, sky).astype(np.uint8))


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _crop(img: Image.Image, x0: float, y0: float, x1: float, y1: float, resize: bool = True) -> Image.Image:
    w, h = img.size
    out = img.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
    return out.resize((w, h), B) if resize else out


def _noise(img: Image.Image, sigma: float) -> Image.Image:
    a = np.asarray(img, dtype=np.float64) + np.random.default_rng(1).normal(0, sigma, np.asarray(img).shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


COPIES = {
    "jpeg q60": lambda im: _jpeg(im, 60),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "turned 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "brighter x1.4": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
    "darker x0.6": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "contrast x0.6": lambda im: ImageEnhance.Contrast(im).enhance(0.6),
    "blurred": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    "rotated 5": lambda im: im.rotate(5, resample=B),
    "rotated 10": lambda im: im.rotate(10, resample=B),
    "rotated 15": lambda im: im.rotate(15, resample=B),
    "rotated -20": lambda im: im.rotate(-20, resample=B),
    "middle 90 % zoomed": lambda im: _crop(im, 0.05, 0.05, 0.95, 0.95),
    "middle 80 % zoomed": lambda im: _crop(im, 0.1, 0.1, 0.9, 0.9),
    "middle 70 % zoomed": lambda im: _crop(im, 0.15, 0.15, 0.85, 0.85),
    "top-left 80 % zoomed": lambda im: _crop(im, 0, 0, 0.8, 0.8),
    "bottom-right 80 % zoomed": lambda im: _crop(im, 0.2, 0.2, 1, 1),
    "top-right 75 %": lambda im: _crop(im, 0.25, 0, 1, 0.75, resize=False),
    "shifted 10 %": lambda im: im.transform(im.size, Image.Transform.AFFINE, (1, 0, im.size[0] // 10, 0, 1, 0)),
    "noise sigma 20": lambda im: _noise(im, 20),
    "mirrored, rotated 15, brighter": lambda im: ImageEnhance.Brightness(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(15, resample=B)).enhance(1.3),
}


def tiles(root: Path, count: int) -> list[Image.Image]:
    seen, paths = set(), []
    with open(root / "index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["group"] not in seen:
                seen.add(row["group"])
                paths.append(root / row["path"])
    np.random.default_rng(3).shuffle(paths)
    return [Image.open(p).convert("RGB") for p in paths[:count]]


def measure(name: str, pictures: list[Image.Image], copies: int) -> None:
    greys = [grey_sample(p) for p in pictures]
    start = time.process_time()
    false = agreeing_pairs(greys)
    seconds = time.process_time() - start
    flat = sum(g.std() < 4 for g in greys)
    print(f"{name}: {len(pictures)} different pictures ({flat} nearly flat), {len(pictures) * (len(pictures) - 1) // 2:,} pairs: "
          f"{len(false)} agreed (false merges); {seconds:.1f} s CPU")
    for kind, make in COPIES.items():
        agreed = [agreeing_pairs([greys[k], grey_sample(_jpeg(make(pictures[k]), 90))]) == [(0, 1)] for k in range(copies)]
        print(f"  {kind:32s} {100 * np.mean(agreed):5.1f} % of {copies} copies agreed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="different pictures per set")
    parser.add_argument("--copies", type=int, default=60, help="originals per set whose copies are tried")
    parser.add_argument("--tiles", type=Path, help="a folder with index.csv (path,label,group): one picture per group")
    args = parser.parse_args()
    measure("textures", [photo(1000 + k, 96) for k in range(args.count)], args.copies)
    measure("landscapes", [landscape(k) for k in range(args.count)], args.copies)
    if args.tiles:
        measure(f"tiles of {args.tiles}", tiles(args.tiles, args.count), args.copies)


if __name__ == "__main__":
    main()
