"""Frames of real MP4 and MOV files written by the tests: how many at a rate, at what times, scaled down as
the model allows, and what a file cut short or without its index gives."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV (the `video` extra) is not installed: pip install 'naturevision[video]'")

from videofiles import BLOCK, SIZE, write_video

from edge.image.video import VideoError, VideoInfo, creation_time, sample_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "DJI_0001.MP4")  # 5 s at 10 fps, red from 2 s


def offsets(path, every_s, **kwargs):
    return [f.offset_s for f in sample_frames(path, every_s, **kwargs)]


def test_frames_at_one_and_two_per_second(clip):
    assert offsets(clip, 1.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert offsets(clip, 0.5) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    assert offsets(clip, 2.0) == [0.0, 2.0, 4.0]
    assert offsets(clip, 10.0) == [0.0]  # a rate slower than the video: its first frame


def test_a_rate_above_the_videos_gives_every_frame_once(clip):
    times = offsets(clip, 0.01)
    assert len(times) == 50 and times == sorted(set(times))


def test_frames_carry_their_number_the_red_block_and_the_files_facts(clip):
    info: list[VideoInfo] = []
    frames = list(sample_frames(clip, 1.0, info=info))
    assert [f.index for f in frames] == [0, 10, 20, 30, 40]
    about = info[0]
    assert (about.width, about.height, about.rate) == (*SIZE, 10.0) and about.duration_s == pytest.approx(5.0, abs=0.1)
    assert about.created == datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    x0, y0, x1, y1 = BLOCK
    for f in frames:
        pixels = np.asarray(f.frame.image)
        assert f.frame.image.size == SIZE and f.frame.scale == 1.0
        red = pixels[(y0 + y1) // 2, (x0 + x1) // 2]
        corner = pixels[5, 5]
        assert corner[1] > 120 and corner[0] < 80, "the background is green"
        if f.offset_s >= 2.0:
            assert red[0] > 180 and red[1] < 70, f"the block is red at {f.offset_s} s"
        else:
            assert red[1] > 120 and red[0] < 80, f"no block yet at {f.offset_s} s"


def test_frames_are_scaled_down_as_far_as_the_model_allows(clip):
    half = next(iter(sample_frames(clip, 1.0, min_scale=0.5)))
    assert half.frame.image.size == (80, 48) and half.frame.scale == 0.5
    assert (half.frame.width, half.frame.height) == SIZE  # boxes stay in source pixels
    whole = next(iter(sample_frames(clip, 1.0, min_scale=0.0, min_size=(32, 32))))
    assert whole.frame.image.size == (54, 32)  # the model's input height, the frame's aspect
    assert next(iter(sample_frames(clip, 1.0, min_scale=2.0))).frame.image.size == SIZE  # never scaled up


def test_a_mov_file(tmp_path):
    mov = write_video(tmp_path / "DJI_0002.MOV", seconds=2.0, red_from_s=None, created=None)
    info = []
    assert offsets(mov, 1.0, info=info) == [0.0, 1.0]
    assert info[0].created is None


def test_a_file_cut_short_fails_after_the_frames_before_the_cut(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.MP4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    got = []
    with pytest.raises(VideoError) as failure:
        for f in sample_frames(cut, 0.5):
            got.append(f.offset_s)
    assert 1.0 <= len(got) * 0.5 < 5.0, "some frames, not all"
    assert got == [0.5 * k for k in range(len(got))]
    assert failure.value.frames == len(got) and failure.value.offset_s >= got[-1]
    assert f"after {failure.value.offset_s:.3f} s" in str(failure.value)


def test_a_file_cut_before_its_index_was_written_has_no_video_stream(tmp_path):
    whole = write_video(tmp_path / "late.MP4", faststart=False)  # the index (moov) at the end, as a camera writes
    cut = tmp_path / "cut.MP4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(VideoError, match="no video stream|cannot open it as a video") as failure:
        list(sample_frames(cut, 1.0))
    assert failure.value.frames == 0 and failure.value.offset_s == 0.0


def test_not_a_video_and_too_many_pixels(clip, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(VideoError, match="cannot open it as a video"):
        list(sample_frames(text, 1.0))
    with pytest.raises(VideoError, match=r"160x96 = 15,360 pixels, above the limit of 10,000"):
        list(sample_frames(clip, 1.0, max_pixels=10_000))


def test_creation_time_of_the_container():
    assert creation_time({"creation_time": "2024-05-01T10:00:00.000000Z"}) == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert creation_time({"creation_time": "1970-01-01T00:00:00.000000Z"}) is None  # not set by the camera
    assert creation_time({"creation_time": "1904-01-01T00:00:00.000000Z"}) is None
    assert creation_time({"creation_time": "yesterday"}) is None and creation_time({}) is None
