"""edge/audio/score_log.py: the lines a unit logs for calibration, its header, and its limits in time
and size, with the tiny audio models (tests/build_models.py) and a clock the test moves."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from edge.audio.score_log import ScoreLog, ScoreLogError
from edge.model.loaded import load_model

T0 = datetime(2026, 5, 1, 16, 0, 0, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self) -> float:
        return self.now


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def window(i: int) -> tuple:
    return datetime.fromtimestamp(T0 + i / 2, timezone.utc), -23.456, np.array([0.25, 0.75], dtype=np.float32)


def test_a_header_then_one_compact_line_per_window(tmp_path, tiny_grouped_audio):
    model = load_model(tiny_grouped_audio)
    log = ScoreLog(tmp_path / "scores.jsonl", model, hours=2, hop_s=0.5, clock=Clock())
    assert all(log.add(*window(i)) for i in range(3))
    log.add(datetime.fromtimestamp(T0 + 2, timezone.utc), float("-inf"), np.array([0.5, 0.5]))  # digital silence
    log.close()
    header, *rows = lines(tmp_path / "scores.jsonl")
    assert header == {"score_log": 1, "model": model.identity, "labels": ["background", "engine"],
                      "groups": {"machinery": ["engine"]}, "hop_s": 0.5,
                      "started": "2026-05-01T16:00:00.000Z", "until": "2026-05-01T18:00:00.000Z"}
    assert rows[1] == {"time": "2026-05-01T16:00:00.500Z", "rms_dbfs": -23.5, "scores": {"background": 0.25, "engine": 0.75},
                       "groups": {"machinery": 0.75}}
    assert rows[3]["rms_dbfs"] == -200.0 and len(rows) == log.lines == 4
    assert " " not in (tmp_path / "scores.jsonl").read_text().splitlines()[1], "compact"


def test_it_stops_at_its_size_limit(tmp_path, tiny_audio_models, caplog):
    log = ScoreLog(tmp_path / "scores.jsonl", load_model(tiny_audio_models["int8"]), max_bytes=1000, clock=Clock())
    written = [log.add(*window(i)) for i in range(20)]
    assert written == [True] * log.lines + [False] * (20 - log.lines) and 3 <= log.lines < 20
    assert (tmp_path / "scores.jsonl").stat().st_size <= 1000
    assert "reached its limit" in log.stopped and "score log" in caplog.text
    assert lines(tmp_path / "scores.jsonl")[1]["groups"] == {"engine": 0.75}, "without groups: one per alert label"


def test_it_stops_after_its_hours_and_a_restart_does_not_start_them_again(tmp_path, tiny_audio_models):
    model, clock, path = load_model(tiny_audio_models["int8"]), Clock(), tmp_path / "scores.jsonl"
    log = ScoreLog(path, model, hours=1, clock=clock)
    assert log.add(*window(0))
    log.close()
    clock.now += 1800  # the service restarts half an hour later: the same file, the same end
    again = ScoreLog(path, model, hours=24, clock=clock)
    assert again.until == T0 + 3600 and again.add(*window(1))
    clock.now = T0 + 3600
    assert not again.add(*window(2)) and "its time was up at 2026-05-01T17:00:00.000Z" in again.stopped
    late = ScoreLog(path, model, clock=clock)
    assert "move the file away to log again" in late.stopped and not late.add(*window(3))
    header, *rows = lines(path)
    assert header["until"] == "2026-05-01T17:00:00.000Z" and len(rows) == 2


def test_a_file_it_cannot_use_is_refused_with_what_to_do(tmp_path, tiny_audio_models, tiny_grouped_audio):
    clock = Clock()
    ScoreLog(tmp_path / "other.jsonl", load_model(tiny_grouped_audio), clock=clock).close()
    model = load_model(tiny_audio_models["int8"])
    with pytest.raises(ScoreLogError, match=r"other.jsonl: holds the scores of another model \(tiny-grouped\); move it away"):
        ScoreLog(tmp_path / "other.jsonl", model, clock=clock)
    (tmp_path / "notes.txt").write_text("field notes\n")
    with pytest.raises(ScoreLogError, match="notes.txt: is not a score log of format 1"):
        ScoreLog(tmp_path / "notes.txt", model, clock=clock)
    with pytest.raises(ScoreLogError, match="cannot write the score log .*give a path in a folder this user can write"):
        ScoreLog(tmp_path / "no" / "such" / "scores.jsonl", model, clock=clock)
    with pytest.raises(ScoreLogError, match="needs hours > 0"):
        ScoreLog(tmp_path / "x.jsonl", model, hours=0)
