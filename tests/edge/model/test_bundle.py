"""Model bundle: round trip, checksum, manifest validation, manifest-vs-tensor checks."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import pytest
from build_models import tiny_manifest

from edge import __version__
from edge.features.pixels import InputSpec
from edge.model.bundle import BundleError, read_bundle, write_bundle
from edge.model.loaded import load_model


def _rezip(src, dst, *, manifest=None, model=None, drop=None):
    with zipfile.ZipFile(src) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    if manifest is not None:
        entries["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    if model is not None:
        entries["model.tflite"] = model
    if drop:
        entries.pop(drop)
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return dst


def _manifest_dict(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_round_trip_keeps_manifest_and_model(tiny_int8, tmp_path):
    bundle = read_bundle(tiny_int8)
    copy = tmp_path / "copy.nvm"
    written = write_bundle(copy, bundle.model_bytes, replace(bundle.manifest, model_sha256=""))
    again = read_bundle(copy)
    assert again.manifest == written == bundle.manifest
    assert again.model_bytes == bundle.model_bytes
    assert again.manifest.model_sha256 and len(again.manifest.model_sha256) == 64
    assert again.manifest.input == InputSpec(size=(32, 32), dtype="int8")


def test_groups_and_events_round_trip_and_older_manifests_have_neither(tiny_int8, tmp_path):
    bundle = read_bundle(tiny_int8)
    grouped = replace(bundle.manifest, groups={"mining": ("mining",)}, events={"rule": "mean", "window": 3})
    written = write_bundle(tmp_path / "grouped.nvm", bundle.model_bytes, grouped)
    again = read_bundle(tmp_path / "grouped.nvm").manifest
    assert again == written and again.groups == {"mining": ("mining",)} and again.events == {"rule": "mean", "window": 3}
    older = {k: v for k, v in _manifest_dict(tiny_int8).items() if k not in ("groups", "events")}
    old = read_bundle(_rezip(tiny_int8, tmp_path / "old.nvm", manifest=older)).manifest
    assert (old.groups, old.events) == (None, None) and old == bundle.manifest


def test_load_checks_tensors_and_works(tiny_int8):
    model = load_model(tiny_int8)
    assert model.manifest.labels == ("mining", "not_mining")
    assert model.runner.input.dtype == "int8"


def test_checksum_mismatch_is_refused(tiny_int8, tmp_path):
    data = read_bundle(tiny_int8).model_bytes
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    bad = _rezip(tiny_int8, tmp_path / "bad.nvm", model=bytes(tampered))
    with pytest.raises(BundleError, match=r"bad\.nvm: model checksum mismatch"):
        read_bundle(bad)


@pytest.mark.parametrize("entry", ["manifest.json", "model.tflite"])
def test_missing_entry(tiny_int8, tmp_path, entry):
    bad = _rezip(tiny_int8, tmp_path / "bad.nvm", drop=entry)
    with pytest.raises(BundleError, match=f"bundle has no {entry}"):
        read_bundle(bad)


def test_not_a_zip(tmp_path):
    bad = tmp_path / "junk.nvm"
    bad.write_bytes(b"this is not a model" * 10)
    with pytest.raises(BundleError, match=r"junk\.nvm: not a model bundle"):
        read_bundle(bad)


def test_bare_tflite_gets_a_hint(tiny_int8, tmp_path):
    bare = tmp_path / "model.tflite"
    bare.write_bytes(read_bundle(tiny_int8).model_bytes)
    with pytest.raises(BundleError, match="bare .tflite"):
        read_bundle(bare)


def test_missing_file():
    with pytest.raises(BundleError, match="no such model bundle"):
        read_bundle("/nonexistent/model.nvm")


def test_manifest_not_json(tiny_int8, tmp_path):
    bad = _rezip(tiny_int8, tmp_path / "bad.nvm", manifest=b"{not json")
    with pytest.raises(BundleError, match="manifest.json is not valid JSON"):
        read_bundle(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 99}, "bundle format 99"),
        ({"min_runtime": "99.0.0"}, f"needs naturevision >= 99.0.0, this is {__version__}"),
        ({"min_runtime": "soon"}, "min_runtime: 'soon' is not a version"),
        ({"task": "video"}, "task: expected one of"),
        ({"labels": ["only"]}, "labels: expected at least two"),
        ({"labels": ["a", "a"]}, "labels: expected at least two distinct"),
        ({"alert_labels": ["gold"]}, r"alert_labels: \['gold'\] are not in labels"),
        ({"thresholds": {}}, r"alert labels \['mining'\] have no threshold"),
        ({"thresholds": {"mining": 1.5}}, r"thresholds.mining: expected a number in \[0, 1\]"),
        ({"input": {"size": [32], "colour": "rgb", "resize": "bilinear", "dtype": "int8",
                    "mean": [0, 0, 0], "std": [1, 1, 1]}}, r"input.size: expected \[width, height\]"),
        ({"input": {"size": [32, 32], "colour": "rgb", "resize": "lanczos", "dtype": "int8",
                    "mean": [0, 0, 0], "std": [1, 1, 1]}}, "input.resize: expected one of"),
        ({"input": {"size": [32, 32], "colour": "rgb", "resize": "bilinear", "dtype": "int8",
                    "mean": [0, 0, 0], "std": [1, 0, 1]}}, "input.std: values must be > 0"),
        ({"trained_on": {"source": "x", "tile_px": -3}}, "trained_on.tile_px: expected a positive integer"),
        ({"task": "audio"}, "audio: an audio model needs its feature spec"),
        ({"task": "audio", "audio": {"n_mels": "64"}}, r"audio\.n_mels: expected an integer"),
        ({"task": "audio", "audio": {"features": "log-mel"}}, "input.colour: a audio model takes 'log-mel', got 'rgb'"),
        ({"input": {"size": [64, 96], "colour": "log-mel", "resize": "bilinear", "dtype": "int8",
                    "mean": [0, 0, 0], "std": [1, 1, 1]}}, "input.colour: a image model takes 'rgb'"),
        ({"name": None}, "name: expected str"),
        ({"groups": {"m": ["mining"]}}, r"thresholds: 'mining' is not in groups \['m'\]"),
        ({"groups": {"m": ["mining"]}, "thresholds": {}}, r"thresholds: alert groups \['m'\] have no threshold"),
        ({"groups": {"not_mining": ["mining"]}}, "groups.not_mining: a group may take a label's name only when it is that label alone"),
        ({"groups": {"m": ["not_mining"]}}, r"groups.m: \['not_mining'\] are not alert labels \['mining'\]"),
        ({"groups": {"m": []}}, "groups.m: expected a non-empty list of distinct alert labels"),
        ({"groups": {"m": ["mining", "mining"]}}, "groups.m: expected a non-empty list of distinct alert labels"),
        ({"groups": ["mining"]}, "groups: expected an object of group name -> alert labels"),
        ({"groups": {}}, "groups: expected an object of group name -> alert labels"),
        ({"groups": {"a": ["mining"], "b": ["mining"]}, "thresholds": {"a": 0.5, "b": 0.5}},
         r"groups: \['mining'\] are in more than one group; put each alert label in exactly one"),
        ({"alert_labels": ["mining", "not_mining"], "groups": {"g": ["mining"]}, "thresholds": {"g": 0.5}},
         r"groups: alert labels \['not_mining'\] are in no group"),
        ({"events": [2, 3]}, "events: expected an object of event rules, got list"),
    ],
)
def test_manifest_errors_name_the_key(tiny_int8, tmp_path, change, message):
    manifest = _manifest_dict(tiny_int8) | change
    bad = _rezip(tiny_int8, tmp_path / "bad.nvm", manifest=manifest)
    with pytest.raises(BundleError, match=message):
        read_bundle(bad)


def test_missing_key(tiny_int8, tmp_path):
    manifest = _manifest_dict(tiny_int8)
    del manifest["labels"]
    with pytest.raises(BundleError, match="missing key 'labels'"):
        read_bundle(_rezip(tiny_int8, tmp_path / "bad.nvm", manifest=manifest))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input": InputSpec(size=(64, 64), dtype="int8")}, r"input tensor is \[1, 32, 32, 3\], manifest says \[N, 64, 64, 3\]"),
        ({"input": InputSpec(size=(32, 32), dtype="float32")}, "input tensor type is int8, manifest says float32"),
        ({"labels": ("a", "b", "c"), "alert_labels": ("a",), "thresholds": {"a": 0.5}}, "output tensor is \\[1, 2\\], manifest lists 3 labels"),
    ],
)
def test_manifest_tensor_mismatch(tiny_int8, tmp_path, change, message):
    model_bytes = read_bundle(tiny_int8).model_bytes
    wrong = tmp_path / "wrong.nvm"
    write_bundle(wrong, model_bytes, replace(tiny_manifest("wrong", "int8"), **change))
    with pytest.raises(BundleError, match=r"wrong\.nvm: model and manifest disagree: " + message):
        load_model(wrong)


def test_audio_manifest_checks_the_tensor_against_the_feature_spec(tiny_int8, tmp_path):
    """An image network labelled as an audio model: the input tensor is not [N, frames, n_mels, 1]."""
    model_bytes = read_bundle(tiny_int8).model_bytes
    wrong = tmp_path / "wrong.nvm"
    audio = replace(tiny_manifest("wrong", "int8"), task="audio", audio={"features": "log-mel", "frames": 96, "n_mels": 64},
                    input=InputSpec(size=(64, 96), colour="log-mel", dtype="int8"))
    write_bundle(wrong, model_bytes, audio)
    with pytest.raises(BundleError, match=r"input tensor is \[1, 32, 32, 3\], manifest says \[N, 96, 64, 1\]"):
        load_model(wrong)


def test_write_refuses_invalid_manifest(tiny_int8, tmp_path):
    model_bytes = read_bundle(tiny_int8).model_bytes
    with pytest.raises(BundleError, match="alert_labels"):
        write_bundle(tmp_path / "x.nvm", model_bytes, replace(tiny_manifest("x", "int8"), alert_labels=("nope",)))
    assert not (tmp_path / "x.nvm").exists()
