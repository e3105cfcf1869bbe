"""EXIF position and capture time, read from real JPEG files that the tests write."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from imagefiles import GREEN, encode, solid
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from edge.image.decode import open_frame
from edge.image.exif import read_capture_time, read_geo


def _jpeg_with(gps: dict | None = None, exif_ifd: dict | None = None, ifd0: dict | None = None) -> bytes:
    exif = Image.Exif()
    if gps is not None:
        exif[0x8825] = gps
    if exif_ifd is not None:
        exif[0x8769] = exif_ifd
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    return encode(solid(GREEN, (64, 48)), "JPEG", exif=exif.tobytes())


def _dms(d, m, s):
    return (IFDRational(d), IFDRational(m), IFDRational(int(s * 100), 100))


def test_gps_south_west_with_altitude():
    data = _jpeg_with(gps={1: "S", 2: _dms(12, 30, 15.12), 3: "W", 4: _dms(55, 10, 30), 5: b"\x00", 6: IFDRational(2345, 10)})
    geo = read_geo(open_frame(data).exif)
    assert geo == {"lat": pytest.approx(-12.504200, abs=1e-6), "lon": pytest.approx(-55.175, abs=1e-6), "alt": 234.5, "source": "exif"}


def test_gps_north_east_below_sea_level():
    data = _jpeg_with(gps={1: "N", 2: _dms(4, 0, 36), 3: "E", 4: _dms(114, 30, 0), 5: b"\x01", 6: IFDRational(12)})
    geo = read_geo(open_frame(data).exif)
    assert geo["lat"] == pytest.approx(4.01) and geo["lon"] == pytest.approx(114.5)
    assert geo["alt"] == -12.0


def test_no_gps():
    assert read_geo(open_frame(_jpeg_with()).exif) is None


def test_impossible_gps_is_ignored():
    data = _jpeg_with(gps={1: "N", 2: _dms(95, 0, 0), 3: "E", 4: _dms(10, 0, 0)})
    assert read_geo(open_frame(data).exif) is None


def test_capture_time_with_offset_becomes_utc():
    data = _jpeg_with(exif_ifd={0x9003: "2026:03:14 09:26:53", 0x9011: "-05:00", 0x9291: "25"})
    moment, source = read_capture_time(open_frame(data).exif)
    assert moment == datetime(2026, 3, 14, 14, 26, 53, 250000, tzinfo=timezone.utc)
    assert source == "exif"


def test_capture_time_without_offset_is_marked_as_assumed():
    data = _jpeg_with(exif_ifd={0x9003: "2025:12:31 23:59:59"})
    moment, source = read_capture_time(open_frame(data).exif)
    assert moment == datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert source == "exif-assumed-utc"


def test_ifd0_datetime_is_a_fallback():
    data = _jpeg_with(ifd0={0x0132: "2024:01:02 03:04:05"})
    assert read_capture_time(open_frame(data).exif)[0] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["0000:00:00 00:00:00", "yesterday", ""])
def test_unusable_time_is_none(text):
    assert read_capture_time(open_frame(_jpeg_with(exif_ifd={0x9003: text})).exif) is None
