"""The `nv-edge` dispatcher as a user meets it, in real processes: a reader that goes away (`| head -1`)
ends the command quietly, and only the module of the command that runs is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from imagefiles import RED, encode, solid

ROOT = Path(__file__).resolve().parents[3]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), NV_DEVICE="unit-7")


def into_closed_pipe(*args) -> subprocess.CompletedProcess:
    """Run nv-edge with stdout a pipe whose reader has already gone: its first write fails (EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "edge.cli", *map(str, args)], check=False, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=ENV, timeout=300)
    finally:
        os.close(write_end)


def test_info_into_a_closed_pipe_exits_141_without_a_traceback(tiny_int8):
    proc = into_closed_pipe("info", tiny_int8)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_classify_into_a_closed_pipe_stops_at_the_first_record(tiny_int8, tmp_path):
    frames = []
    for i in range(3):
        frames.append(tmp_path / f"f{i}.png")
        frames[-1].write_bytes(encode(solid(RED, (32, 32))))
    proc = into_closed_pipe("classify", "--model", tiny_int8, *frames)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_into_an_open_pipe_all_is_written_and_the_exit_is_0(tiny_int8):
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "info", str(tiny_int8)], check=False, capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("{") and proc.stderr == ""


def test_only_the_command_that_runs_is_imported(tmp_path):
    """`nv-edge run` (here with a config it cannot start from) loads the service, not the other commands."""
    code = ("import sys; from edge.cli.main import main; code = main(['run', '--config', sys.argv[1]]); "
            "print(code, ' '.join(sorted(m for m in sys.modules if m.startswith(('edge.',)))))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.toml")], check=False, capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    code, *loaded = proc.stdout.splitlines()[-1].split()
    assert code == "1" and "cannot start" in proc.stdout  # it did run, as far as the config (the journal: stdout)
    assert "edge.cli.run" in loaded and "edge.service.run" in loaded
    others = [m for m in loaded if m.startswith(("edge.cli.scan", "edge.survey", "edge.cli.doctor", "edge.doctor",
                                                 "edge.cli.listen", "edge.cli.classify", "edge.cli.publish"))]
    assert not others


def test_help_still_lists_every_command_and_a_command_its_arguments():
    top = subprocess.run([sys.executable, "-m", "edge.cli", "--help"], check=False, capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert top.returncode == 0
    for name in ("classify", "info", "publish", "config", "doctor", "listen", "run", "scan"):
        assert name in top.stdout
    scan = subprocess.run([sys.executable, "-m", "edge.cli", "scan", "--help"], check=False, capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert scan.returncode == 0 and "--workers" in scan.stdout
