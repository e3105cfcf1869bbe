"""Damaged frames (issue 16): cut short, or a header that claims more than the data holds, are refused
by open_frame with a cause a field technician understands; whole frames decode exactly as before."""

from __future__ import annotations

import importlib
import io
import struct
import zlib

import numpy as np
import pytest
from imagefiles import cut_short, encode, jpeg_claiming, photo, png_chunk, png_claiming
from PIL import Image, ImageFile, ImageOps

from edge.image.decode import ImageError, open_frame
from edge.image.integrity import png_data_size

END_OF_JPEG = b"\xff\xd9"
END_OF_PNG = png_chunk(b"IEND", b"")
CUT = "corrupt or truncated image data: the file ends before its picture does: it was cut short"


@pytest.fixture(scope="module")
def frame_jpeg() -> bytes:
    return encode(photo((640, 480)), "JPEG", quality=90)


@pytest.fixture(scope="module")
def frame_png() -> bytes:
    return encode(photo((640, 480)), "PNG")


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
@pytest.mark.parametrize("options", [{}, {"min_scale": 0.3}], ids=["full", "draft"])
def test_jpeg_cut_short_and_closed_with_an_end_marker_is_refused(frame_jpeg, fraction, options):
    # Issue 16: a 640x480 JPEG cut at 5 % with FF D9 appended was classified "not_mining 0.945".
    with pytest.raises(ImageError, match=CUT):
        open_frame(cut_short(frame_jpeg, fraction, END_OF_JPEG), **options)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5])
def test_progressive_jpeg_cut_short_is_refused(fraction):
    data = encode(photo((640, 480)), "JPEG", quality=90, progressive=True)
    with pytest.raises(ImageError, match=rf"{CUT}.*; the picture stops after \d+ of its passes"):
        open_frame(cut_short(data, fraction, END_OF_JPEG))


def test_jpeg_header_claiming_more_rows_than_its_data_is_refused(frame_jpeg):
    with pytest.raises(ImageError, match=CUT):
        open_frame(jpeg_claiming(frame_jpeg, 640, 960))


@pytest.fixture(scope="module")
def tiny_jpeg() -> bytes:
    return encode(photo((40, 30)), "JPEG", quality=90)


def test_tiny_jpeg_claiming_7999x7999_is_refused_from_its_header(tiny_jpeg, no_decoding):
    # Issue 16: 1.2 kB whose header says 7999x7999 took 43 s and 335 MB to answer "not_mining 0.984".
    data = jpeg_claiming(tiny_jpeg, 7999, 7999)
    assert 1100 < len(data) < 1300
    with pytest.raises(ImageError, match=r"its header says 7999x7999 pixels, but the file holds only [\d,]+ bytes of "
                                         r"picture data, too few for that size \(at least 187,500\)"):
        open_frame(data)


@pytest.mark.parametrize("tail", [b"", END_OF_PNG], ids=["cut", "cut+IEND"])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_png_cut_short_is_refused(frame_png, fraction, tail, no_decoding):
    with pytest.raises(ImageError, match=CUT):
        open_frame(cut_short(frame_png, fraction, tail))


@pytest.mark.parametrize(("size", "than"), [((640, 960), "less"), ((640, 240), "more")])
def test_png_header_that_disagrees_with_its_data_is_refused(frame_png, size, than, no_decoding):
    # Pillow decodes the taller one with its missing rows black, and the shorter one from half the data.
    with pytest.raises(ImageError, match=rf"its header says {size[0]}x{size[1]} pixels, but its picture data holds "
                                         rf"{than} than that"):
        open_frame(png_claiming(frame_png, *size))


def test_png_with_corrupt_compressed_data_is_refused(frame_png, no_decoding):
    data = bytearray(frame_png)
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    with pytest.raises(ImageError, match="its compressed picture data is corrupt"):
        open_frame(bytes(data))


def test_png_data_size_counts_filter_bytes_and_interlace_passes():
    assert png_data_size(640, 480, 24, interlaced=False) == 480 * (1 + 640 * 3)
    assert png_data_size(3, 1, 1, interlaced=False) == 2
    # Adam7 on 3x2 RGB: passes 1, 4 and 6 hold one pixel of the first row each, pass 7 the second row
    assert png_data_size(3, 2, 24, interlaced=True) == (1 + 3) + (1 + 3) + (1 + 3) + (1 + 9)


def _pillow(data: bytes, draft: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if draft:
            img.draft(img.mode, draft)
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def adam7_png(img: Image.Image) -> bytes:
    """An interlaced RGB PNG (Pillow writes none): each pass's rows, filter 0, in one IDAT."""
    pixels, rows = np.asarray(img.convert("RGB")), b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        rows += b"".join(b"\0" + row.tobytes() for row in pixels[y0::dy, x0::dx] if row.size)
    header = struct.pack(">IIBBBBB", img.width, img.height, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + END_OF_PNG


@pytest.mark.parametrize("kind", ["jpeg", "progressive", "restarts", "png", "interlaced-png", "mpo"])
def test_whole_frames_decode_to_pillows_own_pixels(kind):
    img = photo((640, 480))
    if kind == "mpo":  # a multi-picture JPEG (stereo cameras): the first picture is the frame
        buf = io.BytesIO()
        img.save(buf, "MPO", save_all=True, append_images=[photo((320, 240))])
        data = buf.getvalue()
    elif kind == "interlaced-png":
        data = adam7_png(photo((37, 23)))
    else:
        options = {"progressive": {"progressive": True}, "restarts": {"restart_marker_blocks": 4}}.get(kind, {})
        data = encode(img, "PNG" if kind == "png" else "JPEG", **options)
    assert np.array_equal(np.asarray(open_frame(data).image), _pillow(data))
    if "png" not in kind:  # the draft path too: same scale, same pixels
        reduced = open_frame(data, min_scale=0.0, min_size=(80, 60))
        assert reduced.scale == 0.125
        assert np.array_equal(np.asarray(reduced.image), _pillow(data, (80, 60)))


def test_orientation_of_a_whole_jpeg_is_still_applied():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photo((640, 480)), "JPEG", exif=exif.tobytes())
    frame = open_frame(data)
    assert (frame.width, frame.height) == (480, 640) == frame.image.size
    assert frame.exif[0x0112] == 6
    assert np.array_equal(np.asarray(frame.image), _pillow(data))


def test_truncated_image_loading_stays_off():
    """Pillow's LOAD_TRUNCATED_IMAGES would fill a cut frame in silently; nothing of ours turns it on."""
    for module in ("edge.cli.main", "edge.image.thumbnail", "edge.service.run"):  # the programs and what they load
        importlib.import_module(module)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
