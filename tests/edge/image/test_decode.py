"""Image decoding: formats, JPEG draft fast path, EXIF orientation, limits, odd modes, bad bytes."""

from __future__ import annotations

import numpy as np
import pytest
from imagefiles import GREEN, RED, encode, jpeg_claiming, photo, png_claiming, scene_with_block, solid
from PIL import Image

from edge.features.pixels import InputSpec, prepare_tile
from edge.image.decode import DEFAULT_MAX_PIXELS, ImageError, open_frame

PILLOW_DEFAULT_LIMIT = 178_956_970  # 2 x Image.MAX_IMAGE_PIXELS as Pillow ships it: its DecompressionBombError


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_formats_decode_to_rgb(tmp_path, fmt):
    path = tmp_path / f"frame.{fmt.lower()}"
    path.write_bytes(encode(solid(RED, (40, 30)), fmt))
    frame = open_frame(path)
    assert frame.image.mode == "RGB"
    assert (frame.width, frame.height) == (40, 30) == frame.image.size
    assert frame.format == fmt
    centre = np.asarray(frame.image)[15, 20].astype(int)
    assert np.abs(centre - RED).max() <= 8  # lossy formats move colours a little


def test_bytes_and_path_give_the_same_pixels(tmp_path):
    data = encode(scene_with_block(), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    assert np.array_equal(np.asarray(open_frame(data).image), np.asarray(open_frame(path).image))


def test_jpeg_draft_decodes_smaller_but_not_below_min_scale():
    data = encode(scene_with_block(size=(1600, 1200), block=(800, 400, 1200, 800)), "JPEG", quality=90)
    full = open_frame(data)
    assert full.scale == 1.0 and full.image.size == (1600, 1200)
    reduced = open_frame(data, min_scale=0.3)
    assert reduced.scale == 0.5, "1/4 would fall below 0.3 of the source size"
    assert reduced.image.size == (800, 600)
    assert (reduced.width, reduced.height) == (1600, 1200), "the frame keeps its source size"
    smallest = open_frame(data, min_scale=0.0, min_size=(96, 96))
    assert smallest.scale == 0.125 and smallest.image.size == (200, 150)
    # the block is still where it was, at the reduced scale
    assert tuple(np.asarray(reduced.image)[300, 500]) != tuple(np.asarray(reduced.image)[100, 100])


def test_png_is_never_reduced():
    frame = open_frame(encode(solid(GREEN, (400, 300)), "PNG"), min_scale=0.1)
    assert frame.scale == 1.0 and frame.image.size == (400, 300)


@pytest.mark.parametrize(("orientation", "corner"), [(1, (0, 0)), (3, (1, 1)), (6, (0, 1)), (8, (1, 0))])
def test_exif_orientation_is_applied(orientation, corner):
    # Stored 60x40 with a red top-left corner; after rotation the red corner moves and axes may swap.
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:] = GREEN
    arr[:10, :10] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    frame = open_frame(encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes()))
    upright = (40, 60) if orientation in (6, 8) else (60, 40)
    assert (frame.width, frame.height) == upright == frame.image.size
    pixels = np.asarray(frame.image).astype(int)
    ys = 5 if corner[0] == 0 else upright[1] - 5
    xs = 5 if corner[1] == 0 else upright[0] - 5
    assert np.abs(pixels[ys, xs] - RED).max() < 40, f"red corner expected at row {ys}, col {xs}"


def test_orientation_with_draft_keeps_upright_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(solid(RED, (1600, 800)), "JPEG", exif=exif.tobytes())
    frame = open_frame(data, min_scale=0.0, min_size=(100, 300))
    assert (frame.width, frame.height) == (800, 1600)
    assert frame.image.size[0] >= 100 and frame.image.size[1] >= 300
    assert frame.image.size == (200, 400)


def test_decompression_bomb_is_refused_before_decoding(no_decoding):
    data = encode(Image.new("L", (5000, 4000)), "PNG")  # 20 MP, compresses to a few kB
    assert len(data) < 100_000
    with pytest.raises(ImageError, match=r"5000x4000 = 20,000,000 pixels, above the limit of 1,000,000"):
        open_frame(data, max_pixels=1_000_000)


