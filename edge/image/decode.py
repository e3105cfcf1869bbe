"""Decoding a frame: encoded bytes or a file -> an upright RGB picture with its EXIF, refused early
when it is too large, not a format we read, or its data cannot fill the picture its header claims
(edge/image/integrity.py). (From picture to tensor: edge/features/pixels.py.)

JPEGs are decoded at a reduced scale (`Image.draft`) when the model needs fewer pixels than the
file has, which is most of the cost of a large camera frame.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from edge.features.pixels import to_rgb
from edge.image.integrity import CUT_SHORT, DamagedData, check_png, jpeg_to_decode

# Formats a field unit is expected to see; anything else is refused before a decoder runs.
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")  # the JPEG opener also yields MPO (multi-picture JPEG)
JPEG_FORMATS = ("JPEG", "MPO")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 64_000_000  # an 8000 x 8000 frame; decoded RGB is ~190 MB
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# Pillow's own bomb limit (~179 MP, raised from Image.open) is off: every frame goes through open_frame,
# whose `max_pixels` (--max-pixels) is checked against the header's size before anything is decoded,
# so it is the one limit, above Pillow's default as well as below it, and no call changes it for another.
Image.MAX_IMAGE_PIXELS = None


class ImageError(Exception):
    """A frame that cannot be used; the message says why (the caller adds the file name)."""


@dataclass
class Frame:
    image: Image.Image  # upright RGB, possibly decoded at a reduced scale
    width: int  # upright size of the original frame, in source pixels
    height: int
    scale: float  # image pixels per source pixel (1.0, or 1/2, 1/4, 1/8 after a JPEG draft)
    format: str
    exif: Image.Exif


def open_frame(
    source: str | Path | bytes,
    *,
    min_scale: float = 1.0,
    min_size: tuple[int, int] = (1, 1),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Frame:
    """Decode a frame, upright. A JPEG may come back reduced, but never below `min_scale` of its
    source size, nor below `min_size` (upright width, height)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        # Read the file whole: no file handle outlives this call, and a file that changes while
        # we decode it (a copy still in progress) cannot mix two versions.
        try:
            size = Path(source).stat().st_size
            if size > max_bytes:
                raise ImageError(f"file is {size:,} bytes, above the limit of {max_bytes:,}")
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"file is {len(data):,} bytes, above the limit of {max_bytes:,}")
    img = _open(data)  # reads the header only
    stored_w, stored_h = img.size
    if stored_w * stored_h > max_pixels:
        raise ImageError(
            f"image is {stored_w}x{stored_h} = {stored_w * stored_h:,} pixels, above the limit of "
            f"{max_pixels:,} (a decompression bomb, or raise the limit with --max-pixels)"
        )
    try:
        if img.format in JPEG_FORMATS:
            decodable = jpeg_to_decode(data)
            if decodable is not data:
                img = _open(decodable)  # the same header; only where the picture data ends differs
        elif img.format == "PNG":
            check_png(data)
    except DamagedData as exc:
        raise _damaged(exc) from None
    return _decode(img, min_scale=min_scale, min_size=min_size)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"not an image this runtime reads ({', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _damaged(exc) from None


def _damaged(exc: Exception) -> ImageError:
    """What is wrong with the data, in a field technician's words (a decoder's own when we have none)."""
    if isinstance(exc, DamagedData):
        cause = str(exc)
    elif isinstance(exc, EOFError) or "truncated" in str(exc).lower():  # Pillow: "image file is truncated"
        cause = CUT_SHORT
    else:
        cause = f"the picture data is damaged ({exc})"
    return ImageError(f"corrupt or truncated image data: {cause}")


def _decode(img: Image.Image, *, min_scale: float, min_size: tuple[int, int]) -> Frame:
    stored_w, stored_h = img.size
    fmt = img.format or "unknown"
    jpeg = fmt in JPEG_FORMATS
    # A JPEG's EXIF sits in its header, and the draft needs the orientation before decoding.
    # Other formats may decode everything to find their EXIF, so they load first.
    exif = _read_exif(img) if jpeg else None
    if jpeg and min_scale < 1.0:
        if exif.get(0x0112, 1) in (5, 6, 7, 8):  # stored sideways: the upright minimum swaps axes
            min_size = (min_size[1], min_size[0])
        want = (max(min_size[0], math.ceil(stored_w * min_scale)), max(min_size[1], math.ceil(stored_h * min_scale)))
        img.draft(img.mode, want)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _damaged(exc) from None
    if exif is None:
        exif = _read_exif(img)
    orientation = exif.get(0x0112, 1)
    scale = img.size[0] / stored_w
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    upright_w, upright_h = (stored_h, stored_w) if orientation in (5, 6, 7, 8) else (stored_w, stored_h)
    return Frame(image=to_rgb(img), width=upright_w, height=upright_h, scale=scale, format=fmt, exif=exif)


def _read_exif(img: Image.Image) -> Image.Exif:
    try:
        return img.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost us the pixels
        return Image.Exif()
