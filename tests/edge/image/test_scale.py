"""Frames at the model's training scale: real drone JPEGs (EXIF and DJI XMP written here), PNGs and the
sample Sentinel-2 mosaic, classified by the tiny real model learnt at 10 m/px (16-px tiles: 160 m of ground),
by the same model without a resolution (a camera model), and by the shipped mining-s2 (48-px tiles at
10 m/px: 480 m)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from build_models import rebundle
from imagefiles import GREEN, MOSAIC, RED, drone_jpeg, encode, scene_with_block, solid
from PIL import Image

from edge.cli.classify import classify_file
from edge.decisions.alerts import resolve_thresholds
from edge.image.choice import ImageModel
from edge.image.classify import ClassifyOptions
from edge.image.scale import Ground, choose, read_ground
from edge.model.bundle import read_bundle
from edge.model.loaded import load_model
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"))


def unit(*paths: Path, **options) -> list[ImageModel]:
    """The models as `nv-edge classify --model A --model B ...` opens them, with `options` (gsd=...)."""
    out = []
    for path in paths:
        model = load_model(path)
        out.append(ImageModel(model, ClassifyOptions(thresholds=resolve_thresholds(model.manifest), overlap=0.0,
                                                     **options)))
    return out


def classify(models: list[ImageModel], path: Path) -> dict:
    record = classify_file(models, path, "unit-1")
    VALIDATOR.validate(record)
    return record


@pytest.fixture(scope="module")
def tiny_05m(tiny_scaled, tmp_path_factory) -> Path:
    """The tiny model under a manifest that says it learnt 0.5 m/px (16-px tiles of 8 m): a drone model."""
    trained = read_bundle(tiny_scaled).manifest.trained_on
    return rebundle(tiny_scaled, tmp_path_factory.mktemp("drone") / "tiny-05m.nvm", name="tiny-05m",
                    trained_on=replace(trained, ground_resolution_m=0.5))


def test_a_drone_photo_at_10_cm_is_out_of_domain_and_raises_no_alert(tiny_scaled, tmp_path):
    # 640 x 480 px at 0.1 m/px: 64 x 48 m of ground, less than one 160 m tile of the 10 m/px model.
    photo = drone_jpeg(tmp_path / "DJI_0001.JPG", solid(RED, (640, 480)), 0.1)
    record = classify(unit(tiny_scaled), photo)
    assert record["alert"] is False and record["scores"]["mining"] > 0.9  # scored, red is "mining", but no alert
    assert record["ground_resolution"]["source"] == "exif-xmp"
    assert record["ground_resolution"]["metres"] == pytest.approx(0.1, rel=1e-4)
    assert "RelativeAltitude" in record["ground_resolution"]["detail"]
    why = record["out_of_domain"]["why"]
    assert record["out_of_domain"]["allowed"] is False
    assert "0.1 m/px (exif-xmp)" in why and "the model learnt 10 m/px" in why and "64 x 48 m" in why
    assert "it cannot judge" in why and "nv-edge scan" in why
    # 160 m at 0.1 m/px: a tile is 1,600 frame pixels, the frame resampled to 6 x 5 px
    assert record["scale"] == {"trained_m_per_px": 10.0, "resampled": True, "tile_px": 1600, "tile_m": 160.0}


def test_allow_out_of_domain_lets_the_same_photo_alert(tiny_scaled, tmp_path):
    photo = drone_jpeg(tmp_path / "DJI_0001.JPG", solid(RED, (640, 480)), 0.1)
    record = classify(unit(tiny_scaled, allow_out_of_domain=True), photo)
    assert record["alert"] is True and record["out_of_domain"]["allowed"] is True
    assert "64 x 48 m" in record["out_of_domain"]["why"]


def test_a_frame_at_5_m_is_resampled_so_that_each_tile_covers_160_m(tiny_scaled, tmp_path):
    # 160 x 96 px at 5 m/px (800 x 480 m) -> 80 x 48 px at 10 m/px -> 5 x 3 tiles of 16 px (no overlap);
    # a tile is 32 frame px, and the red block (64..96, 32..64) is exactly tile (row 1, col 2).
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene_with_block()))
    record = classify(unit(tiny_scaled, gsd=5.0), path)
    assert "out_of_domain" not in record and record["alert"] is True
    assert record["ground_resolution"]["source"] == "option" and record["ground_resolution"]["metres"] == 5.0
    assert record["scale"] == {"trained_m_per_px": 10.0, "resampled": True, "tile_px": 32, "tile_m": 160.0}
    tiles = record["tiles"]
    assert (tiles["size"], tiles["rows"], tiles["cols"]) == (32, 3, 5)
    assert tiles["best"] == {"row": 1, "col": 2, "box": [64, 32, 96, 64]}
    grid = np.array(tiles["grid"]["mining"])
    assert grid[1, 2] > 0.9 and np.delete(grid.ravel(), 1 * 5 + 2).max() < 0.1


def test_the_shipped_model_sees_a_5_m_frame_in_480_m_tiles_as_it_sees_the_10_m_one(tmp_path):
    """The sample mosaic (576 px of real Sentinel-2 at 10 m/px) upsampled to 1152 px is a 5 m/px frame: 12 x 12
    tiles of 96 frame px (480 m), scored as the 10 m/px original's 48 px tiles."""
    original, doubled = tmp_path / "mosaic_10m.png", tmp_path / "mosaic_5m.png"
    with Image.open(MOSAIC) as img:
        img.convert("RGB").save(original)
        img.convert("RGB").resize((1152, 1152), Image.Resampling.BILINEAR).save(doubled)
    at_10 = classify(unit(SHIPPED, gsd=10.0), original)
    at_5 = classify(unit(SHIPPED, gsd=5.0), doubled)
    assert at_10["scale"] == {"trained_m_per_px": 10.0, "resampled": False, "tile_px": 48, "tile_m": 480.0}
    assert at_5["scale"] == {"trained_m_per_px": 10.0, "resampled": True, "tile_px": 96, "tile_m": 480.0}
    assert (at_5["tiles"]["size"], at_5["tiles"]["rows"], at_5["tiles"]["cols"]) == (96, 12, 12)
    a, b = np.array(at_10["tiles"]["grid"]["mining"]), np.array(at_5["tiles"]["grid"]["mining"])
    threshold = at_10["threshold"]
    agree = ((a >= threshold) == (b >= threshold)).mean()
    print(f"mean |score difference| {np.abs(a - b).mean():.4f}; decisions agree on {agree:.1%} of 144 tiles")
    assert agree >= 0.9  # up and down again is not the identity (bilinear blurs), but the model sees the same ground
    # without resampling (the old tiling: 48 frame px of 5 m = 240 m tiles) the scores are another model's
    unscaled = classify(unit(SHIPPED, gsd=5.0, tile=48), doubled)
    assert unscaled["tiles"]["rows"] == 24 and unscaled["scale"]["tile_m"] == 240.0


