"""Model bundle: round trip, both checksums, format 1, manifest validation, manifest-vs-tensor checks."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from build_models import tiny_manifest
from bundlefiles import (MISMATCHES, TAMPERINGS, documented_checksum, format_1, manifest_of, mismatched, rezip,
                         sealed, tampered)

from edge import __version__
from edge.features.pixels import InputSpec
from edge.model.bundle import BundleError, read_bundle, write_bundle
from edge.model.loaded import load_model

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "mining-s2" / "mining-s2.nvm"
FORMAT_1_WARNING = "bundle format 1: manifest.json (labels, alert labels, thresholds) has no checksum"


def test_round_trip_keeps_manifest_and_model(tiny_int8, tmp_path):
    bundle = read_bundle(tiny_int8)
    copy = tmp_path / "copy.nvm"
    written = write_bundle(copy, bundle.model_bytes, replace(bundle.manifest, model_sha256=""))
    again = read_bundle(copy)
    assert again.manifest == written == bundle.manifest
    assert again.model_bytes == bundle.model_bytes
    assert again.manifest.model_sha256 and len(again.manifest.model_sha256) == 64
    assert again.manifest.input == InputSpec(size=(32, 32), dtype="int8")
    assert again.manifest.format == 2 and again.manifest.manifest_sha256 == documented_checksum(manifest_of(copy))


def test_groups_and_events_round_trip_and_older_manifests_have_neither(tiny_int8, tmp_path):
    bundle = read_bundle(tiny_int8)
    grouped = replace(bundle.manifest, groups={"mining": ("mining",)}, events={"rule": "mean", "window": 3})
    written = write_bundle(tmp_path / "grouped.nvm", bundle.model_bytes, grouped)
    again = read_bundle(tmp_path / "grouped.nvm").manifest
    assert again == written and again.groups == {"mining": ("mining",)} and again.events == {"rule": "mean", "window": 3}
    older = sealed({k: v for k, v in manifest_of(tiny_int8).items() if k not in ("groups", "events")})
    old = read_bundle(rezip(tiny_int8, tmp_path / "old.nvm", manifest=older)).manifest
    assert (old.groups, old.events) == (None, None)
    assert replace(old, manifest_sha256="") == replace(bundle.manifest, manifest_sha256="")


def test_load_checks_tensors_and_works(tiny_int8):
    model = load_model(tiny_int8)
    assert model.manifest.labels == ("mining", "not_mining")
    assert model.runner.input.dtype == "int8"


def test_checksum_mismatch_is_refused(tiny_int8, tmp_path):
    data = read_bundle(tiny_int8).model_bytes
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", model=bytes(tampered))
    with pytest.raises(BundleError, match=r"bad\.nvm: model checksum mismatch"):
        read_bundle(bad)


@pytest.mark.parametrize("entry", ["manifest.json", "model.tflite"])
def test_missing_entry(tiny_int8, tmp_path, entry):
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", drop=entry)
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
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", manifest=b"{not json")
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
    manifest = sealed(manifest_of(tiny_int8) | change)  # as nv-convert would write it: the key is what is wrong
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", manifest=manifest)
    with pytest.raises(BundleError, match=message):
        read_bundle(bad)


def test_missing_key(tiny_int8, tmp_path):
    manifest = manifest_of(tiny_int8)
    del manifest["labels"]
    with pytest.raises(BundleError, match="missing key 'labels'"):
        read_bundle(rezip(tiny_int8, tmp_path / "bad.nvm", manifest=sealed(manifest)))


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


# -- the manifest's own checksum (format 2) ----------------------------------------------------------------

@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_an_edited_manifest_is_refused(tmp_path, how):
    """manifest.json edited by hand and zipped again: each edit alone is a valid manifest, so only its
    checksum can tell. On the shipped model a swap would make every mining tile read not_mining."""
    bad = tampered(SHIPPED, tmp_path / "edited.nvm", how)
    expected = r"edited\.nvm: manifest\.json was changed after the bundle was made .*copy the bundle again"
    with pytest.raises(BundleError, match=expected):
        read_bundle(bad)
    with pytest.raises(BundleError, match=expected):
        load_model(bad)


def test_the_manifest_checksum_is_the_documented_one_and_ignores_layout(tiny_int8, tmp_path):
    manifest = manifest_of(tiny_int8)
    assert manifest["format"] == 2 and manifest["manifest_sha256"] == documented_checksum(manifest)
    relaid = rezip(tiny_int8, tmp_path / "relaid.nvm", manifest=dict(reversed(manifest.items())))  # other bytes, same content
    assert read_bundle(relaid).manifest == read_bundle(tiny_int8).manifest


@pytest.mark.parametrize("change", [{"format": 1}, {"manifest_sha256": ""}, {"manifest_sha256": None}])
def test_the_manifest_checksum_cannot_be_switched_off(tiny_int8, tmp_path, change):
    """Claiming format 1 while keeping the checksum, or blanking it, is an edit like any other."""
    bad = rezip(tiny_int8, tmp_path / "bad.nvm", manifest=manifest_of(tiny_int8) | change)
    with pytest.raises(BundleError, match=r"bad\.nvm: manifest\.json"):
        read_bundle(bad)


def test_a_format_2_manifest_without_its_checksum_is_refused(tiny_int8, tmp_path):
    manifest = manifest_of(tiny_int8)
    del manifest["manifest_sha256"]
    with pytest.raises(BundleError, match=r"bad\.nvm: manifest\.json: missing key 'manifest_sha256'"):
        read_bundle(rezip(tiny_int8, tmp_path / "bad.nvm", manifest=manifest))


# -- format 1: bundles written before manifest_sha256 ---------------------------------------------------

def test_a_format_1_bundle_still_loads_with_a_warning(tiny_int8, tmp_path, caplog):
    old = format_1(tiny_int8, tmp_path / "old.nvm")
    with caplog.at_level(logging.WARNING, logger="nv.model"):
        model = load_model(old)
    assert model.manifest.format == 1 and model.manifest.manifest_sha256 == ""
    assert model.manifest.labels == ("mining", "not_mining") and model.identity["sha256"] == read_bundle(tiny_int8).manifest.model_sha256
    assert [r.getMessage() for r in caplog.records] == [
        f"{old}: {FORMAT_1_WARNING}, so an edit to it would go unnoticed; get a format-2 copy of the bundle "
        "(nv-convert writes one)"]
    caplog.clear()  # said once per bundle: `nv-edge run` loads it in the config check and again in its pipeline
    with caplog.at_level(logging.WARNING, logger="nv.model"):
        load_model(old)
    assert caplog.records == []
    # What the warning is about: an edit to a format-1 manifest goes unnoticed. Its model is still checked.
    assert read_bundle(tampered(old, tmp_path / "old-edited.nvm", "swapped labels")).manifest.labels == ("not_mining", "mining")
    damaged = bytearray(read_bundle(old).model_bytes)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(BundleError, match="model checksum mismatch"):
        read_bundle(rezip(old, tmp_path / "old-damaged.nvm", model=bytes(damaged)))


def test_write_bundle_turns_a_format_1_bundle_into_format_2_with_the_same_model(tiny_int8, tmp_path, caplog):
    old = read_bundle(format_1(tiny_int8, tmp_path / "old.nvm"))
    new = tmp_path / "new.nvm"
    written = write_bundle(new, old.model_bytes, old.manifest)
    caplog.clear()
    again = read_bundle(new)
    assert caplog.records == []
    assert again.manifest == written and again.manifest.format == 2
    assert again.model_bytes == old.model_bytes and again.manifest.model_sha256 == old.manifest.model_sha256
    assert replace(again.manifest, format=1, manifest_sha256="") == old.manifest


# -- the manifest against the model's tensors ------------------------------------------------------------

@pytest.mark.parametrize("how", list(MISMATCHES))
def test_a_manifest_that_promises_other_tensors_is_refused_at_load(tmp_path, how):
    """Both checksums right (write_bundle made it), so read_bundle takes it; the interpreter's tensors do not."""
    wrong = mismatched(SHIPPED, tmp_path / "wrong.nvm", how)
    read_bundle(wrong)
    with pytest.raises(BundleError, match=r"wrong\.nvm: model and manifest disagree: " + MISMATCHES[how][1]):
        load_model(wrong)


