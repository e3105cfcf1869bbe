"""`nv-edge scan` on GeoTIFFs written here: adjacent alerting tiles merge into areas measured on the
ellipsoid, the GeoJSON is valid, records go through the outbox once, an ortho coarser than the model is
refused, transparent parts are not classified, and a scan decides as `nv-edge classify` does."""

from __future__ import annotations

import json
import sqlite3
import sys

import jsonschema
import pytest
from orthos import UTM_21S, UTM_ORIGIN, north_up, write_ortho
from pyproj import Proj
from shapely.geometry import shape

from edge.cli.main import main
from edge.records.schemas import load_schema
from edge.survey.raster import SurveyError, rasterio_module
from edge.survey.scan import ScanOptions, scan

TILE_PX = 320  # the tiny model's 160 m tiles at 0.5 m/px
RED_TILES = [(0, 0), (0, 1), (1, 1), (2, 2), (2, 3)]  # (row, col): (2, 2) meets (1, 1) only at a corner


def red_box(row: int, col: int) -> tuple[int, int, int, int]:
    return (col * TILE_PX, row * TILE_PX, (col + 1) * TILE_PX, (row + 1) * TILE_PX)


@pytest.fixture(scope="module")
def ortho(tmp_path_factory):
    """4 x 3 tiles of 160 m at 0.5 m/px, UTM 21S."""
    path = tmp_path_factory.mktemp("ortho") / "survey.tif"
    return write_ortho(path, 4 * TILE_PX, 3 * TILE_PX, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.5, 0.5),
                       red_boxes=[red_box(r, c) for r, c in RED_TILES])


def run_scan(capsys, *args) -> tuple[int, list[dict], str]:
    code = main(["scan", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_adjacent_alerting_tiles_merge_into_areas(ortho, tiny_scan_model, tmp_path, capsys):
    out = tmp_path / "survey.geojson"
    code, records, err = run_scan(capsys, ortho, "--model", tiny_scan_model, "--out", out, "--device", "drone-1",
                                  "--workers", "1")
    assert code == 0, err
    data = json.loads(out.read_text())
    areas = [f for f in data["features"] if f["properties"]["kind"] == "area"]
    tiles = [f for f in data["features"] if f["properties"]["kind"] == "tile"]
    assert sorted((t["properties"]["row"], t["properties"]["col"]) for t in tiles) == RED_TILES
    assert [(a["properties"]["area"], a["properties"]["tiles"]) for a in areas] == [(1, 3), (2, 2)]
    # the area on the ellipsoid: 160 m x 160 m per tile of the UTM grid, over the projection's areal scale there
    lon, lat = shape(areas[0]["geometry"]).centroid.coords[0]
    scale = Proj(UTM_21S).get_factors(lon, lat).areal_scale
    assert areas[0]["properties"]["hectares"] == pytest.approx(3 * 160 * 160 / scale / 1e4, rel=1e-5)
    assert areas[0]["properties"]["peak_score"] >= 0.6 and areas[0]["properties"]["label"] == "mining"
    for feature in data["features"]:  # valid GeoJSON polygons, as RFC 7946 draws them
        geometry = shape(feature["geometry"])
        assert feature["type"] == "Feature" and geometry.geom_type == "Polygon" and geometry.is_valid
        assert geometry.exterior.is_ccw and all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in geometry.exterior.coords)
    for tile in tiles:  # every alerting tile lies in its area
        area = shape(areas[tile["properties"]["area"] - 1]["geometry"])
        assert area.buffer(1e-7).contains(shape(tile["geometry"]))  # 1e-7 degrees: the coordinates are rounded to it
    assert len(records) == 2 and records[0]["area"]["tiles"] == 3
    assert (tmp_path / "survey.png").stat().st_size > 0 and "5 alerting, 2 areas" in err


def test_records_go_through_the_outbox_once_and_follow_the_schema(ortho, tiny_scan_model, tmp_path, capsys):
    out, outbox = tmp_path / "s.geojson", tmp_path / "outbox.db"
    args = (ortho, "--model", tiny_scan_model, "--out", out, "--outbox", outbox, "--device", "drone-1")
    code, first, _ = run_scan(capsys, *args)
    code2, again, err = run_scan(capsys, *args)  # a rerun of a finished scan: the same records, the same ids
    assert (code, code2) == (0, 0) and first == again and "12 from the state file" in err
    with sqlite3.connect(outbox) as db:
        payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox ORDER BY seq")]
    assert payloads == first
    validator = jsonschema.Draft202012Validator(load_schema("detection"))
    for record in payloads:
        validator.validate(record)
        assert record["schema"] == "1.6" and record["alert"] is True and record["source"] == str(ortho)
        assert record["area"]["polygon"][0] == record["area"]["polygon"][-1]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(dict(payloads[0], area=dict(payloads[0]["area"], tiles=0)))


def test_another_scan_in_the_same_state_file_is_refused(ortho, tiny_scan_model, tmp_path, capsys):
    out = tmp_path / "s.geojson"
    assert run_scan(capsys, ortho, "--model", tiny_scan_model, "--out", out)[0] == 0
    code, _, err = run_scan(capsys, ortho, "--model", tiny_scan_model, "--out", out, "--overlap", "0.5")
    assert code == 2 and "overlap" in err and "--fresh" in err
    assert run_scan(capsys, ortho, "--model", tiny_scan_model, "--out", out, "--overlap", "0.5", "--fresh")[0] == 0


def test_an_ortho_coarser_than_the_model_is_out_of_domain(tmp_path, tiny_scan_model, capsys):
    path = write_ortho(tmp_path / "coarse.tif", 64, 64, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 25.0, 25.0))
    code, _, err = run_scan(capsys, path, "--model", tiny_scan_model, "--out", tmp_path / "c.geojson")
    assert code == 2 and "out of the model's domain" in err
    assert "25 m/px" in err and "learnt 10 m/px" in err and str(path) in err
    # within 2x the model's resolution it is read (upsampled)
    assert run_scan(capsys, path, "--model", tiny_scan_model, "--out", tmp_path / "c.geojson", "--gsd", "15")[0] == 0


