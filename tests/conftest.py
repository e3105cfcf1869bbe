"""Shared fixtures: tiny real TFLite models, built once per session in a TensorFlow subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("models")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "build_models.py"), str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, f"building test models failed:\n{proc.stderr[-3000:]}"
    models = {dtype: out / f"tiny-{dtype}.nvm" for dtype in ("float32", "int8", "uint8")}
    models |= {f"audio-{dtype}": out / f"tiny-audio-{dtype}.nvm" for dtype in ("float32", "int8")}
    return models


@pytest.fixture(scope="session")
def tiny_audio_models(tiny_models) -> dict[str, Path]:
    """The tiny audio model (tests/build_models.py): "engine" for a low hum, "background" for hiss."""
    return {dtype: tiny_models[f"audio-{dtype}"] for dtype in ("float32", "int8")}


GROUPED_EVENTS = {"rule": "mean", "window": 3, "hysteresis": 0.1, "cooldown_s": 0}


@pytest.fixture(scope="session")
def tiny_grouped_audio(tiny_audio_models, tmp_path_factory) -> Path:
    """The tiny audio model (int8) under a manifest that decides on an alert group, "machinery" (its
    `engine` alone), and recommends events on the rolling mean of 3 windows (GROUPED_EVENTS)."""
    from build_models import rebundle

    return rebundle(tiny_audio_models["int8"], tmp_path_factory.mktemp("grouped") / "tiny-grouped.nvm",
                    name="tiny-grouped", groups={"machinery": ("engine",)}, thresholds={"machinery": 0.6},
                    events=GROUPED_EVENTS)


@pytest.fixture(scope="session")
def tiny_int8(tiny_models) -> Path:
    """The tiny int8 model without a ground resolution: it takes frames as they are (a camera model)."""
    return tiny_models["int8"]


SCALED_M = 10.0  # tiny_scaled learnt 16-px tiles at 10 m/px: 160 m of ground a tile


@pytest.fixture(scope="session")
def tiny_scaled(tiny_int8, tmp_path_factory) -> Path:
    """The tiny int8 model under a manifest that says it learnt 10 m/px (16-px tiles of 160 m)."""
    from dataclasses import replace

    from build_models import rebundle

    from edge.model.bundle import read_bundle

    trained = read_bundle(tiny_int8).manifest.trained_on
    return rebundle(tiny_int8, tmp_path_factory.mktemp("scaled") / "tiny-10m.nvm", name="tiny-10m",
                    trained_on=replace(trained, ground_resolution_m=SCALED_M))


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_test_process():
    yield
    assert "tensorflow" not in sys.modules, "a test imported TensorFlow: tflite-runtime breaks after that; use a subprocess"

