"""`nv-edge classify` of drone videos, as a user runs it: a real process, MP4 files and DJI telemetry written
by the tests, the tiny real model (red is mining)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: pip install 'naturevision[video]'")

from imagefiles import RED, encode, solid
from videofiles import BLOCK, CREATED, position, rel_alt, write_srt_new, write_srt_old, write_video

from edge.image.gsd import camera_gsd, equivalent_sensor_width
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"))


def classify(*args, check_rc=0):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NV_DEVICE="unit-7")
    env.pop("NV_MODEL", None)
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "classify", *map(str, args)], text=True, env=env,
                          capture_output=True, timeout=300, check=False)
    assert proc.returncode == check_rc, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    for record in out:
        VALIDATOR.validate(record)
    return out, proc.stderr


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    """DJI_0001.MP4 (5 s, red block from 2 s) with its newer-format telemetry, one cue per frame."""
    d = tmp_path_factory.mktemp("flight")
    video = write_video(d / "DJI_0001.MP4")
    write_srt_new(d / "DJI_0001.SRT")
    return video


def offset(record) -> float:
    _, _, t = record["source"].partition("#t=")
    assert float(t) == record["video"]["offset_s"]
    return record["video"]["offset_s"]


@pytest.mark.parametrize("rate, expected", [(["--fps", "1"], [0, 1, 2, 3, 4]),
                                            (["--fps", "2"], [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5]),
                                            (["--every", "2"], [0, 2, 4])])
def test_one_record_per_sampled_frame_with_its_place_height_and_time(tiny_int8, flight, rate, expected):
    out, stderr = classify(flight, "--model", tiny_int8, *rate)
    assert stderr == ""
    assert [offset(r) for r in out] == expected
    for r in out:
        t = offset(r)
        assert r["source"] == f"{flight}#t={t:.1f}" and r["kind"] == "image" and r["schema"] == "1.6"
        lat, lon = position(t)  # the cue covering the frame: the test drone's position at t
        assert r["geo"] == {"lat": lat, "lon": lon, "alt": round(rel_alt(t) + 70, 2), "rel_alt": rel_alt(t),
                            "source": "srt"}
        assert r["time"] == (CREATED + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert r["time_source"] == "video-metadata"
        metres = camera_gsd(equivalent_sensor_width(160, 96), 24.0, rel_alt(t), 160)
        assert r["ground_resolution"]["metres"] == pytest.approx(metres, abs=1e-6)
        assert r["ground_resolution"]["source"] == "srt" and "DJI_0001.SRT line" in r["ground_resolution"]["detail"]
        assert r["frame"] == {"width": 160, "height": 96} and r["video"]["every_s"] == float(rate[1]) ** (
            -1 if rate[0] == "--fps" else 1)
        if t >= 2:
            assert r["alert"] is True and r["label"] == "mining"
            left, top, right, bottom = r["tiles"]["best"]["box"]
            x0, y0, x1, y1 = BLOCK
            assert x0 <= left and right <= x1 and y0 <= top and bottom <= y1, "the deciding tile is on the red block"
        else:
            assert r["alert"] is False and r["label"] == "not_mining"
    assert len({r["id"] for r in out}) == len(out)


def test_older_telemetry_gives_position_and_height_but_no_resolution(tiny_int8, tmp_path):
    video = write_video(tmp_path / "DJI_0002.MP4", seconds=3.0)
    write_srt_old(tmp_path / "DJI_0002.srt", seconds=3.0)  # lower case, one cue a second
    out, stderr = classify(video, "--model", tiny_int8, "--fps", "2", "--gsd", "0.05")
    assert stderr == "" and [offset(r) for r in out] == [0, 0.5, 1, 1.5, 2, 2.5]
    for r in out:
        second = int(offset(r))
        lat, lon = position(second)
        assert r["geo"] == {"lat": lat, "lon": lon, "rel_alt": rel_alt(second), "source": "srt"}
        assert r["ground_resolution"]["source"] == "option" and r["ground_resolution"]["metres"] == 0.05
    out, _ = classify(video, "--model", tiny_int8)
    assert all("ground_resolution" not in r for r in out), "no focal length in the older format, no --gsd"


def test_a_video_without_telemetry_has_no_position_and_no_warning(tiny_int8, tmp_path):
    video = write_video(tmp_path / "clip.mp4", seconds=3.0, red_from_s=None, created=None)
    when = datetime(2024, 6, 2, 8, 30, tzinfo=timezone.utc).timestamp()
    os.utime(video, (when, when))
    out, stderr = classify(video, "--model", tiny_int8)
    assert stderr == "" and [offset(r) for r in out] == [0, 1, 2]
    assert all("geo" not in r and "error" not in r and "ground_resolution" not in r for r in out)
    assert [r["time"] for r in out] == ["2024-06-02T08:30:00.000Z", "2024-06-02T08:30:01.000Z",
                                        "2024-06-02T08:30:02.000Z"]
    assert {r["time_source"] for r in out} == {"file-mtime"}


def test_a_truncated_video_keeps_the_frames_before_the_cut_and_names_where_it_failed(tiny_int8, flight, tmp_path):
    cut = tmp_path / "DJI_0003.MP4"
    cut.write_bytes(flight.read_bytes()[: int(flight.stat().st_size * 0.6)])
    out, _ = classify(cut, "--model", tiny_int8, "--fps", "2")
    *frames, error = out
    assert frames and all("error" not in r for r in frames) and len(frames) < 10
    assert [offset(r) for r in frames] == [0.5 * k for k in range(len(frames))]
    failed_at = error["video"]["offset_s"]
    assert failed_at >= offset(frames[-1]) and error["source"] == f"{cut}#t={failed_at:.1f}"
    assert error["error"].startswith(f"{cut}: decoding failed after {failed_at:.3f} s")
    assert f"the {len(frames)} frame(s) before it were classified" in error["error"]


def test_a_malformed_telemetry_file_warns_with_file_and_line_and_the_frames_go_on(tiny_int8, flight, tmp_path):
    video = tmp_path / "DJI_0004.MP4"
    video.write_bytes(flight.read_bytes())
    srt = write_srt_new(tmp_path / "DJI_0004.SRT")
    lines = srt.read_text().splitlines()
    where = next(n for n, line in enumerate(lines) if line.startswith("00:00:01,000 -->"))
    lines[where] = "00:00:01,0x0 --> 00:00:01,100"  # the cue at 1 s: its times cannot be read
    srt.write_text("\n".join(lines))
    out, stderr = classify(video, "--model", tiny_int8)
    assert f"nv-edge: warning: {srt} line {where + 1}: cannot read the cue's times" in stderr
    assert [offset(r) for r in out] == [0, 1, 2, 3, 4] and all("error" not in r for r in out)
    assert "geo" not in out[1], "the frame of the broken cue has no position"
    assert all("geo" in r for r in out if offset(r) != 1)

    srt.write_bytes(b"\x00\xffnot subtitles at all\n")
    out, stderr = classify(video, "--model", tiny_int8)
    assert f"nv-edge: warning: {srt}: no subtitle cues" in stderr
    assert len(out) == 5 and all("geo" not in r and "error" not in r for r in out)


def test_a_folder_of_photos_and_videos(tiny_int8, flight, tmp_path):
    card = tmp_path / "card" / "DCIM"
    card.mkdir(parents=True)
    (card / "DJI_0001.MP4").write_bytes(flight.read_bytes())
    (card / "DJI_0001.SRT").write_bytes(flight.with_suffix(".SRT").read_bytes())
    (card / "DJI_0005.JPG").write_bytes(encode(solid(RED), "JPEG"))
    (card / "empty.mov").write_bytes(b"")
    out, _ = classify(tmp_path / "card", "--model", tiny_int8, "--format", "json")
    sources = [r["source"] for r in out]
    assert sources[:5] == [f"{card / 'DJI_0001.MP4'}#t={t}.0" for t in range(5)]
    assert sources[5] == str(card / "DJI_0005.JPG") and out[5]["alert"] is True and "video" not in out[5]
    assert sources[6] == str(card / "empty.mov") and "cannot open it as a video" in out[6]["error"]
    assert len(out) == 7


def test_rate_options_are_checked(tiny_int8, flight):
    for bad in (["--fps", "0"], ["--every", "-1"], ["--fps", "x"], ["--fps", "1", "--every", "2"]):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "edge.cli", "classify", str(flight), "--model", str(tiny_int8),
                               *bad], text=True, env=env, capture_output=True, timeout=120, check=False)
        assert proc.returncode == 2 and proc.stdout == "", bad


def test_thumbnails_of_alerting_frames_are_cut_from_the_decoded_frame(tiny_int8, flight, tmp_path):
    outbox = tmp_path / "outbox.db"
    out, _ = classify(flight, "--model", tiny_int8, "--outbox", outbox, "--thumbnails")
    alerts = {r["id"] for r in out if r["alert"]}
    assert len(alerts) == 3
    with sqlite3.connect(outbox) as con:
        thumbs = dict(con.execute("SELECT id, payload FROM outbox WHERE leaf LIKE 'thumbnail/%'").fetchall())
    assert set(thumbs) == alerts
    for jpeg in thumbs.values():
        with Image.open(io.BytesIO(jpeg)) as img:
            r, g, _ = img.convert("RGB").getpixel((img.width // 2, img.height // 2))
        assert r > 180 and g < 80, "the best tile of an alerting frame is on the red block"
