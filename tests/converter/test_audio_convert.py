"""`nv-convert audio` end to end on synthetic clips: train, quantize, verify on both edge backends,
report; then the edge loads the bundle and classifies windows made by its own front end.

TensorFlow runs in a subprocess only (tflite-runtime breaks in a process that imported it).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_audio_dataset import MAP, write_clip_folders
from tfprocess import nv_convert

from converter.audio_dataset import read_clip
from edge.features.logmel import LogMelSpec, clip_windows, normalise
from edge.model.bundle import read_bundle
from edge.model.loaded import load_model

# A tiny CNN learns hum / hiss / chirps in a few epochs. The synthetic test split holds about 10 clips,
# so the int8 gate is loosened here; the guard itself is tested with images (test_convert.py).
TRAIN_ARGS = ["--arch", "cnn", "--width", "8", "--epochs", "8", "--patience", "8", "--batch", "16", "--lr", "0.003",
              "--rep-samples", "60", "--target-precision", "0.8", "--seed", "1", "--baseline", "--max-drop", "10"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio")
    write_clip_folders(tmp / "data", recordings=8, slices=2, seconds=2.0, seed=5)
    (tmp / "map.toml").write_text(MAP)
    out = tmp / "out" / "tiny-audio.nvm"
    proc = nv_convert("audio", str(tmp / "data"), "--labels", str(tmp / "map.toml"), "--out", str(out), "--name", "tiny-audio",
                      "--source", "synthetic clips", "--licence", "CC0-1.0", "--hold-out-groups", "hum/hum2", *TRAIN_ARGS,
                      "--class-weight", "background=2", "--label-smoothing", "0.05")
    return {"proc": proc, "out": out, "data": tmp / "data"}


def test_convert_writes_bundle_report_and_metrics(converted):
    proc, out = converted["proc"], converted["out"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("tiny-audio.nvm", "metrics.json", "report.md", "confusion.png", "training.png", "precision_recall.png"):
        assert (out.parent / name).is_file(), name
    report = (out.parent / "report.md").read_text()
    assert "int8 TFLite (LiteRT), shipped" in report and "Per clip" in report and "false alarms by source class" in report


def test_metrics_json_has_window_clip_and_binary_figures(converted):
    m = json.loads((converted["out"].parent / "metrics.json").read_text())
    labels = ["engine", "saw", "background"]
    assert m["labels"] == labels and m["alert_labels"] == ["engine", "saw"]
    for kind in ("keras", "float32", "int8", "int8_tflite_runtime", "baseline"):
        assert set(m["test"][kind]["per_class"]) == set(labels)
    for kind in ("keras", "float32", "int8", "baseline"):
        assert set(m["test_binary"][kind]["per_class"]) == {"alert", "background"}
        assert 0.0 <= m["test_clip"][kind]["labels"]["balanced_accuracy"] <= 1.0
        assert 0.0 <= m["test_clip"][kind]["binary"]["balanced_accuracy"] <= 1.0
    s = m["split"]
    assert s["train"] + s["val"] + s["test"] == 48 and s["held_out_groups_in_test"] == ["hum/hum2"]
    assert s["windows"]["train"] > s["train"]  # several overlapping windows per training clip
    # hum, hiss and chirps are easy: a model that learnt nothing would sit at 1/3
    assert m["test"]["float32"]["balanced_accuracy"] >= 0.8
    assert m["test_clip"]["int8"]["labels"]["balanced_accuracy"] >= 0.8
    assert m["agreement"]["int8_vs_float32"] >= 0.9 and m["agreement"]["int8_litert_vs_tflite_runtime"] >= 0.95
    assert set(m["thresholds"]) == {"engine", "saw"} and set(m["alerts_at_thresholds"]) == {"window", "clip_any_window"}


def test_class_weight_and_label_smoothing_reach_the_training(converted):
    t = json.loads((converted["out"].parent / "metrics.json").read_text())["training"]
    counts = json.loads((converted["out"].parent / "metrics.json").read_text())["split"]["per_label_windows"]["train"]
    n, k = sum(counts.values()), len(counts)
    for label, c in counts.items():
        factor = 2.0 if label == "background" else 1.0
        assert t["class_weights"][label] == pytest.approx(factor * n / (k * c), abs=1e-4), label
    assert t["class_weight_factors"] == {"background": 2.0} and t["config"]["label_smoothing"] == 0.05


@pytest.mark.parametrize("args, message", [
    (["--class-weight", "background"], "expected LABEL=W with W > 0"),
    (["--class-weight", "background=0"], "expected LABEL=W with W > 0"),
    (["--class-weight", "rain=2"], "'rain' is not a label"),
    (["--label-smoothing", "1.5"], "between 0 and 1"),
])
def test_bad_class_weights_and_smoothing_are_refused(converted, args, message):
    proc = nv_convert("audio", str(converted["data"]), "--labels", str(converted["out"].parent.parent / "map.toml"),
                      "--out", str(converted["out"].parent.parent / "refused" / "x.nvm"), *TRAIN_ARGS, *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert not (converted["out"].parent.parent / "refused" / "x.nvm").exists()


def test_manifest_carries_the_front_end(converted):
    m = read_bundle(converted["out"]).manifest
    assert m.task == "audio" and m.labels == ("engine", "saw", "background") and m.alert_labels == ("engine", "saw")
    spec = LogMelSpec.from_dict(m.audio)
    assert spec.std != 1.0 and spec.mean != 0.0  # set from the training windows
    assert m.input.colour == "log-mel" and m.input.size == (spec.n_mels, spec.frames) and m.input.dtype == "int8"
    assert m.trained_on.licences == ("CC0-1.0",) and m.trained_on.source == "synthetic clips"
    assert all(0.0 < m.thresholds[a] <= 1.0 for a in m.alert_labels)


def test_the_event_rule_and_thresholds_are_chosen_on_validation_events(converted):
    """Without [groups] in the map every alert label is its own group; the manifest carries the chosen rule
    and says how it was chosen, metrics.json the event figures on test and the curve."""
    m = read_bundle(converted["out"]).manifest
    assert m.groups is None and set(m.thresholds) == {"engine", "saw"}
    assert len(set(m.thresholds.values())) == 1, "one threshold for every group of a point"
    assert m.events["rule"] in ("k_of_n", "mean")
    p = m.metrics["operating_point"]
    assert p["by"] == "nv-convert audio" and p["data"]["split"] == "val" and "test" in p
    e = json.loads((converted["out"].parent / "metrics.json").read_text())["events"]
    assert e["chosen"]["thresholds"] == m.thresholds and e["how"] == p["how"]
    assert e["before"]["what"].startswith("per-label window thresholds") and set(e["curve"]) == {"validation", "test"}
    assert 0.0 <= e["test"]["chosen"]["event_recall"] <= 1.0
    assert (converted["out"].parent / "events.png").is_file()
    assert "## Events: what a unit reports" in (converted["out"].parent / "report.md").read_text()


@pytest.mark.parametrize("backend", ["litert", "tflite-runtime"])
def test_the_edge_classifies_clips_with_its_own_front_end(converted, backend):
    model = load_model(converted["out"], backend=backend)
    spec = LogMelSpec.from_dict(model.manifest.audio)
    data = converted["data"]
    truth, said = [], []
    for k, cls in enumerate(("hum", "chirp", "hiss")):  # engine, saw, background
        for path in sorted((data / cls).iterdir())[:6]:
            windows, _ = clip_windows(read_clip(path, spec), spec, hop_s=0.5)
            scores = model.predict(normalise(windows, spec))
            truth.append(k)
            said.append(int(scores.mean(0).argmax()))
    assert np.mean(np.array(said) == np.array(truth)) >= 0.8


def test_cli_refuses_an_unmapped_class(converted, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('alert = ["engine"]\n[labels]\nengine = ["hum"]\nbackground = ["hiss"]\n')
    proc = nv_convert("audio", str(converted["data"]), "--labels", str(bad), "--out", str(tmp_path / "x.nvm"), timeout=120)
    assert proc.returncode == 2 and "'chirp' of the data is not mapped" in proc.stderr
