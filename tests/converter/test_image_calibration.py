"""Field calibration end to end: a site's labelled frames, written as real PNG and JPEG files, re-choose
the tiny image model's threshold with the edge runtime alone.

The tiny model scores p(mining) = sigmoid(4 (mean R - mean G)) on normalised pixels: at this site the
quiet ground is brown (about 0.72, above the bundle's 0.6: false alarms), the mines redder (about 0.96)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from build_models import TILE
from imagefiles import GREEN, cut_short, encode, scene_with_block, solid

from converter.image_calibration import CalibrationError, CalibrationOptions, calibrate_images, write_calibrated
from converter.image_operating_points import Target
from edge.decisions.alerts import resolve_thresholds
from edge.image.classify import ClassifyOptions, classify_frame
from edge.model.bundle import read_bundle
from edge.model.loaded import load_model

BROWN = (150, 120, 60)  # the site's bare soil, not a mine
MINE = (200, 100, 60)


def write_site(root, *, mines=5, quiet=8):
    (root / "mining").mkdir(parents=True)
    (root / "not_mining" / "day2").mkdir(parents=True)  # sub-folders are read too
    sizes = [(TILE, TILE), (48, 32), (100, 60), (64, 64), (TILE, TILE)]
    for k in range(mines):
        w, h = sizes[k % len(sizes)]
        img = solid(MINE, (w, h)) if (w, h) == (TILE, TILE) else scene_with_block((w, h), (2, 2, 22, 22), GREEN, MINE)
        (root / "mining" / f"m{k}.{'jpg' if k % 2 else 'png'}").write_bytes(
            encode(img, "JPEG", quality=95) if k % 2 else encode(img))
    for k in range(quiet):
        w, h = sizes[k % len(sizes)]
        colour = BROWN if k % 2 else GREEN
        where = root / "not_mining" / ("day2" if k > 4 else "") / f"q{k}.png"
        where.write_bytes(encode(solid(colour, (w, h))))
    return root


def test_calibration_end_to_end(tiny_scaled, tmp_path):
    site = write_site(tmp_path / "site")
    (site / "not_mining" / "torn.png").write_bytes(cut_short(encode(solid(GREEN, (40, 40))), 0.5))
    result = calibrate_images(tiny_scaled, site, CalibrationOptions(target=Target.parse("max-balanced-accuracy")))
    assert "tensorflow" not in sys.modules
    assert result.frames == {"mining": 5, "not_mining": 8}
    assert [p.name for p, _ in result.unreadable] == ["torn.png"] and "truncated" in result.unreadable[0][1]
    assert result.previous == {"mining": 0.6} and result.reached == {"mining": True}
    before, after = result.before["mining"], result.after["mining"]
    # at 0.6 the four brown frames alert; the new threshold sits above them and keeps every mine
    assert before["recall"] == 1.0 and before["false_alarm_rate"] == 0.5 and before["balanced_accuracy"] == 0.75
    assert after == {"recall": 1.0, "false_alarm_rate": 0.0, "precision": 1.0, "balanced_accuracy": 1.0,
                     "false_alarms_per_100km2": 0.0}
    assert 0.72 < result.thresholds["mining"] <= 0.97
    assert before["false_alarms_per_100km2"] > 0  # 4 brown frames over the quiet frames' area
    assert result.provenance["target"] == "max-balanced-accuracy" and result.provenance["frames"] == result.frames
    json.dumps(result.provenance, allow_nan=False)

    out = write_calibrated(result, tmp_path / "site.nvm")
    bundle = read_bundle(tmp_path / "site.nvm")
    assert bundle.manifest == out and bundle.model_bytes == read_bundle(tiny_scaled).model_bytes
    assert bundle.manifest.thresholds == result.thresholds
    assert bundle.manifest.metrics["calibration"]["thresholds"] == result.thresholds
    model = load_model(tmp_path / "site.nvm")
    options = ClassifyOptions(thresholds=resolve_thresholds(model.manifest), gsd=10.0)  # the site frames: 10 m/px
    assert not classify_frame(model, site / "not_mining" / "q1.png", options).decision.alert  # brown: quiet now
    assert classify_frame(model, site / "mining" / "m2.png", options).decision.alert  # a 100 x 60 frame with a mine


def test_a_false_alarm_target_per_area(tiny_scaled, tmp_path):
    site = write_site(tmp_path / "site")
    result = calibrate_images(tiny_scaled, site, CalibrationOptions(target=Target.parse("scene-false-alarms=0")))
    assert result.after["mining"]["false_alarms_per_100km2"] == 0.0 and result.after["mining"]["recall"] == 1.0
    # the quiet frames cover 2 x 16² + 48 x 32 + 100 x 60 + 64 x 64 + 16² + ... pixels of 10 m: per 100 km²
    areas = {(16, 16): 0.0256, (48, 32): 0.1536, (100, 60): 0.6, (64, 64): 0.4096}
    sizes = [(16, 16), (48, 32), (100, 60), (64, 64), (16, 16)] * 2
    quiet_km2 = sum(areas[s] for s in sizes[:8])
    brown_frames = 4
    assert result.before["mining"]["false_alarms_per_100km2"] == pytest.approx(brown_frames * 100 / quiet_km2, abs=1e-3)


def test_whole_frames_when_asked(tiny_scaled, tmp_path):
    site = write_site(tmp_path / "site")
    result = calibrate_images(tiny_scaled, site, CalibrationOptions(tile=0))
    # seen whole, a frame with a 20 px mine in green is mostly green and scores below the brown ground, so
    # no threshold separates them: the best keeps every mine and half the quiet frames alert (tiled: 1.0)
    after = result.after["mining"]
    assert (after["recall"], after["false_alarm_rate"], after["balanced_accuracy"]) == (1.0, 0.5, 0.75)
    assert result.thresholds["mining"] < 0.05  # below the mostly-green frames' scores


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: (root / "gold").mkdir(parents=True), r"class folders \['gold'\] are neither labels nor alert groups"),
    (lambda root: None, "not a folder"),
    (lambda root: (root / "mining").mkdir(parents=True), "no frames"),
])
def test_a_folder_that_cannot_calibrate_says_why(tiny_scaled, tmp_path, make, message):
    root = tmp_path / "site"
    make(root)
    with pytest.raises(CalibrationError, match=message):
        calibrate_images(tiny_scaled, root)


def test_too_few_frames_is_refused_naming_the_folders(tiny_scaled, tmp_path):
    site = write_site(tmp_path / "site", mines=2, quiet=6)
    with pytest.raises(CalibrationError, match=r"group 'mining' needs at least 3 readable frames that must alert "
                                               r"\(folders mining\) .* found 2 and 6"):
        calibrate_images(tiny_scaled, site)


def test_an_audio_bundle_is_refused(tiny_audio_models, tmp_path):
    from edge.model.bundle import BundleError

    with pytest.raises(BundleError, match="is an audio model, not an image model"):
        calibrate_images(tiny_audio_models["int8"], write_site(tmp_path / "site"))


def test_scores_do_not_depend_on_the_thresholds_they_are_chosen_against(tiny_scaled, tmp_path):
    """A frame's score is its most alarming tile's, whatever the bundle's threshold: calibrating twice lands
    on the same threshold."""
    site = write_site(tmp_path / "site")
    first = calibrate_images(tiny_scaled, site)
    write_calibrated(first, tmp_path / "once.nvm")
    second = calibrate_images(tmp_path / "once.nvm", site)
    assert second.thresholds == first.thresholds and second.previous == first.thresholds
    assert np.isclose(second.before["mining"]["balanced_accuracy"], 1.0)


def test_nv_convert_calibrate_takes_an_image_bundle_too(tiny_scaled, tmp_path, capsys):
    """`nv-convert calibrate` is the one command a technician is told about: an image bundle and a folder of
    frames calibrate as calibrate-images does at its default target, and it says what changed."""
    from converter.cli import main

    site = write_site(tmp_path / "site")
    assert main(["calibrate", str(tiny_scaled), str(site), "--out", str(tmp_path / "site.nvm")]) == 0
    said = capsys.readouterr().out
    assert "mining: threshold 0.6 -> " in said and "balanced accuracy per frame 0.75 -> 1.0" in said and "(13 frames)" in said
    expected = calibrate_images(tiny_scaled, site).thresholds
    assert read_bundle(tmp_path / "site.nvm").manifest.thresholds == expected
    log = tmp_path / "day.jsonl"
    log.write_text("{}\n")
    assert main(["calibrate", str(tiny_scaled), str(site), "--score-log", str(log), "--out", str(tmp_path / "x.nvm")]) == 2
    assert "score logs calibrate audio models" in capsys.readouterr().err and not (tmp_path / "x.nvm").exists()
