"""DJI telemetry files (SRT): the formats drones write (cue texts as in real files), the order of positional
GPS values, cues before the GPS fix, and files that are damaged in part or not telemetry at all."""

from __future__ import annotations

import pytest

from edge.image.srt import SrtError, parse_track, read_track, sidecar

MINI3 = """1
00:00:00,000 --> 00:00:00,033
<font size="28">FrameCnt: 1, DiffTime: 33ms
2024-08-07 12:34:24.380
[iso: 100] [shutter: 1/3200.0] [fnum: 1.7] [ev: 0] [color_md: default] [focal_len: 24.00] [latitude: 69.189116] [longitude: 35.259334] [rel_alt: 1.100 abs_alt: -2.927] [ct: 5310] </font>

2
00:00:00,033 --> 00:00:00,066
<font size="28">FrameCnt: 2, DiffTime: 33ms
2024-08-07 12:34:24.413
[iso: 100] [shutter: 1/3200.0] [fnum: 1.7] [ev: 0] [color_md: default] [focal_len: 24.00] [latitude: 69.189120] [longitude: 35.259340] [rel_alt: 1.200 abs_alt: -2.827] [ct: 5310] </font>
"""

MAVIC3_SPACED = """1
00:00:00,000 --> 00:00:00,033
<font size="36">FrameCnt : 1, DiffTime : 33ms
2023-03-04 10:11:12,123,456
[iso : 110] [shutter : 1/1000.0] [fnum : 280] [ev : 0] [ct : 5500] [color_md : default] [focal_len : 240] [latitude : -3.456789] [longitude : -60.123456] [rel_alt: 80.500 abs_alt: 150.250] </font>
"""

AIR2S = """1
00:00:00,000 --> 00:00:00,033
<font size="36">SrtCnt : 1, DiffTime : 33ms
2022-08-07 13:40:40,774,808
[iso : 100] [shutter : 1/80.0] [fnum : 280] [ev : 0] [ct : 5744] [color_md : default] [focal_len : 240] [latitude: 41.424724] [longitude: 2.234156] [altitude: 117.000000] </font>
"""

MAVIC_PRO = """1
00:00:00,000 --> 00:00:01,000
F/2.8, SS 206.03, ISO 100, EV 0, GPS (149.0253, -35.2346, 19), D 24.18m, H 45.00m, H.S 0.00m/s, V.S 0.00m/s

2
00:00:01,000 --> 00:00:02,000
F/2.8, SS 206.03, ISO 100, EV 0, DZOOM 1.000, GPS (-58.851745, -34.237922, 15), HOME (-58.847509, -34.232707, -57.98m), D 698.70m, H 85.80m, H.S 0.00m/s, V.S 0.00m/s
"""

PHANTOM3 = """1
00:00:01,000 --> 00:00:02,000
HOME(131.1660,-25.2088) 2017.07.29 15:18:50
GPS(131.1660,-25.2088,14) BAROMETER:8.8
ISO:100 Shutter:60 EV: Fnum:2.2
"""

MATRICE300 = """1
00:00:00,000 --> 00:00:01,000
2022.06.21 16:06:17
GPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M

2
00:00:59,000 --> 00:00:60,000
2022.06.21 16:07:16
GPS(36.6153,-6.1130,0.0M) BAROMETER:83.8M
"""


