"""The whole converter on a small dataset: train, quantize, verify on both edge backends, report.

TensorFlow runs in subprocesses only (tflite-runtime breaks in a process that imported it).
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from bundlefiles import documented_checksum, manifest_of
from synthetic import write_class_folders
from tfprocess import nv_convert, run_python

from edge.features.pixels import prepare_tile
from edge.image.decode import open_frame
from edge.model.bundle import read_bundle
from edge.model.loaded import load_model

# No pretrained weights without ../shared: the tests train from scratch (the whole network, one phase).
TRAIN_ARGS = ["--weights", "none", "--alpha", "0.35", "--size", "32", "--head-epochs", "6", "--fine-epochs", "6",
              "--head-lr", "0.003", "--patience", "6", "--batch", "16", "--rep-samples", "100", "--target-precision", "0.8",
              "--seed", "1", "--baseline", "--max-drop", "6"]
# The synthetic test split holds about 36 pictures, so one picture is about 3 points of balanced
# accuracy: the gate is set to two pictures here. The guard itself is tested below at its default.


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("convert")
    write_class_folders(tmp / "data", per_class=120, seed=4)
    out = tmp / "out" / "tiny.nvm"
    proc = nv_convert("image", str(tmp / "data"), "--out", str(out), "--name", "tiny-mining", "--source", "synthetic tiles",
                      "--licence", "CC0-1.0", "--gsd", "10", *TRAIN_ARGS)
    return {"proc": proc, "out": out, "data": tmp / "data"}


def test_convert_succeeds_and_writes_everything(converted):
    proc, out = converted["proc"], converted["out"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("tiny.nvm", "metrics.json", "report.md", "confusion.png", "training.png", "precision_recall.png"):
        assert (out.parent / name).is_file(), name
    report = (out.parent / "report.md").read_text()
    assert "int8 TFLite (LiteRT), shipped" in report and "nv-convert image" in report


def test_metrics_json_contract(converted):
    m = json.loads((converted["out"].parent / "metrics.json").read_text())
    for kind in ("keras", "float32", "int8"):
        t = m["test"][kind]
        assert {"accuracy", "balanced_accuracy", "per_class"} <= set(t)
        assert set(t["per_class"]) == {"mining", "not_mining"}
        assert {"precision", "recall", "f1"} <= set(t["per_class"]["mining"])
    assert {"train", "val", "test", "groups_merged"} <= set(m["split"])
    assert m["test"]["baseline"]["what"].startswith("logistic regression") and "balanced_accuracy" in m["test"]["baseline"]
    assert m["split"]["train"] + m["split"]["val"] + m["split"]["test"] == 240
    assert 0.0 <= m["agreement"]["int8_vs_float32"] <= 1.0
    # The synthetic classes are easy: a model that learnt nothing would sit at 0.5.
    assert m["test"]["float32"]["balanced_accuracy"] >= 0.8
    assert m["agreement"]["int8_vs_float32"] >= 0.9
    assert m["test"]["float32"]["balanced_accuracy"] - m["test"]["int8"]["balanced_accuracy"] <= 0.06


def test_manifest_matches_the_model(converted):
    bundle = read_bundle(converted["out"])
    m = bundle.manifest
    assert m.name == "tiny-mining" and m.task == "image"
    assert m.labels == ("mining", "not_mining") and m.alert_labels == ("mining",)
    assert m.input.size == (32, 32) and m.input.dtype == "int8"
    assert m.trained_on.tile_px == 32 and m.trained_on.ground_resolution_m == 10.0 and m.trained_on.licences == ("CC0-1.0",)
    metrics = json.loads((converted["out"].parent / "metrics.json").read_text())
    assert m.thresholds["mining"] == metrics["thresholds"]["mining"]["threshold"]
    assert 0.0 < m.thresholds["mining"] < 1.0
    assert m.metrics["test_balanced_accuracy"]["int8"] == metrics["test"]["int8"]["balanced_accuracy"]
    with zipfile.ZipFile(converted["out"]) as zf:
        assert sorted(zf.namelist()) == ["manifest.json", "model.tflite"]
    # The current bundle format: the manifest is sealed by its own checksum, as README.md defines it.
    assert m.format == 2 and m.manifest_sha256 == documented_checksum(manifest_of(converted["out"]))


@pytest.mark.parametrize("backend", ["litert", "tflite-runtime"])
def test_bundle_runs_on_both_backends_and_classifies(converted, backend):
    model = load_model(converted["out"], backend=backend)
    assert model.runner.input.dtype == "int8" and model.runner.output.dtype == "int8"
    data = converted["data"]
    paths = sorted((data / "mining").glob("*.png"))[:20] + sorted((data / "not_mining").glob("*.png"))[:20]
    pixels = np.stack([prepare_tile(open_frame(p).image, model.manifest.input) for p in paths])
    predicted = model.predict(pixels).argmax(1)
    truth = np.array([0] * 20 + [1] * 20)
    assert np.mean(predicted == truth) >= 0.8


def test_backends_agree_on_the_converted_model(converted):
    m = json.loads((converted["out"].parent / "metrics.json").read_text())
    assert m["agreement"]["int8_litert_vs_tflite_runtime"] >= 0.95
    assert set(m["runtime"]) == {"float32/litert", "float32/tflite-runtime", "int8/litert", "int8/tflite-runtime"}


BROKEN = """
import sys, numpy as np
from pathlib import Path
from converter.dataset import load_dataset
from converter.pipeline import ConvertOptions, QuantizationDropError, convert_images
from converter.train import TrainConfig
ds = load_dataset(Path(sys.argv[1]))
config = TrainConfig(size=32, alpha=0.35, weights=None, head_epochs=6, fine_epochs=6, head_lr=0.003, patience=6, batch=16, seed=1)
# Calibrate on near-constant inputs: every real activation range is wrong, int8 must fall apart.
broken = np.full((20, 32, 32, 3), 0.01, np.float32)
try:
    convert_images(ds, Path(sys.argv[2]), ConvertOptions(name="broken", seed=1), config, representative_override=broken)
except QuantizationDropError as exc:
    print("GUARD:", exc)
    sys.exit(3)
sys.exit(0)
"""


def test_max_drop_guard_stops_a_broken_calibration(converted, tmp_path):
    out = tmp_path / "broken" / "broken.nvm"
    proc = run_python("-c", BROKEN, str(converted["data"]), str(out))
    assert proc.returncode == 3, proc.stdout + proc.stderr[-3000:]
    assert "pp below float32" in proc.stdout and "the bundle was not written" in proc.stdout
    assert not out.exists(), "a model that failed the guard must not be written"
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert metrics["test"]["int8"]["balanced_accuracy"] < metrics["test"]["float32"]["balanced_accuracy"] - 0.01


def test_cli_refuses_a_missing_weights_file(tmp_path):
    proc = nv_convert("image", str(tmp_path), "--out", str(tmp_path / "x.nvm"), "--weights", str(tmp_path / "nope.h5"),
                      timeout=120)
    assert proc.returncode == 2 and "no such file" in proc.stderr