def test_a_frame_smaller_than_one_tile_is_out_of_domain(tiny_scaled, tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(encode(solid(RED, (20, 20))))  # 100 x 100 m at 5 m/px: less than a 160 m tile
    record = classify(unit(tiny_scaled, gsd=5.0), path)
    assert record["alert"] is False and "covers 100 x 100 m" in record["out_of_domain"]["why"]


def test_coarser_than_twice_the_training_and_unknown_resolution_are_out_of_domain(tiny_scaled, tmp_path):
    path = tmp_path / "red.png"
    path.write_bytes(encode(solid(RED, (64, 64))))
    coarse = classify(unit(tiny_scaled, gsd=25.0), path)  # 25 m/px: the model learnt 10, accepts up to 20
    assert coarse["alert"] is False and "25 m/px (option), the model learnt 10 m/px" in coarse["out_of_domain"]["why"]
    assert "coarser than 20 m/px" in coarse["out_of_domain"]["why"]
    assert classify(unit(tiny_scaled, gsd=20.0), path)["alert"] is True  # twice as coarse: upsampled, judged
    unknown = classify(unit(tiny_scaled), path)
    assert unknown["alert"] is False and "ground_resolution" not in unknown
    assert "ground resolution unknown" in unknown["out_of_domain"]["why"] and "--gsd" in unknown["out_of_domain"]["why"]
    # the config's resolution serves frames whose files say nothing; the file's own wins over it
    assert classify(unit(tiny_scaled, default_gsd=10.0), path)["ground_resolution"]["source"] == "config"
    drone = drone_jpeg(tmp_path / "DJI_0002.JPG", solid(RED, (640, 480)), 0.1)
    assert classify(unit(tiny_scaled, default_gsd=10.0), drone)["ground_resolution"]["source"] == "exif-xmp"


def test_a_camera_model_takes_every_frame_as_before(tiny_int8, tmp_path):
    """No ground resolution in the manifest: no scale, no out_of_domain, 16 frame-px tiles whatever the file says."""
    photo = drone_jpeg(tmp_path / "DJI_0001.JPG", solid(RED, (64, 48)), 0.1)
    record = classify(unit(tiny_int8), photo)
    assert record["alert"] is True
    assert not {"ground_resolution", "scale", "out_of_domain"} & set(record)
    assert (record["tiles"]["size"], record["tiles"]["rows"], record["tiles"]["cols"]) == (16, 3, 4)
    assert record["schema"] == "1.6"


def test_of_two_models_each_frame_goes_to_the_one_whose_resolution_fits(tiny_scaled, tiny_05m, tiny_int8, tmp_path):
    models = unit(tiny_scaled, tiny_05m)
    fine = drone_jpeg(tmp_path / "fine.jpg", solid(RED, (640, 480)), 0.4)  # 256 x 192 m: both can judge it
    coarse = drone_jpeg(tmp_path / "coarse.jpg", solid(RED, (160, 120)), 8.0)  # 8 m/px: the 0.5 m model cannot
    assert classify(models, fine)["model"]["name"] == "tiny-05m"
    assert classify(models, coarse)["model"]["name"] == "tiny-10m"
    assert classify(models, fine)["scale"]["tile_px"] == 20  # 16 px x 0.5 / 0.4
    tiny = drone_jpeg(tmp_path / "tiny.jpg", solid(RED, (64, 48)), 0.4)  # 25.6 x 19.2 m: only the drone model
    assert classify(models, tiny)["model"]["name"] == "tiny-05m" and "out_of_domain" not in classify(models, tiny)
    unknown = tmp_path / "unknown.png"
    unknown.write_bytes(encode(solid(GREEN, (32, 32))))
    assert "out_of_domain" in classify(models, unknown)  # no model can judge it: the first says why
    with_camera = unit(tiny_scaled, tiny_05m, tiny_int8)
    assert classify(with_camera, unknown)["model"]["name"] == "tiny-int8"  # a camera model takes it as it is
    assert classify(with_camera, fine)["model"]["name"] == "tiny-05m"


def test_choose_prefers_models_that_can_judge_then_camera_models_then_the_nearest(tiny_scaled, tiny_05m, tiny_int8):
    ten, half, camera = (read_bundle(p).manifest.trained_on for p in (tiny_scaled, tiny_05m, tiny_int8))
    from edge.image.gsd import given

    def at(metres: float) -> Ground:
        return Ground(given(metres, "option"), "", 1000, 1000)

    assert choose([ten, half], at(3.0)) == 0  # too coarse for the drone model (more than 1 m/px)
    assert choose([ten, half], at(0.9)) == 1  # both judge it: 0.9 is nearer 0.5 than 10
    assert choose([ten, half, camera], at(100.0)) == 2  # neither judges 100 m/px: the camera model
    assert choose([half, ten], at(100.0)) == 1  # nor a camera model: the nearest says why
    assert choose([ten, half], Ground(None, "no EXIF")) == 0


def test_the_manifest_can_narrow_the_range(tiny_scaled, tmp_path):
    trained = read_bundle(tiny_scaled).manifest.trained_on
    narrow = rebundle(tiny_scaled, tmp_path / "narrow.nvm", name="tiny-narrow",
                      trained_on=replace(trained, ground_resolution_range_m=(8.0, 12.0)))
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene_with_block()))
    record = classify(unit(narrow, gsd=5.0), path)
    assert record["alert"] is False and "its manifest accepts 8 to 12 m/px" in record["out_of_domain"]["why"]
    assert classify(unit(narrow, gsd=9.0), path)["alert"] is True


def test_a_sideways_photo_swaps_the_resolution_axes(tmp_path):
    img = solid(RED, (60, 40))
    path = drone_jpeg(tmp_path / "turned.jpg", img, 0.1)
    with Image.open(path) as im:
        exif = im.getexif()
    exif[0x0112] = 6  # stored a quarter turn: upright 40 x 60
    data = Image.open(path)
    data.save(tmp_path / "turned6.jpg", "JPEG", exif=exif, xmp=data.info["xmp"])
    ground = read_ground(tmp_path / "turned6.jpg")
    assert (ground.width, ground.height) == (40, 60) and ground.gsd.source == "exif-xmp"
