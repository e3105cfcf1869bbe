"""`nv-convert tiles-from-frames`: class folders of frames at different ground resolutions (GeoTIFF frames
written with rasterio, PNGs that say nothing) brought to one resolution and cut into tiles."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from orthofiles import write_ortho
from PIL import Image

from converter.cli import main
from converter.dataset import load_dataset

pytest.importorskip("rasterio", reason="the survey extra (rasterio, pyproj, shapely) is not installed")


def rows(out) -> list[dict]:
    with open(out / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_frames_of_two_resolutions_become_tiles_of_one(tmp_path, capsys):
    (tmp_path / "frames" / "mining").mkdir(parents=True)
    (tmp_path / "frames" / "not_mining").mkdir()
    fine = write_ortho(tmp_path / "frames" / "mining" / "low.tif", 64, 64, [(0, 0, 64, 64)], gsd=0.25, seed=1)
    write_ortho(tmp_path / "frames" / "not_mining" / "high.tif", 48, 32, [], gsd=0.5, seed=2)
    write_ortho(tmp_path / "frames" / "not_mining" / "coarse.tif", 64, 64, [], gsd=1.0, seed=3)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "frames" / "not_mining" / "plain.png")
    out = tmp_path / "tiles"
    assert main(["tiles-from-frames", str(tmp_path / "frames"), "--out", str(out), "--gsd", "0.5", "--tile-px", "16"]) == 0
    got = {(r["frame"], int(r["left"]), int(r["top"]), int(r["right"]), int(r["bottom"])) for r in rows(out)}
    # the 0.25 m frame is halved to 32 x 32: four tiles, each 32 x 32 of its own pixels; the 0.5 m one is
    # cut as it is (48 x 32: three by two); the 1 m frame and the PNG that says nothing are left out
    assert got == {("mining/low.tif", x, y, x + 32, y + 32) for x in (0, 32) for y in (0, 32)} | \
                  {("not_mining/high.tif", x, y, x + 16, y + 16) for x in (0, 16, 32) for y in (0, 16)}
    tile = np.asarray(Image.open(out / "mining" / "low_x16_y0.png"), float)
    assert tile.shape == (16, 16, 3)
    assert tile.mean(axis=(0, 1)) == pytest.approx(fine[0:32, 32:64].mean(axis=(0, 1)), abs=2)  # the same ground
    assert {r["group"] for r in rows(out)} == {"mining/low.tif", "not_mining/high.tif"}
    err = capsys.readouterr().err
    assert "coarse.tif: 1 m/px (geotiff) is coarser than --gsd 0.5" in err and "plain.png" in err
    assert load_dataset(out).labels == ("mining", "not_mining")


def test_frames_that_say_nothing_take_frame_gsd_and_an_empty_result_is_an_error(tmp_path, capsys):
    (tmp_path / "frames" / "mining").mkdir(parents=True)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "frames" / "mining" / "plain.png")
    code = main(["tiles-from-frames", str(tmp_path / "frames"), "--out", str(tmp_path / "a"), "--gsd", "0.5", "--tile-px", "16"])
    assert code == 2 and "no frame gave a tile" in capsys.readouterr().err
    assert main(["tiles-from-frames", str(tmp_path / "frames"), "--out", str(tmp_path / "b"), "--gsd", "1", "--tile-px", "16",
                 "--frame-gsd", "0.5"]) == 0
    assert [(r["left"], r["right"]) for r in rows(tmp_path / "b")] == [("0", "32")]  # 40 px at 0.5 m -> 20 px at 1 m