def test_transparent_ground_is_not_classified(tmp_path, tiny_scan_model):
    path = write_ortho(tmp_path / "rgba.tif", 2 * TILE_PX, TILE_PX, crs=UTM_21S,
                       transform=north_up(*UTM_ORIGIN, 0.5, 0.5), red_boxes=[red_box(0, 1)], alpha_boxes=[red_box(0, 1)])
    summary = scan(path, ScanOptions(model=tiny_scan_model, out=tmp_path / "r.geojson", device="t"))
    assert (summary.tiles, summary.empty, summary.alerting) == (2, 1, 0)


def test_an_ortho_smaller_than_a_tile(tmp_path, tiny_scan_model):
    """A tile clipped by the ortho's edge is classified when the ortho covers at least half of it."""
    small = write_ortho(tmp_path / "small.tif", 240, 200, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.5, 0.5),
                        red_boxes=[(0, 0, 240, 200)])
    summary = scan(small, ScanOptions(model=tiny_scan_model, out=tmp_path / "s.geojson", device="t"))
    assert (summary.tiles, summary.empty) == (1, 1)  # 240 x 200 of 320 x 320 px: 47 % of a tile
    wider = write_ortho(tmp_path / "wider.tif", 300, 200, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.5, 0.5),
                        red_boxes=[(0, 0, 300, 200)])
    summary = scan(wider, ScanOptions(model=tiny_scan_model, out=tmp_path / "w.geojson", device="t"))
    assert (summary.tiles, summary.empty, summary.alerting) == (1, 0, 1)  # 59 %: classified, and red


def test_the_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(SurveyError, match=r"survey extra.*\[survey\]"):
        rasterio_module()


def test_a_scan_decides_as_classify_does(tmp_path):
    """The shipped model on the sample mosaic: georeferenced at its own 10 m/px, a scan's tiles are the
    mosaic's 48-px tiles, and each gets the scores and decision `classify --overlap 0` gives it."""
    sys.path.insert(0, str(ROOT / "samples"))
    import mosaic_geotiff

    from edge.image.classify import ClassifyOptions, classify_frame
    from edge.model.loaded import load_model

    model_path = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
    tif = mosaic_geotiff.main(dst=tmp_path / "mosaic_a.tif")
    out = tmp_path / "m.geojson"
    summary = scan(tif, ScanOptions(model=model_path, out=out, device="t"))
    model = load_model(model_path)
    framed = classify_frame(model, mosaic_geotiff.SCENES / "mosaic_a.png",
                            ClassifyOptions(thresholds=dict(model.manifest.thresholds), overlap=0.0))
    grid = framed.tiles.scores[:, :, model.manifest.labels.index("mining")]
    expected = {(r, c) for r in range(12) for c in range(12) if grid[r, c] >= model.manifest.thresholds["mining"]}
    tiles = {(f["properties"]["row"], f["properties"]["col"]): f["properties"]["scores"]["mining"]
             for f in json.loads(out.read_text())["features"] if f["properties"]["kind"] == "tile"}
    assert set(tiles) == expected and summary.tiles == 144
    assert all(score == pytest.approx(float(grid[r, c]), abs=1e-4) for (r, c), score in tiles.items())


ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]


def test_the_shipped_geotiff_is_the_sample_mosaic_where_its_script_puts_it():
    import numpy as np
    import rasterio
    from PIL import Image

    sys.path.insert(0, str(ROOT / "samples"))
    import mosaic_geotiff

    with rasterio.open(mosaic_geotiff.SCENES / "mosaic_a.tif") as src:
        assert (src.crs.to_epsg(), tuple(src.transform)[:6]) == (32721, (10.0, 0.0, 620_000.0, 0.0, -10.0, 9_340_000.0))
        pixels = np.moveaxis(src.read(), 0, -1)
    assert (pixels == np.asarray(Image.open(mosaic_geotiff.SCENES / "mosaic_a.png").convert("RGB"))).all()


def test_a_torn_ortho_says_which_file_and_where_it_could_not_be_read(tiny_scan_model, tmp_path, capsys):
    torn = write_ortho(tmp_path / "torn.tif", 6 * 32, 6 * 32, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 5.0, 5.0),
                       strip=32)
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) * 2 // 3])  # cut short while copied: the header is still there
    for workers in ("1", "2"):  # a worker process's error reaches this process as the same message
        code, records, err = run_scan(capsys, torn, "--model", tiny_scan_model, "--out", tmp_path / "t.geojson",
                                      "--workers", workers, "--fresh")
        assert code == 2 and records == [] and "Traceback" not in err
        assert f"{torn}: cannot read its pixels at x " in err and "damaged or was cut short" in err