@pytest.fixture(scope="module")
def beyond_pillows_limit() -> dict[str, bytes]:
    """Small real frames whose headers claim 15000x12000 = 180 MP, just above Pillow's own limit."""
    assert 15000 * 12000 > PILLOW_DEFAULT_LIMIT
    return {"PNG": png_claiming(encode(photo((64, 48)), "PNG"), 15000, 12000),
            "JPEG": jpeg_claiming(encode(photo((64, 48)), "JPEG"), 15000, 12000)}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("limit", [DEFAULT_MAX_PIXELS, 1_000_000])
def test_max_pixels_not_pillow_refuses_a_frame_above_pillows_limit(beyond_pillows_limit, fmt, limit, no_decoding):
    with pytest.raises(ImageError, match=rf"^image is 15000x12000 = 180,000,000 pixels, above the limit of {limit:,} "
                                         r"\(a decompression bomb, or raise the limit with --max-pixels\)$"):
        open_frame(beyond_pillows_limit[fmt], max_pixels=limit)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_max_pixels_above_pillows_limit_lets_the_frame_through_to_our_checks(beyond_pillows_limit, fmt, no_decoding):
    # Past the limit, these frames meet the data checks, which see that their few bytes cannot fill 180 MP.
    with pytest.raises(ImageError, match=r"^corrupt or truncated image data: its header says 15000x12000 pixels, but"):
        open_frame(beyond_pillows_limit[fmt], max_pixels=200_000_000)


def test_each_call_has_its_own_limit():
    data = encode(photo((640, 480)), "JPEG")
    pillows_own = Image.MAX_IMAGE_PIXELS
    for limit, refused in ((100_000, True), (DEFAULT_MAX_PIXELS, False), (307_199, True), (307_200, False)):
        if refused:
            with pytest.raises(ImageError, match=rf"640x480 = 307,200 pixels, above the limit of {limit:,}"):
                open_frame(data, max_pixels=limit)
        else:
            assert open_frame(data, max_pixels=limit).image.size == (640, 480)
    assert Image.MAX_IMAGE_PIXELS == pillows_own, "no call leaves a limit behind for the next"


def test_file_size_limit(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(encode(solid(RED, (64, 64)), "PNG"))
    with pytest.raises(ImageError, match="above the limit of 10$"):
        open_frame(path, max_bytes=10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"hello, this is a text file\n" * 10, "not an image"),
        (b"GIF89a" + bytes(100), "not an image"),  # a real format, but not one we accept
    ],
)
def test_bad_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        open_frame(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_file(fmt):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)), fmt)
    with pytest.raises(ImageError, match="corrupt or truncated|not an image"):
        open_frame(data[: len(data) // 2])


def test_corrupt_middle_of_png():
    rng = np.random.default_rng(3)
    data = bytearray(encode(Image.fromarray(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 40] = bytes(40)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        open_frame(bytes(data))


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="cannot read file"):
        open_frame(tmp_path / "nope.jpg")


def test_sixteen_bit_greyscale_tiff_is_scaled_not_clipped():
    arr = np.full((20, 20), 40000, np.uint16)
    frame = open_frame(encode(Image.fromarray(arr), "TIFF"))
    assert frame.image.mode == "RGB"
    assert tuple(np.asarray(frame.image)[0, 0]) == (156, 156, 156)  # 40000 / 257


def test_rgba_and_palette_become_rgb():
    rgba = Image.new("RGBA", (8, 8), (*RED, 0))
    assert open_frame(encode(rgba, "PNG")).image.mode == "RGB"
    pal = solid(GREEN, (8, 8)).convert("P", palette=Image.Palette.ADAPTIVE)
    frame = open_frame(encode(pal, "PNG"))
    assert np.abs(np.asarray(frame.image)[0, 0].astype(int) - GREEN).max() < 10


def test_prepare_tile_crops_and_resizes():
    spec = InputSpec(size=(32, 32))
    img = scene_with_block(size=(160, 96), block=(64, 32, 96, 64))
    inside = prepare_tile(img, spec, (64, 32, 96, 64))
    assert inside.shape == (32, 32, 3) and inside.dtype == np.uint8
    assert (inside == RED).all()
    outside = prepare_tile(img, spec, (0, 0, 16, 16))
    assert (outside == GREEN).all()
