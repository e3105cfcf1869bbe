"""`nv-convert operating-point`: a made audio bundle's groups, event rule and thresholds chosen again on the
validation split of its data, with the same model bytes, its report and metrics beside it; without TensorFlow.
On the tiny audio model (tests/build_models.py: hum is "engine", hiss is "background")."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from audiofiles import hiss, hum, write_wav
from tfprocess import run_python

from edge.model.bundle import read_bundle
from edge.model.loaded import load_model

NO_TENSORFLOW = ("import sys; from converter.cli import main; code = main(sys.argv[1:]); "
                 "assert 'tensorflow' not in sys.modules, 'operating-point imported TensorFlow'; sys.exit(code)")
MAP = """alert = ["engine"]
[labels]
background = ["hiss"]
engine = ["hum"]
[groups]
machinery = ["engine"]
"""


def operating_point(*args):
    return run_python("-c", NO_TENSORFLOW, "operating-point", *map(str, args), timeout=600)


@pytest.fixture(scope="module")
def released(tiny_audio_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    rng = np.random.default_rng(3)
    for cls in ("hum", "hiss"):
        (tmp / "data" / cls).mkdir(parents=True)
        for r in range(10):
            for n in range(2):
                x = hum(2.5, amplitude=rng.uniform(0.1, 0.4), f0=rng.uniform(80, 160)) if cls == "hum" else \
                    hiss(2.5, amplitude=rng.uniform(0.03, 0.2), seed=int(rng.integers(1 << 30)))
                write_wav(tmp / "data" / cls / f"{cls}{r}__{n}.wav", x)
    (tmp / "map.toml").write_text(MAP)
    (tmp / "model").mkdir()
    bundle = shutil.copy(tiny_audio_models["int8"], tmp / "model" / "tiny.nvm")
    proc = operating_point(bundle, tmp / "data", "--labels", tmp / "map.toml", "--out", tmp / "out" / "tiny.nvm")
    return {"proc": proc, "tmp": tmp, "old": tiny_audio_models["int8"], "new": tmp / "out" / "tiny.nvm"}


def test_the_bundle_decides_on_the_map_s_groups_with_the_same_model(released):
    assert released["proc"].returncode == 0, released["proc"].stderr[-3000:]
    old, new = read_bundle(released["old"]).manifest, load_model(released["new"], backend="litert").manifest
    assert new.model_sha256 == old.model_sha256 and new.manifest_sha256 != old.manifest_sha256
    assert new.groups == {"machinery": ("engine",)} and set(new.thresholds) == {"machinery"}
    assert new.events["rule"] in ("k_of_n", "mean")
    p = new.metrics["operating_point"]
    assert p["by"] == "nv-convert operating-point" and p["data"]["split"] == "val" and "test" in p
    assert "machinery >= " in p["how"] and "validation clips" in p["how"]


def test_metrics_report_and_plot_beside_it(released):
    out = released["new"].parent
    e = json.loads((out / "metrics.json").read_text())["events"]
    assert set(e) >= {"how", "chosen", "validation", "test", "before", "curve", "alternatives", "target_fa_per_hour"}
    assert set(e["curve"]) == {"validation", "test"} and "2 of 3" in e["curve"]["test"]
    t = e["test"]["chosen"]
    assert t["machinery_clips"] == e["test"]["clips"]["machinery"] > 0 and e["test"]["clips"]["background"] > 0
    assert 0.0 <= t["event_recall"] <= 1.0 and t["background_hours"] > 0
    assert e["before"]["params"]["threshold"] == {"engine": 0.6}, "the bundle as it was: per label"
    report = (out / "report.md").read_text()
    assert "## Events: what a unit reports" in report and "How the thresholds were chosen" in report
    assert (out / "events.png").stat().st_size > 1000
    assert "test: event recall" in released["proc"].stdout


def test_a_release_rule_s_number_of_false_alarms_is_the_target(released):
    tmp = released["tmp"]
    proc = operating_point(tmp / "model" / "tiny.nvm", tmp / "data", "--labels", tmp / "map.toml",
                           "--max-false-alarms", "0", "--out", tmp / "strict" / "tiny.nvm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    e = json.loads((tmp / "strict" / "metrics.json").read_text())["events"]
    assert e["target_fa_per_hour"]["max_false_alarms"] == 0 and e["target_fa_per_hour"]["used"] == 0.0
    assert e["target_fa_per_hour"]["reached"] and e["validation"]["chosen"]["false_alarms"] == 0
    how = read_bundle(tmp / "strict" / "tiny.nvm").manifest.metrics["operating_point"]["how"]
    assert "at most 0 false alarms in its" in how
    assert "fixed by the release rule" in (tmp / "strict" / "report.md").read_text()
    both = operating_point(tmp / "model" / "tiny.nvm", tmp / "data", "--labels", tmp / "map.toml", "--max-false-alarms", "2",
                           "--target-fa-per-hour", "1", "--out", tmp / "x.nvm")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    bad = operating_point(tmp / "model" / "tiny.nvm", tmp / "data", "--labels", tmp / "map.toml", "--max-false-alarms", "-1")
    assert bad.returncode == 2 and "whole number of false alarms" in bad.stderr


def test_a_different_split_from_the_one_the_bundle_was_made_with_is_refused(released):
    tmp = released["tmp"]
    (tmp / "model" / "metrics.json").write_text(json.dumps({"split": {"train": 1, "val": 1, "test": 1}}))
    proc = operating_point(tmp / "model" / "tiny.nvm", tmp / "data", "--labels", tmp / "map.toml", "--out", tmp / "x.nvm")
    assert proc.returncode == 2 and "is not the one tiny.nvm was made with" in proc.stderr
    (tmp / "model" / "metrics.json").unlink()


def test_a_label_map_of_other_labels_is_refused(released):
    tmp = released["tmp"]
    (tmp / "other.toml").write_text('alert = ["hum"]\n[labels]\nhum = ["hum"]\nbackground = ["hiss"]\n')
    proc = operating_point(tmp / "model" / "tiny.nvm", tmp / "data", "--labels", tmp / "other.toml", "--out", tmp / "x.nvm")
    assert proc.returncode == 2 and "are not the bundle's" in proc.stderr
