"""kill -9 at every step between claiming a file and marking it done: after restarts, every file
is in the outbox exactly once, under one id, and none is missing. A real subprocess
(`process_folder.py`) does the service's writes in the service's order and SIGKILLs itself."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from imagefiles import RED, encode, solid

SCRIPT = Path(__file__).with_name("process_folder.py")
# (step, item number in that run): every step of the path, at the first item and mid-batch
KILLS = [("claimed", 1), ("put", 2), ("flushed", 3), ("done", 2), ("flushed", 1), ("claimed", 4)]


def run(folder: Path, state: Path, after: str, step: str = "never", at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(folder), str(state), after, step, str(at)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("after", ["keep", "move"])
def test_every_file_reaches_the_outbox_exactly_once_across_sigkills(tmp_path, after):
    folder, state = tmp_path / "incoming", tmp_path / "state"
    folder.mkdir()
    names = [f"frame_{n:02d}.jpg" for n in range(14)] + ["broken.jpg"]
    for n, name in enumerate(names):
        path = folder / name
        path.write_bytes(b"\xff\xd8\xff truncated" if name == "broken.jpg" else encode(solid(RED, (20 + n, 16)), "JPEG"))

    for step, at in KILLS:
        proc = run(folder, state, after, step, at)
        assert proc.returncode == -signal.SIGKILL, f"expected a SIGKILL at {step} #{at}:\n{proc.stderr}"
    proc = run(folder, state, after)
    assert proc.returncode == 0, proc.stderr

    with sqlite3.connect(state / "outbox.db") as db:
        rows = [(id_, json.loads(payload)) for id_, payload in db.execute("SELECT id, payload FROM outbox ORDER BY seq")]
    sources = [Path(record["source"]).name for _, record in rows]
    assert sorted(sources) == sorted(names), "a file is missing from the outbox, or is there twice"
    assert len({id_ for id_, _ in rows}) == len(names)
    assert all(record["id"] == id_ for id_, record in rows)
    assert [record["error"] for _, record in rows if "error" in record] != []  # the broken file is done too
    with sqlite3.connect(state / "sources.db") as db:
        ledger = dict(db.execute("SELECT path, record_id FROM files WHERE done IS NOT NULL"))
    assert ledger == {Path(record["source"]).name: id_ for id_, record in rows}
    if after == "move":
        assert sorted(p.name for p in (state / "done").iterdir()) == sorted(names)  # no "-1" second copies
        assert list(folder.iterdir()) == []
    else:
        assert sorted(p.name for p in folder.iterdir()) == sorted(names)
