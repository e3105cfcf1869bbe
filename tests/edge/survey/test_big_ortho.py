"""An orthomosaic larger than the memory a scan is given: 20,000 x 20,000 px of RGB (1.2 GB decoded),
scanned in windows under an address-space limit of 700 MiB; and a scan killed midway that resumes from
its state file and writes the same GeoJSON, classifying only what was left."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from orthos import UTM_21S, UTM_ORIGIN, north_up, write_ortho

ROOT = Path(__file__).resolve().parents[3]
LIMITED = Path(__file__).resolve().parent / "limited.py"
SIDE = 20_000  # pixels: 3 bytes each, 1.2 GB decoded
LIMIT_MB = 700  # address space for the scan and for each of its workers
TILES = 32 * 32  # the coarse model's 320 m tiles at 0.5 m/px are 640 px: 20,000 px in 32 of them


@pytest.fixture(scope="module")
def big_ortho(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.tif"
    return write_ortho(path, SIDE, SIDE, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 0.5, 0.5),
                       red_boxes=[(1280, 1280, 3200, 2560), (15000, 15000, 15700, 15700)])


def start(*args, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(LIMITED), str(LIMIT_MB), *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)


def scan_args(ortho: Path, model: Path, out: Path, workers: int) -> tuple:
    return ("scan", ortho, "--model", model, "--out", out, "--workers", workers, "--device", "drone-1")


@pytest.fixture(scope="module")
def reference(big_ortho, coarse_scan_model, tmp_path_factory) -> tuple[Path, str]:
    """One whole scan on two worker processes, under the limit."""
    out = tmp_path_factory.mktemp("ref") / "big.geojson"
    log = out.with_suffix(".log")
    proc = start(*scan_args(big_ortho, coarse_scan_model, out, 2), log=log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    return out, log.read_text()


def test_the_limit_is_smaller_than_the_ortho(big_ortho):
    proc = subprocess.run([sys.executable, str(LIMITED), str(LIMIT_MB), "--read-whole", str(big_ortho)],
                          check=False, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert (proc.returncode, proc.stderr.strip()) == (3, "MemoryError"), "the ortho fits in the limit: it proves nothing"


def test_an_ortho_larger_than_memory_is_scanned_in_windows(reference):
    out, log = reference
    # The proof is the address-space limit the scan ran under (LIMIT_MB, which reading the whole ortho
    # exceeds: the test above); how much of it the scan used is a figure for bench/scan.py, not an assert.
    usage = json.loads(log.strip().splitlines()[-1])
    assert set(usage) == {"self_mb", "children_mb"}
    assert f"{TILES} tiles ({TILES} classified now, 0 from the state file" in log
    areas = [f for f in json.loads(out.read_text())["features"] if f["properties"]["kind"] == "area"]
    assert len(areas) == 2


def test_a_killed_scan_resumes_and_writes_the_same_geojson(reference, big_ortho, coarse_scan_model, tmp_path):
    out = tmp_path / "big.geojson"
    state = out.with_name(out.name + ".scan.sqlite")
    first = start(*scan_args(big_ortho, coarse_scan_model, out, 1), log=tmp_path / "first.log")
    deadline = time.monotonic() + 300
    done = 0
    while done < 8 and first.poll() is None and time.monotonic() < deadline:  # 8 of its 64 chunks
        time.sleep(0.05)
        if state.exists():
            try:
                with sqlite3.connect(state, timeout=1) as db:
                    done = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            except sqlite3.OperationalError:  # not created yet
                pass
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert not out.exists(), "the scan ended before it could be killed"
    second = start(*scan_args(big_ortho, coarse_scan_model, out, 1), log=tmp_path / "second.log")
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    now, saved = map(int, re.search(r"\((\d+) classified now, (\d+) from the state file", log).groups())
    assert saved >= 8 * 16 and now == TILES - saved  # only what the killed run had not finished
    assert out.read_text() == reference[0].read_text()
