"""Pictures named as copies are copies only when the pictures agree: flipped, turned, rotated, cropped,
shifted or re-lit copies do; different pictures never do, however alike their names."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageEnhance
from synthetic import photo

from converter.copies import agreeing_pairs
from converter.phash import grey_sample

BILINEAR = Image.Resampling.BILINEAR


def _jpeg(img: Image.Image, quality: int = 85) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


AUGMENTATIONS = {
    "saved again as JPEG": lambda im: _jpeg(im, 50),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "turned": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "rotated 12 degrees": lambda im: im.rotate(12, resample=BILINEAR),
    "rotated -18 degrees": lambda im: im.rotate(-18, resample=BILINEAR),
    "cropped to 80 % and zoomed": lambda im: im.crop((6, 6, 58, 58)).resize((64, 64), BILINEAR),
    "top-left 75 % zoomed": lambda im: im.crop((0, 0, 48, 48)).resize((64, 64), BILINEAR),
    "bottom-right 70 %": lambda im: im.crop((19, 19, 64, 64)),
    "shifted": lambda im: im.transform(im.size, Image.Transform.AFFINE, (1, 0, 6, 0, 1, -4)),
    "flipped and brighter": lambda im: ImageEnhance.Brightness(im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)).enhance(1.3),
    "rotated, cropped and darker": lambda im: ImageEnhance.Brightness(im.rotate(8, resample=BILINEAR).crop((4, 4, 60, 60))).enhance(0.75),
}


@pytest.mark.parametrize("kind", AUGMENTATIONS)
def test_an_augmented_copy_agrees_with_its_original(kind):
    for seed in range(6):
        original = photo(seed)
        copy = _jpeg(AUGMENTATIONS[kind](original))
        assert agreeing_pairs([grey_sample(original), grey_sample(copy)]) == [(0, 1)], f"seed {seed}"


def test_different_pictures_never_agree():
    assert agreeing_pairs([grey_sample(_jpeg(photo(seed))) for seed in range(200)]) == []


def test_copies_are_found_among_many_different_pictures():
    pictures = [_jpeg(photo(seed)) for seed in range(100)]
    pictures += [AUGMENTATIONS["rotated 12 degrees"](pictures[3]), AUGMENTATIONS["top-left 75 % zoomed"](pictures[70])]
    assert agreeing_pairs([grey_sample(p) for p in pictures]) == [(3, 100), (70, 101)]
