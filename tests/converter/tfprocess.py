"""Converter runs for the tests: each in its own process (it imports TensorFlow, which the test process
must not), with the project and these test helpers importable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + str(ROOT / "tests" / "converter"), TF_CPP_MIN_LOG_LEVEL="3")


def nv_convert(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    """`nv-convert ARGS...` in a fresh process; its output is captured as text."""
    return run_python("-m", "converter.cli", *args, timeout=timeout)


def run_python(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env(), timeout=timeout)
