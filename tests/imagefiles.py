"""Real image files for the tests, written with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

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


# Damaged files, made the way they happen in the field (and the way issue 16 reported them).
MOSAIC = Path(__file__).resolve().parent.parent / "samples" / "scenes" / "mosaic_a.png"  # real Sentinel-2 tiles


def photo(size=(640, 480)) -> Image.Image:
    """A frame with real structure: the sample Sentinel-2 mosaic, resized to `size`."""
    with Image.open(MOSAIC) as img:
        return img.convert("RGB").resize(size, Image.Resampling.BICUBIC)


def cut_short(data: bytes, fraction: float, tail: bytes = b"") -> bytes:
    """The first `fraction` of a file's bytes, then `tail` (b"\\xff\\xd9" closes a JPEG as if whole)."""
    return data[: int(len(data) * fraction)] + tail


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF) is rewritten to claim another size; the picture data stays."""
    out, pos = bytearray(data), 2
    while out[pos + 1] not in (0xC0, 0xC1, 0xC2):
        pos += 2 + struct.unpack(">H", out[pos + 2 : pos + 4])[0]
    out[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def png_claiming(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header chunk (IHDR) claims another size, with a valid checksum; the data stays."""
    body = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + png_chunk(b"IHDR", body) + data[33:]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# A drone photo as DJI writes it: EXIF focal length and focal-plane resolution (a 17.3 mm sensor across the
# frame, as a Mavic 3E's), and the flight's height above the take-off point in the XMP.
DRONE_FOCAL_MM, DRONE_SENSOR_MM = 12.29, 17.3
DRONE_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="DJI Meta Data" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
    ' drone-dji:RelativeAltitude="+{alt:.4f}" drone-dji:GimbalPitchDegree="-90.00"/>'
    '</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
)


def drone_jpeg(path: Path, img: Image.Image, gsd_m: float) -> Path:
    """`img` saved as a nadir drone photo whose EXIF and XMP say `gsd_m` metres per pixel (edge/image/gsd.py:
    sensor width x altitude / (focal length x width), solved for the altitude)."""
    from fractions import Fraction

    from PIL.TiffImagePlugin import IFDRational

    width = img.width
    altitude = gsd_m * DRONE_FOCAL_MM * width / DRONE_SENSOR_MM
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "DJI", "M3E"
    sub = exif.get_ifd(0x8769)
    sub[0x920A] = IFDRational(Fraction(DRONE_FOCAL_MM).limit_denominator(1000))
    sub[0xA20E] = IFDRational(Fraction(width / DRONE_SENSOR_MM).limit_denominator(10**6))
    sub[0xA210], sub[0xA002] = 4, width  # millimetres; the width the resolution counts
    img.save(path, "JPEG", quality=95, exif=exif, xmp=DRONE_XMP.format(alt=altitude).encode())
    return path
