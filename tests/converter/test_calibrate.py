"""`nv-convert calibrate` end to end on the tiny audio model (tests/build_models.py: a hum is "engine",
hiss is "background") and a site folder of real WAV files written here, plus a unit's score log; in a
process that must never import TensorFlow. Then the new bundle on the edge."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from audiofiles import hiss, hum, write_wav
from tfprocess import run_python

from edge.model.bundle import read_bundle
from edge.model.loaded import load_model

NO_TENSORFLOW = ("import sys; from converter.cli import main; code = main(sys.argv[1:]); "
                 "assert 'tensorflow' not in sys.modules, 'the calibrate path imported TensorFlow'; sys.exit(code)")


def calibrate(*args: str):
    return run_python("-c", NO_TENSORFLOW, "calibrate", *map(str, args), timeout=600)


def site(folder, *, background_class: str = "background"):
    """4 engine clips (hum at several levels), 6 background clips (hiss; one with a hum under it)."""
    for k, level in enumerate((0.1, 0.2, 0.3, 0.5)):
        (folder / "engine").mkdir(parents=True, exist_ok=True)
        write_wav(folder / "engine" / f"gen{k}__0.wav", hum(3, amplitude=level, f0=90 + 20 * k))
    (folder / background_class).mkdir(parents=True, exist_ok=True)
    for k in range(5):
        write_wav(folder / background_class / f"wind{k}.wav", hiss(4, amplitude=0.05 + 0.05 * k, seed=k))
    write_wav(folder / background_class / "far_pump.wav", hiss(4, amplitude=0.1) + hum(4, amplitude=0.08))
    return folder


def score_log(path, model, hours: float, every: int = 1, spikes: tuple[int, ...] = ()) -> None:
    """A unit's score log (docs/score-log.md): background all along, a window every 0.5 s, a few windows
    where the unit heard something machine-like, and a torn last line."""
    t0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
    header = {"score_log": 1, "model": model.identity, "labels": list(model.manifest.labels),
              "groups": {"engine": ["engine"]}, "hop_s": 0.5, "started": "2026-05-01T00:00:00.000Z",
              "until": "2026-05-02T00:00:00.000Z"}
    lines = [json.dumps(header)]
    for i in range(0, int(hours * 7200), every):
        engine = 0.95 if i in spikes else 0.05
        moment = (t0 + timedelta(seconds=i / 2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lines.append(json.dumps({"time": moment, "rms_dbfs": -40.0, "scores": {"background": 1 - engine, "engine": engine},
                                 "groups": {"engine": engine}}, separators=(",", ":")))
    path.write_text("\n".join(lines) + '\n{"time":"2026-05-01T01:0')


@pytest.fixture(scope="module")
def calibrated(tiny_audio_models, tmp_path_factory):
    """The tiny model without groups (one per alert label) and with its shipped threshold, 0.6."""
    tmp = tmp_path_factory.mktemp("calibrate")
    bundle = tiny_audio_models["int8"]
    log = tmp / "unit7.scores.jsonl"
    score_log(log, load_model(bundle), hours=2.0, spikes=(100, 101, 5000, 9000))
    proc = calibrate(bundle, site(tmp / "site"), "--score-log", log, "--out", tmp / "site.nvm")
    return {"proc": proc, "old": bundle, "new": tmp / "site.nvm", "tmp": tmp, "log": log}


def test_calibrate_writes_a_bundle_the_edge_loads_with_the_same_model(calibrated):
    proc = calibrated["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    old, new = read_bundle(calibrated["old"]), read_bundle(calibrated["new"])
    model = load_model(calibrated["new"], backend="litert")
    assert model.manifest.model_sha256 == old.manifest.model_sha256 and new.model_bytes == old.model_bytes
    assert new.manifest.manifest_sha256 != old.manifest.manifest_sha256
    m = new.manifest
    assert m.groups is None and set(m.thresholds) == {"engine"}, "a bundle without groups keeps one per alert label"
    assert m.events["rule"] in ("k_of_n", "mean")


def test_the_manifest_says_what_it_was_calibrated_on(calibrated):
    p = read_bundle(calibrated["new"]).manifest.metrics["operating_point"]
    assert p["by"] == "nv-convert calibrate" and p["date"] == datetime.now(timezone.utc).strftime("%Y-%m-%d")
    d = p["data"]
    assert (d["machinery_clips"], d["background_clips"]) == (4, 6)
    assert d["score_logs"] == [str(calibrated["log"])]
    assert d["score_log_hours"] == pytest.approx(2.0, abs=0.01), "the torn last line is skipped"
    assert d["background_hours"] == pytest.approx(2.0 + 24 / 3600, abs=0.01), "the log and 6 clips of 4 s"
    assert p["target_fa_per_hour"] == {"asked": 1.0, "used": pytest.approx(1.5, abs=0.01), "reached": True}, \
        "2 h of background cannot show less than 3 false alarms in them"
    before, after = p["before"], p["after"]
    assert before["params"]["threshold"] == {"engine": 0.6} and before["rule"] == "2 of 3"
    assert after["event_recall"] >= before["event_recall"] and after["false_alarms_per_hour"] <= 1.5
    assert "nv-convert calibrate" in p["how"] and "score log" in p["how"]


def test_it_prints_before_and_after(calibrated):
    out = calibrated["proc"].stdout
    assert "calibrated on 4 machinery and 6 background clips" in out and "1 score log(s) (2.00 h)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in ("before", "after")}
    assert set(rows) == {"before", "after"} and "4/4" in rows["after"]
    assert "model sha256" in out and "(unchanged)" in out


def test_a_grouped_bundle_keeps_its_groups_and_a_score_log_alone_only_raises_thresholds(tiny_grouped_audio, tmp_path):
    model = load_model(tiny_grouped_audio)
    log = tmp_path / "scores.jsonl"
    spikes = tuple(i + j for i in range(0, 7200, 400) for j in range(3))  # 18 machine-like moments of 1.5 s
    score_log(log, model, hours=1.0, spikes=spikes)
    proc = calibrate(tiny_grouped_audio, "--score-log", log, "--out", tmp_path / "quiet.nvm", "--target-fa-per-hour", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = read_bundle(tmp_path / "quiet.nvm").manifest
    assert m.groups == {"machinery": ("engine",)} and m.events["rule"] == "mean" and m.events["window"] == 3
    assert 0.925 < m.thresholds["machinery"] <= 0.955, "no machinery recordings: raised to the 0.95 the log holds"
    p = m.metrics["operating_point"]
    assert p["data"]["machinery_clips"] == 0 and "least strict" in p["how"]
    assert (p["before"]["false_alarms"], p["after"]["false_alarms"]) == (18, 0) and p["after"]["event_recall"] is None
    assert "score log" in proc.stdout and "before" in proc.stdout


def test_a_class_that_is_no_label_of_the_bundle_is_named(tiny_audio_models, tmp_path):
    proc = calibrate(tiny_audio_models["int8"], site(tmp_path / "site", background_class="wind"), "--out", tmp_path / "x.nvm")
    assert proc.returncode == 2 and "class 'wind'" in proc.stderr and "--labels" in proc.stderr
    (tmp_path / "map.toml").write_text('alert = ["engine"]\n[labels]\nengine = ["engine"]\nbackground = ["wind"]\n')
    proc = calibrate(tiny_audio_models["int8"], tmp_path / "site", "--labels", tmp_path / "map.toml", "--out", tmp_path / "x.nvm")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_score_log_of_another_model_is_refused(tiny_audio_models, tmp_path):
    log = tmp_path / "other.jsonl"
    score_log(log, load_model(tiny_audio_models["float32"]), hours=0.1)
    proc = calibrate(tiny_audio_models["int8"], "--score-log", log, "--out", tmp_path / "x.nvm")
    assert proc.returncode == 2 and str(log) in proc.stderr and "another model" in proc.stderr


def test_nothing_to_calibrate_on_is_a_usage_error(tiny_audio_models, tmp_path):
    proc = calibrate(tiny_audio_models["int8"], "--out", tmp_path / "x.nvm")
    assert proc.returncode == 2 and "score-log" in proc.stderr


def test_the_new_bundle_classifies_with_its_new_threshold(calibrated, tmp_path):
    from edge.audio.listen import AudioClassifier, AudioOptions, classify_clip
    from edge.decisions.alerts import resolve_thresholds
    from edge.decisions.events import layered_rules

    model = load_model(calibrated["new"], backend="litert")
    rules = layered_rules((model.manifest.events, "manifest"))
    classifier = AudioClassifier(model, AudioOptions(thresholds=resolve_thresholds(model.manifest), per_window=False,
                                                     events=rules))
    path = write_wav(tmp_path / "gen.wav", np.concatenate([hiss(3, amplitude=0.05), hum(4, amplitude=0.3)]))
    starts = [r for r in classify_clip(classifier, path, "unit-7") if r["event"]["phase"] == "start"]
    assert len(starts) == 1 and starts[0]["threshold"] == model.manifest.thresholds["engine"]
