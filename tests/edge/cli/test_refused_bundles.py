"""Bundles that every command refuses alike, as a user runs them (real processes, the shipped models and
samples): a manifest edited by hand, a manifest that promises other tensors than its model has, a model
of the other task. `config check` refuses what `nv-edge run` would, because both load models with
`edge.model.loaded.load_model`; a format-1 bundle still works everywhere, with a warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bundlefiles import MISMATCHES, TAMPERINGS, format_1, mismatched, tampered

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "models" / "mining-s2" / "mining-s2.nvm"
SHIPPED_AUDIO = ROOT / "models" / "mining-audio" / "mining-audio.nvm"
TILE = ROOT / "samples" / "tiles" / "mining__g7d73574b__0.png"
CLIP = ROOT / "samples" / "audio" / "chainsaw_169127.wav"

EDITED = r"manifest\.json was changed after the bundle was made .*copy the bundle again from its release"
REFUSED = {how: EDITED for how in TAMPERINGS} | {how: "model and manifest disagree: " + message
                                                 for how, (_, message) in MISMATCHES.items()}


def nv_edge(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NV_DEVICE="unit-7")
    env.pop("NV_MODEL", None)
    env.pop("NV_AUDIO_MODEL", None)
    return subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def refused_bundle(tmp_path: Path, how: str) -> Path:
    bundle = tmp_path / "mining-s2.nvm"
    return tampered(SHIPPED, bundle, how) if how in TAMPERINGS else mismatched(SHIPPED, bundle, how)


def unit_config(tmp_path: Path, model: Path) -> Path:
    (tmp_path / "incoming").mkdir()
    path = tmp_path / "edge.toml"
    path.write_text(f'[device]\nid = "unit-07"\nstate_dir = "{tmp_path}"\n'
                    f'[image]\nmodel = "{model}"\n[[image.sources]]\ntype = "folder"\npath = "{tmp_path / "incoming"}"\n')
    return path


@pytest.mark.parametrize("how", list(REFUSED))
def test_classify_refuses_the_bundle(tmp_path, how):
    bundle = refused_bundle(tmp_path, how)
    proc = nv_edge("classify", TILE, "--model", bundle)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == "", "no record from a bundle that cannot be trusted"
    assert re.search(f"nv-edge: error: {re.escape(str(bundle))}: {REFUSED[how]}", proc.stderr), proc.stderr


@pytest.mark.parametrize("how", list(REFUSED))
def test_config_check_refuses_the_bundle(tmp_path, how):
    bundle = refused_bundle(tmp_path, how)
    config = unit_config(tmp_path, bundle)
    proc = nv_edge("config", "check", config)
    assert proc.returncode == 1, proc.stdout
    assert not proc.stdout.startswith("OK")
    prefix = re.escape(f"nv-edge config check: {config}: [image.model]: {bundle}: ")
    assert re.search(prefix + REFUSED[how], proc.stderr), proc.stderr


def test_the_untouched_shipped_model_passes_both(tmp_path):
    """The control: the same commands on the shipped bundle itself."""
    config = unit_config(tmp_path, SHIPPED)
    proc = nv_edge("config", "check", config)
    assert proc.returncode == 0 and proc.stdout.startswith(f"OK: {config}\n"), proc.stderr
    proc = nv_edge("classify", TILE, "--model", SHIPPED)
    assert proc.returncode == 0 and '"label":"mining"' in proc.stdout, proc.stderr


def test_classify_refuses_an_audio_model_for_frames():
    proc = nv_edge("classify", TILE, "--model", SHIPPED_AUDIO)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"nv-edge: error: {SHIPPED_AUDIO}: is an audio model, not an image model; pass an image model bundle" in proc.stderr


def test_classify_refuses_an_image_model_for_clips():
    proc = nv_edge("classify", CLIP, "--audio-model", SHIPPED)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"nv-edge: error: {SHIPPED}: is an image model, not an audio model; pass an audio model bundle" in proc.stderr


def test_a_format_1_bundle_still_works_with_a_warning(tmp_path):
    old = format_1(SHIPPED, tmp_path / "old.nvm")
    warning = f"{old}: bundle format 1: manifest.json (labels, alert labels, thresholds) has no checksum"
    proc = nv_edge("classify", TILE, "--model", old)
    assert proc.returncode == 0 and '"label":"mining"' in proc.stdout, proc.stderr
    assert warning in proc.stderr
    config = unit_config(tmp_path, old)
    proc = nv_edge("config", "check", config)
    assert proc.returncode == 0 and proc.stdout.startswith(f"OK: {config}\n"), proc.stderr
    assert warning in proc.stderr