def test_load_model_refuses_a_model_of_another_task(tiny_int8, tiny_audio_models):
    with pytest.raises(BundleError, match=f"{tiny_int8}: is an image model, not an audio model; pass an audio model bundle"):
        load_model(tiny_int8, task="audio")
    audio = tiny_audio_models["int8"]
    with pytest.raises(BundleError, match=f"{audio}: is an audio model, not an image model; pass an image model bundle"):
        load_model(audio, task="image")
    assert load_model(audio, task="audio").manifest.task == "audio"


def test_a_bundle_using_groups_events_or_tta_says_it_needs_runtime_0_2(tmp_path):
    """0.1.0 ignores groups, event rules and input.tta: it would load such a bundle and decide otherwise."""
    source = read_bundle(Path(__file__).resolve().parents[3] / "models" / "mining-s2" / "mining-s2.nvm")
    plain = replace(source.manifest, groups=None, events=None, input=replace(source.manifest.input, tta=1), min_runtime="0.1.0")
    assert write_bundle(tmp_path / "a.nvm", source.model_bytes, plain).min_runtime == "0.1.0"
    for changed in (replace(plain, input=replace(plain.input, tta=4)), replace(plain, groups={"mining": ("mining",)})):
        assert write_bundle(tmp_path / "b.nvm", source.model_bytes, changed).min_runtime == "0.2.0"
        assert read_bundle(tmp_path / "b.nvm").manifest.min_runtime == "0.2.0"
    assert write_bundle(tmp_path / "c.nvm", source.model_bytes, replace(plain, min_runtime="0.1.5")).min_runtime == "0.1.5"
