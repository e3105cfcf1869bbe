"""`nv-convert image-operating-point`: the tiny model's threshold and TTA chosen again on a labelled set of
16 px tiles (its training scale), the bundle released with the same model bytes; and the CLI of
`calibrate-images`. Both run without TensorFlow (in a subprocess here, as a user runs them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from build_models import TILE
from imagefiles import encode, solid
from PIL import Image
from tfprocess import nv_convert

from edge.model.bundle import read_bundle


def noisy(rng, mean, size=TILE) -> Image.Image:
    arr = np.clip(rng.normal(mean, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Mines are red-brown, quiet ground green or (a quarter of it) brown: the tiny model's 0.6 alerts on some
    brown tiles, so a better threshold exists."""
    root = tmp_path_factory.mktemp("tiles")
    rng = np.random.default_rng(7)
    for label, n in (("mining", 120), ("not_mining", 480)):
        (root / label).mkdir()
        for k in range(n):
            mean = (190, 100, 60) if label == "mining" else ((150, 125, 60) if k % 4 == 0 else (50, 150, 50))
            noisy(rng, mean).save(root / label / f"{label[:1]}{k:03d}.png")
    return root


@pytest.fixture(scope="module")
def released(tiny_scaled, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "tiny-released.nvm"
    proc = nv_convert("image-operating-point", str(data), "--bundle", str(tiny_scaled), "--out", str(out),
                      "--tta", "4", "--tta-options", "1,4", "--scenes", "6", "--version", "0.0.2", timeout=900)
    return proc, out


def test_release_keeps_the_model_and_ships_the_chosen_point(released, tiny_scaled):
    proc, out = released
    assert proc.returncode == 0, proc.stderr[-3000:]
    old, new = read_bundle(tiny_scaled), read_bundle(out)
    assert new.model_bytes == old.model_bytes and new.manifest.model_sha256 == old.manifest.model_sha256
    m = new.manifest
    assert m.version == "0.0.2" and m.input.tta == 4 and m.groups == {"mining": ("mining",)}
    metrics = json.loads((out.parent / "metrics.json").read_text())
    points = metrics["operating_points"]
    chosen = next(r for r in points["runs"] if r["tta"] == 4)
    assert m.thresholds == {"mining": chosen["threshold"]} and chosen["threshold"] != 0.6
    assert m.metrics["operating_point"]["chosen_on"].startswith("validation split")
    assert m.metrics["operating_point"]["previous"] == {"threshold": 0.6, "tta": 1}
    assert metrics["thresholds"]["mining"]["threshold"] == chosen["threshold"]
    # brown quiet tiles alert at 0.6; the chosen threshold does better on validation
    before = next(r for r in points["runs"] if r["tta"] == 1)["before"]["val"]["tile"]
    assert chosen["val"]["tile"]["balanced_accuracy"] >= before["balanced_accuracy"]
    assert before["false_alarm_rate"] > chosen["val"]["tile"]["false_alarm_rate"]


def test_metrics_hold_both_curves_for_both_splits_and_the_report_shows_them(released):
    proc, out = released
    points = json.loads((out.parent / "metrics.json").read_text())["operating_points"]
    assert points["target"] == "max-balanced-accuracy" and [r["tta"] for r in points["runs"]] == [1, 4]
    assert points["scenes"]["scene_km2"] == pytest.approx(64 * 0.16 ** 2)
    for run in points["runs"]:
        for split in ("val", "test"):
            tile, scene = run["curves"][split]["tile"], run["curves"][split]["scene"]
            assert len(tile["threshold"]) == len(tile["balanced_accuracy"]) == 101
            assert {"scene_recall", "false_alarms_per_100km2", "quiet_tiles_alerting"} <= set(scene)
            assert set(run[split]) == {"tile", "scene"}
        assert run["ms_per_tile"] > 0
    report = (out.parent / "report.md").read_text()
    assert report.startswith("# Model report: tiny-10m 0.0.2") and "## Operating point" in report
    assert "![operating points](operating_points.png)" in report and (out.parent / "operating_points.png").is_file()


def test_calibrate_images_from_the_command_line(tiny_scaled, tmp_path):
    site = tmp_path / "site"
    for cls, colour, n in (("mining", (200, 100, 60), 4), ("not_mining", (150, 120, 60), 4)):
        (site / cls).mkdir(parents=True)
        for k in range(n):
            (site / cls / f"{k}.jpg").write_bytes(encode(solid(colour, (40, 30)), "JPEG", quality=95))
    proc = nv_convert("calibrate-images", str(tiny_scaled), str(site), "--out", str(tmp_path / "site.nvm"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    assert printed["previous"] == {"mining": 0.6} and printed["after"]["mining"]["balanced_accuracy"] == 1.0
    assert read_bundle(tmp_path / "site.nvm").manifest.thresholds == printed["thresholds"]
    bad = nv_convert("calibrate-images", str(tiny_scaled), str(tmp_path / "nowhere"), timeout=300)
    assert bad.returncode == 2 and "nowhere: not a folder" in bad.stderr
