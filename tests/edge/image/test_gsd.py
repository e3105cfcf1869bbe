"""Ground resolution of drone photos: real JPEGs written here with EXIF (Pillow's Exif) and an XMP
packet as DJI and Parrot write them, checked against values worked out by hand."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from edge.image.cameras import CAMERAS, find_camera
from edge.image.gsd import NoGroundResolution, frame_gsd, given
from edge.image.xmp import DJI, parse_xmp, xmp_number

EXIF_IFD, GPS_IFD = 0x8769, 0x8825

DJI_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="DJI Meta Data" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
    ' drone-dji:AbsoluteAltitude="+152.31" drone-dji:RelativeAltitude="{alt}"'
    ' drone-dji:GimbalPitchDegree="-90.00" drone-dji:FlightYawDegree="+12.30"/>'
    '</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
)
PARROT_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:Camera="http://pix4d.com/camera/1.0/">'
    '<Camera:AboveGroundAltitude>5000/100</Camera:AboveGroundAltitude></rdf:Description>'
    '</rdf:RDF></x:xmpmeta>'
)


def photo(path, size, *, make=None, model=None, focal=None, focal35=None, plane=None, gps_alt=None, xmp=None):
    """A JPEG with real EXIF; `plane` = (FocalPlaneXResolution, unit, PixelXDimension)."""
    exif = Image.Exif()
    if make:
        exif[0x010F], exif[0x0110] = make, model
    sub = exif.get_ifd(EXIF_IFD)
    if focal is not None:
        sub[0x920A] = IFDRational(Fraction(focal).limit_denominator(1000))
    if focal35 is not None:
        sub[0xA405] = focal35
    if plane is not None:
        sub[0xA20E], sub[0xA210], sub[0xA002] = IFDRational(Fraction(plane[0]).limit_denominator(10**6)), plane[1], plane[2]
    if gps_alt is not None:
        gps = exif.get_ifd(GPS_IFD)
        gps.update({1: "S", 2: (3.0, 7.0, 30.0), 3: "W", 4: (60.0, 1.0, 12.0), 5: b"\x00", 6: IFDRational(gps_alt)})
    kwargs = {"xmp": xmp.encode()} if xmp else {}
    Image.new("RGB", size, (90, 120, 60)).save(path, "JPEG", exif=exif, **kwargs)
    return path


def test_dji_photo_from_exif_and_xmp(tmp_path):
    # A Mavic 3E frame (sensor 17.3 mm = 5280 px at 5280/17.3 px per mm) resized to 528 px, flown at 80 m.
    path = photo(tmp_path / "DJI_0001.JPG", (528, 396), make="DJI", model="M3E", focal=12.29,
                 plane=(5280 / 17.3, 4, 5280), xmp=DJI_XMP.format(alt="+80.00"))
    gsd = frame_gsd(path)
    assert gsd.source == "exif-xmp"
    assert gsd.metres == pytest.approx(17.3 * 80 / (12.29 * 528), rel=1e-4)  # 0.21328 m/px
    assert "RelativeAltitude" in gsd.detail and "FocalPlaneXResolution" in gsd.detail


def test_camera_table_gives_the_sensor(tmp_path):
    # A Phantom 4 Pro (1-inch, 13.2 mm) frame without FocalPlaneXResolution, 100 m up, 547 px wide.
    path = photo(tmp_path / "p4p.jpg", (547, 365), make="DJI", model="FC6310", focal=8.8,
                 xmp=DJI_XMP.format(alt="+100.0"))
    gsd = frame_gsd(path)
    assert (gsd.source, "Phantom 4 Pro" in gsd.detail) == ("camera-table", True)
    assert gsd.metres == pytest.approx(13.2 * 100 / (8.8 * 547), rel=1e-4)  # 0.27422 m/px


def test_35mm_equivalent_and_the_parrot_altitude(tmp_path):
    # No focal length, no sensor: FocalLengthIn35mmFilm 24 on a 4:3 frame; Camera:AboveGroundAltitude 5000/100 m.
    path = photo(tmp_path / "anafi.jpg", (400, 300), focal35=24, xmp=PARROT_XMP)
    gsd = frame_gsd(path)
    width_mm = math.hypot(36, 24) * 4 / 5  # the 4:3 frame's width with a full-frame diagonal: 34.61 mm
    assert gsd.source == "exif-xmp"
    assert gsd.metres == pytest.approx(width_mm * 50 / (24 * 400), rel=1e-4)  # 0.18028 m/px


def test_gps_altitude_needs_the_ground_altitude(tmp_path):
    path = photo(tmp_path / "gps.jpg", (400, 300), make="DJI", model="FC3411", focal=8.38, gps_alt=250)
    with pytest.raises(NoGroundResolution, match="above sea level"):
        frame_gsd(path)
    gsd = frame_gsd(path, ground_altitude_m=170)
    assert gsd.source == "camera-table"
    assert gsd.metres == pytest.approx(13.2 * 80 / (8.38 * 400), rel=1e-4)


def test_missing_everything_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "plain.jpg"
    Image.new("RGB", (64, 48)).save(path, "JPEG")
    with pytest.raises(NoGroundResolution) as err:
        frame_gsd(path)
    assert str(path) in str(err.value) and "--gsd" in str(err.value)
    assert frame_gsd(path, config=0.05).to_dict()["source"] == "config"
    # the operator's --gsd wins over what the file says
    dji = photo(tmp_path / "d.jpg", (528, 396), make="DJI", model="M3E", focal=12.29, xmp=DJI_XMP.format(alt="80"))
    assert (frame_gsd(dji, option=0.03).metres, frame_gsd(dji, option=0.03).source) == (0.03, "option")
    with pytest.raises(ValueError):
        given(-1, "option")


def test_xmp_parsing_is_forgiving():
    props = parse_xmp(DJI_XMP.format(alt="+80.20").encode())
    assert xmp_number(props, DJI, "RelativeAltitude") == pytest.approx(80.2)
    assert parse_xmp(b"<x:xmpmeta><broken") == {} and parse_xmp(None) == {}
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'
    assert isinstance(parse_xmp(bomb), dict)


def test_every_camera_row_is_plausible():
    for (make, model), camera in CAMERAS.items():
        assert find_camera(f" {make.upper()} ", model.upper() + "\x00") is camera
        assert 4 < camera.sensor_width_mm < 40 and camera.sensor_height_mm < camera.sensor_width_mm