def track(text, tmp_path, name="DJI_0001.SRT"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return read_track(path)


def test_newer_dji_cues_give_position_heights_and_focal_length(tmp_path):
    t = track(MINI3, tmp_path)
    assert t.warnings == [] and len(t.cues) == 2
    first, second = t.cues
    assert (first.start_s, first.end_s, first.line) == (0.0, 0.033, 2)
    assert first.geo() == {"lat": 69.189116, "lon": 35.259334, "alt": -2.93, "rel_alt": 1.1, "source": "srt"}
    assert first.focal_35mm == 24.0
    assert second.geo()["lat"] == 69.18912 and second.rel_alt == 1.2


def test_spaced_colons_and_focal_length_in_tenths(tmp_path):
    cue = track(MAVIC3_SPACED, tmp_path).cues[0]
    assert (cue.lat, cue.lon, cue.rel_alt, cue.abs_alt, cue.focal_35mm) == (-3.456789, -60.123456, 80.5, 150.25, 24.0)


def test_a_lone_altitude_is_above_sea_level_and_gives_no_height_above_ground(tmp_path):
    cue = track(AIR2S, tmp_path).cues[0]
    assert cue.geo() == {"lat": 41.424724, "lon": 2.234156, "alt": 117.0, "source": "srt"}
    assert cue.rel_alt is None


def test_older_dji_gps_is_longitude_first_and_its_third_value_is_not_an_altitude(tmp_path):
    canberra, buenos_aires = track(MAVIC_PRO, tmp_path).cues
    assert canberra.geo() == {"lat": -35.2346, "lon": 149.0253, "rel_alt": 45.0, "source": "srt"}
    assert buenos_aires.geo() == {"lat": -34.237922, "lon": -58.851745, "rel_alt": 85.8, "source": "srt"}
    uluru = track(PHANTOM3, tmp_path).cues[0]
    assert uluru.geo() == {"lat": -25.2088, "lon": 131.166, "rel_alt": 8.8, "source": "srt"}
    assert uluru.start_s == 1.0


def test_dji_pilot_gps_with_metres_is_latitude_first(tmp_path):
    t = track(MATRICE300, tmp_path)
    cadiz, later = t.cues
    assert (cadiz.lat, cadiz.lon, cadiz.rel_alt) == (36.6146, -6.112, 0.3)
    assert (later.start_s, later.end_s, later.rel_alt) == (59.0, 60.0, 83.8)  # "00:00:60,000" as DJI writes it
    assert t.warnings == []


def test_cues_before_the_gps_fix_have_no_position_and_no_warning(tmp_path):
    text = MINI3.replace("[latitude: 69.189116] [longitude: 35.259334]", "[latitude: 0.000000] [longitude: 0.000000]")
    t = track(text, tmp_path)
    assert t.cues[0].geo() is None and t.cues[0].rel_alt == 1.1  # the height is still good for the resolution
    assert t.cues[1].geo() is not None and t.warnings == []


def test_the_cue_covering_a_time(tmp_path):
    t = track(MATRICE300, tmp_path)
    assert t.at(0.0).rel_alt == 0.3 and t.at(0.999).rel_alt == 0.3
    assert t.at(1.0) is None  # a gap between the cues: no position rather than a stale one
    assert t.at(59.5).rel_alt == 83.8 and t.at(60.0) is None and t.at(-1.0) is None


def test_damaged_cues_are_left_out_with_the_file_and_line_named(tmp_path):
    text = MINI3 + """
3
00:00:0x,066 --> 00:00:00,100
[latitude: 69.2] [longitude: 35.3]

4
00:00:00,100 --> 00:00:00,133
[latitude: 95.189120] [longitude: 35.259340] [rel_alt: 1.200 abs_alt: -2.827]

5
00:00:00,133 --> 00:00:00,166
[latitude: 69.1.8] [longitude: 35.259340]

6
00:00:00,166 --> 00:00:00,200
[latitude: 69.5] [longitude: 35.5]
"""
    t = track(text, tmp_path)
    assert len(t.warnings) == 3
    assert "DJI_0001.SRT line 14: cannot read the cue's times" in t.warnings[0]
    assert "DJI_0001.SRT line 19: latitude 95.1891, longitude 35.2593 is not a place on Earth" in t.warnings[1]
    assert "DJI_0001.SRT line 23: latitude '69.1.8' is not a number" in t.warnings[2]
    assert all("the frames it covers get no position" in w for w in t.warnings)
    assert t.at(0.11).geo() is None and t.at(0.15).geo() is None  # the damaged cues: no position
    assert t.at(0.01).geo()["lat"] == 69.189116 and t.at(0.17).geo()["lat"] == 69.5  # the others keep theirs


def test_a_file_without_cues_says_so(tmp_path):
    t = track("just some notes\nabout the flight\n", tmp_path, "DJI_0002.srt")
    assert t.cues == [] and len(t.warnings) == 1
    assert "DJI_0002.srt: no subtitle cues" in t.warnings[0] and "no position" in t.warnings[0]


def test_cues_that_never_have_a_fix_say_so_once(tmp_path):
    t = track("1\n00:00:00,000 --> 00:00:01,000\nISO 100, EV 0\n", tmp_path)
    assert len(t.cues) == 1 and len(t.warnings) == 1 and "no cue has a GPS position" in t.warnings[0]


def test_binary_junk_is_not_telemetry_but_not_an_exception(tmp_path):
    path = tmp_path / "DJI_0003.SRT"
    path.write_bytes(bytes(range(256)) * 40)
    t = read_track(path)
    assert t.cues == [] and "no subtitle cues" in t.warnings[0]


def test_the_sidecar_is_found_in_either_case_and_a_missing_one_is_an_error(tmp_path):
    video = tmp_path / "DJI_0001.MP4"
    assert sidecar(video) is None
    (tmp_path / "DJI_0001.srt").write_text(MINI3)
    assert sidecar(video) == tmp_path / "DJI_0001.srt"
    with pytest.raises(SrtError, match="DJI_0009.SRT: cannot read the telemetry file"):
        read_track(tmp_path / "DJI_0009.SRT")


def test_windows_line_ends_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "DJI_0004.SRT"
    path.write_bytes(b"\xef\xbb\xbf" + MINI3.replace("\n", "\r\n").encode())
    t = read_track(path)
    assert len(t.cues) == 2 and t.cues[0].lat == 69.189116 and t.warnings == []


def test_parse_track_takes_text(tmp_path):
    assert parse_track(MINI3, tmp_path / "x.SRT").cues[1].end_s == 0.066
