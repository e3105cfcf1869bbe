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
    return tiny_models["int8"]


@pytest.fixture(autouse=True, scope="session")
def _no_tensorflow_in_test_process():
    yield
    assert "tensorflow" not in sys.modules, "a test imported TensorFlow: tflite-runtime breaks after that; use a subprocess"

