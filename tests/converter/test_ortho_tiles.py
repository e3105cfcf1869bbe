"""`nv-convert tiles-from-ortho` on real files: a UTM GeoTIFF written with rasterio and its polygons in WGS84.
Every cut is checked against windows worked out by hand from the boxes the test paints.

No TensorFlow here: the command only reads the ortho and writes PNGs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from orthofiles import RED, lonlat_ring, write_labels, write_ortho
from PIL import Image

from converter.cli import main
from converter.dataset import load_dataset, split

pytest.importorskip("rasterio", reason="the survey extra (rasterio, pyproj, shapely) is not installed")

# A 200 x 160 px ortho at 0.5 m/px with one red block, cols 36..92, rows 28..84.
BLOCK = (36, 28, 92, 84)


@pytest.fixture
def ortho(tmp_path):
    pixels = write_ortho(tmp_path / "site.tif", 200, 160, [BLOCK])
    labels = write_labels(tmp_path / "pits.geojson", [(BLOCK, {"label": "mining"})])
    return {"tif": tmp_path / "site.tif", "labels": labels, "pixels": pixels, "out": tmp_path / "tiles"}


def rows(out) -> list[dict]:
    with open(out / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiles_at_the_orthos_own_resolution_are_the_windows_worked_out_by_hand(ortho, capsys):
    assert main(["tiles-from-ortho", str(ortho["tif"]), str(ortho["labels"]), "--out", str(ortho["out"]),
                 "--tile-px", "16"]) == 0
    got = {(int(r["left"]), int(r["top"])): r for r in rows(ortho["out"])}
    # 16-px tiles from (0, 0): columns 32..48, 48..64, 64..80 and 80..96 meet the block (36..92): the outer two by
    # 12 of 16 px; rows 32..48, 48..64 and 64..80 lie inside it (28..84), rows 16..32 and 80..96 meet it by 4 px only.
    expected = {(x, y): 0.75 if x in (32, 80) else 1.0 for x in (32, 48, 64, 80) for y in (32, 48, 64)}
    assert {k: float(r["cover"]) for k, r in got.items()} == pytest.approx(expected, abs=1e-4)
    assert all(r["label"] == "mining" and r["group"] == "site:pit-1" for r in got.values())
    for (x, y), r in got.items():
        assert (int(r["right"]), int(r["bottom"])) == (x + 16, y + 16)
        tile = np.asarray(Image.open(ortho["out"] / r["path"]))
        assert r["path"] == f"mining/site_x{x}_y{y}.png"
        assert np.array_equal(tile, ortho["pixels"][y : y + 16, x : x + 16]), f"tile {x},{y} is not its window"
    out = capsys.readouterr().out
    assert "12 tiles of 16 px at 0.5 m/px" in out and "8 covered less than 0.5" in out
    assert "--gsd 0.5 --tile-px 16" in out


def test_resampled_tiles_cover_the_ground_asked_for(ortho):
    """--gsd 1 with 16-px tiles: each tile is 16 m, a 32 x 32 window of the 0.5 m ortho read down to 16 px."""
    assert main(["tiles-from-ortho", str(ortho["tif"]), str(ortho["labels"]), "--out", str(ortho["out"]),
                 "--tile-px", "16", "--gsd", "1", "--min-cover", "0.5"]) == 0
    got = {(int(r["left"]), int(r["top"]), int(r["right"]), int(r["bottom"])): float(r["cover"]) for r in rows(ortho["out"])}
    # windows 32..64 and 64..96 across meet 36..92 by 28 of 32 px; down, 32..64 lies inside 28..84 and 64..96
    # meets it by 20 of 32: covers 7/8 and 7/8 x 5/8.
    assert got == pytest.approx({(32, 32, 64, 64): 0.875, (64, 32, 96, 64): 0.875,
                                 (32, 64, 64, 96): 0.546875, (64, 64, 96, 96): 0.546875}, abs=1e-4)
    tile = np.asarray(Image.open(ortho["out"] / "mining" / "site_x32_y32.png")).astype(float)
    assert tile.shape == (16, 16, 3)
    assert tile[:, 3:, 0].mean() > 180 and tile[:, 3:, 1].mean() < 70  # red where the block is
    assert tile[:, 0, 1].mean() > tile[:, 3:, 1].mean() + 40  # the ortho's 4 green columns make the first one greener


def test_background_tiles_are_grouped_in_blocks_and_the_split_keeps_places_whole(tmp_path):
    boxes = [(16, 16, 64, 64), (160, 32, 208, 80), (288, 16, 336, 64), (32, 224, 80, 272)]
    write_ortho(tmp_path / "o.tif", 384, 320, boxes, seed=2)
    labels = write_labels(tmp_path / "l.geojson", [(b, {"class": "mining"}) for b in boxes])  # `class` is read too
    out = tmp_path / "tiles"
    assert main(["tiles-from-ortho", str(tmp_path / "o.tif"), str(labels), "--out", str(out), "--tile-px", "16",
                 "--background", "not_mining", "--block-tiles", "4", "--max-background", "50"]) == 0
    table = rows(out)
    mining = [r for r in table if r["label"] == "mining"]
    background = [r for r in table if r["label"] == "not_mining"]
    assert len(mining) == 4 * 9 and {r["group"] for r in mining} == {f"o:pit-{k}" for k in range(1, 5)}
    assert len(background) == 50 and all(float(r["cover"]) == 0 for r in background)
    for r in background:  # outside every box, and grouped by the block of 4 x 4 tiles (64 px) it lies in
        x, y = int(r["left"]), int(r["top"])
        assert not any(x < b[2] and b[0] < x + 16 and y < b[3] and b[1] < y + 16 for b in boxes)
        assert r["group"] == f"o:background-{y // 64}-{x // 64}"
    dataset = load_dataset(out)  # what nv-convert image reads
    assert dataset.labels == ("mining", "not_mining") and len(dataset.samples) == len(table)
    sides = {}
    for name, part in split(dataset).items():
        for s in part:
            sides.setdefault(s.group, set()).add(name)
    assert all(len(v) == 1 for v in sides.values()), "a place's tiles landed on two sides of the split"
    assert {s.group for s in dataset.samples} >= {f"o:pit-{k}" for k in range(1, 5)}


def test_a_second_ortho_is_added_with_append_and_not_twice(ortho, tmp_path, capsys):
    args = ["tiles-from-ortho", str(ortho["tif"]), str(ortho["labels"]), "--out", str(ortho["out"]), "--tile-px", "16"]
    assert main(args) == 0
    assert main(args) == 2 and "pass --append" in capsys.readouterr().err
    assert main(args + ["--append"]) == 2 and "already holds tiles of site.tif" in capsys.readouterr().err
    write_ortho(tmp_path / "other.tif", 200, 160, [BLOCK], seed=9)
    assert main(["tiles-from-ortho", str(tmp_path / "other.tif"), str(ortho["labels"]), "--out", str(ortho["out"]),
                 "--tile-px", "16", "--append"]) == 0
    assert {r["ortho"] for r in rows(ortho["out"])} == {"site.tif", "other.tif"} and len(rows(ortho["out"])) == 24


def bad_run(ortho, capsys, *extra) -> str:
    code = main(["tiles-from-ortho", str(ortho["tif"]), str(ortho["labels"]), "--out", str(ortho["out"]),
                 "--tile-px", "16", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not (ortho["out"] / "index.csv").exists()
    return err


def test_a_polygon_outside_the_ortho_is_refused_naming_the_file(ortho, capsys):
    write_labels(ortho["labels"], [(BLOCK, {"label": "mining"}), ((400, 400, 460, 460), {"label": "mining"})])
    err = bad_run(ortho, capsys)
    assert str(ortho["labels"]) in err and "feature 2 (id pit-2)" in err and "lies outside the ortho" in err


def test_a_polygon_without_a_label_is_refused(ortho, capsys):
    write_labels(ortho["labels"], [(BLOCK, {"name": "pit"})])
    err = bad_run(ortho, capsys)
    assert str(ortho["labels"]) in err and "has no label" in err and "`label` (or `class`)" in err


def test_a_crs_that_cannot_convert_is_refused(ortho, capsys):
    write_labels(ortho["labels"], [(BLOCK, {"label": "mining"})], crs={"type": "name", "properties": {"name": "EPSG:999999"}})
    err = bad_run(ortho, capsys)
    assert str(ortho["labels"]) in err and "not a CRS pyproj knows" in err


def test_coordinates_that_are_not_degrees_are_refused(ortho, capsys):
    """Metres given as if they were longitude and latitude (a UTM layer saved without its crs)."""
    ring = [[620_018.0 + dx, 9_339_986.0 - dy] for dx, dy in ((0, 0), (28, 0), (28, 28), (0, 28), (0, 0))]
    ortho["labels"].write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"label": "mining"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    err = bad_run(ortho, capsys)
    assert str(ortho["labels"]) in err and ("cannot be converted" in err or "do not convert" in err or "outside" in err)


def test_a_projected_layer_with_its_crs_member_is_read_in_that_crs(ortho):
    from orthofiles import utm_corner

    left, top, right, bottom = BLOCK
    ring = [list(utm_corner(c, r)) for c, r in ((left, bottom), (right, bottom), (right, top), (left, top), (left, bottom))]
    ortho["labels"].write_text(json.dumps({"type": "FeatureCollection",
                                           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32721"}},
                                           "features": [{"type": "Feature", "properties": {"label": "mining", "group": "north pit"},
                                                         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    assert main(["tiles-from-ortho", str(ortho["tif"]), str(ortho["labels"]), "--out", str(ortho["out"]), "--tile-px", "16"]) == 0
    assert len(rows(ortho["out"])) == 12 and {r["group"] for r in rows(ortho["out"])} == {"site:north pit"}


def test_polygons_too_small_for_a_tile_give_an_empty_result_error(ortho, capsys):
    write_labels(ortho["labels"], [((50, 50, 56, 56), {"label": "mining"})])
    err = bad_run(ortho, capsys, "--background", "not_mining")
    assert "no tile of" in err and str(ortho["tif"]) in err and "Draw larger polygons" in err
    assert "covered less than 0.5" in err


def test_a_gsd_finer_than_the_orthos_is_refused(ortho, capsys):
    err = bad_run(ortho, capsys, "--gsd", "0.25")
    assert str(ortho["tif"]) in err and "0.5 m/px" in err and "blown up" in err


def test_not_a_geojson_and_a_missing_ortho_name_the_file(ortho, capsys):
    ortho["labels"].write_text("{not json")
    err = bad_run(ortho, capsys)
    assert str(ortho["labels"]) in err and "cannot read it as GeoJSON" in err
    ortho["tif"].unlink()
    err = bad_run(ortho, capsys)
    assert str(ortho["tif"]) in err and "no such file" in err


def test_the_polygons_are_where_the_ortho_has_red(ortho):
    """The WGS84 ring of the test data goes back onto the painted block (the fixture itself is right)."""
    ring = lonlat_ring(BLOCK)
    assert len(ring) == 5 and all(-56 < lon < -55 and -7 < lat < -5 for lon, lat in ring)
    assert np.asarray(ortho["pixels"][40:80, 40:80, 0], float).mean() > RED[0] - 10
