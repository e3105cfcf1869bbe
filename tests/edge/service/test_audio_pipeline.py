"""The audio pipeline of `nv-edge run` in process, on a watched folder of clips: it decides on the
bundle's alert groups with the bundle's event rules (a config table over them), and writes the score
log it is asked for."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from audiofiles import scripted, write_wav

from edge.config import load_config
from edge.decisions.events import EventRules
from edge.delivery.outbox import Outbox
from edge.service.audio_pipeline import AudioPipeline
from edge.service.context import ClockWatch, Context, Counters
from edge.service.liveness import Liveness


def pipeline(tmp_path: Path, model: Path, keys: str = "") -> AudioPipeline:
    (tmp_path / "clips").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "unit-9"
state_dir = "{tmp_path / 'state'}"

[audio]
model = "{model}"
{keys}

[audio.source]
type = "files"
path = "{tmp_path / 'clips'}"
settle_s = 0
poll_s = 0.05
""")
    cfg = load_config(config)
    ctx = Context(cfg=cfg, outbox=Outbox(cfg.outbox.path), liveness=Liveness(60), counters=Counters(),
                  clock=ClockWatch(probe=lambda: {"synchronized": True}), stop=threading.Event())
    return AudioPipeline(ctx)


def classify_one_clip(p: AudioPipeline, tmp_path: Path) -> list[dict]:
    write_wav(tmp_path / "clips" / "river.wav", scripted(("hiss", 5), ("hum", 5), ("hiss", 5)))
    source = p.sources[0]
    for _ in range(50):
        items = source.poll()
        if items:
            break
        time.sleep(0.05)
    (item,) = items
    p._clip(source, item)
    p.ctx.outbox.close()
    if p.score_log is not None:
        p.score_log.close()
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as con:
        return [json.loads(payload) for (payload,) in con.execute("SELECT payload FROM outbox ORDER BY seq")]


def test_the_pipeline_takes_the_bundles_groups_and_rules_and_logs_scores(tmp_path, tiny_grouped_audio):
    p = pipeline(tmp_path, tiny_grouped_audio, f'score_log = "{tmp_path / "scores.jsonl"}"\nscore_log_hours = 2')
    assert p.classifier.options.events == EventRules(rule="mean", window=3, hysteresis=0.1, cooldown_s=0)
    assert p.classifier.options.thresholds == {"machinery": 0.6}
    records = classify_one_clip(p, tmp_path)
    assert [(r["label"], r["event"]["phase"]) for r in records] == [("machinery", "start"), ("machinery", "end")]
    assert records[0]["event"]["rules"]["rule"] == "mean" and records[0]["group_scores"]["machinery"] > 0.9
    header, *rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert header["groups"] == {"machinery": ["engine"]} and len(rows) == 30, "every window of the 15 s clip"
    assert rows[0]["time"] < rows[-1]["time"] and set(rows[0]) == {"time", "rms_dbfs", "scores", "groups"}


def test_a_config_table_wins_key_by_key_and_older_bundles_keep_the_defaults(tmp_path, tiny_grouped_audio,
                                                                            tiny_audio_models):
    p = pipeline(tmp_path / "a", tiny_grouped_audio, "events = { window = 6, cooldown_s = 5 }")
    assert p.classifier.options.events == EventRules(rule="mean", window=6, hysteresis=0.1, cooldown_s=5)
    q = pipeline(tmp_path / "b", tiny_audio_models["int8"], 'events = { rule = "k_of_n" }')
    assert q.classifier.options.events == EventRules()
    old = pipeline(tmp_path / "c", tiny_audio_models["int8"])
    assert old.classifier.options.events == EventRules() and old.classifier.options.thresholds == {"engine": 0.6}
    records = classify_one_clip(old, tmp_path / "c")
    assert [(r["label"], r["event"]["phase"]) for r in records] == [("engine", "start"), ("engine", "end")]
    assert "group_scores" not in records[0] and "rule" not in records[0]["event"]["rules"]


def test_a_score_log_that_cannot_be_written_is_reported_and_left_out(tmp_path, tiny_grouped_audio, caplog):
    (tmp_path / "scores.jsonl").write_text("not a score log\n")
    p = pipeline(tmp_path, tiny_grouped_audio, f'score_log = "{tmp_path / "scores.jsonl"}"')
    assert p.score_log is None and "no score log" in caplog.text and "is not a score log" in caplog.text
    assert [r["event"]["phase"] for r in classify_one_clip(p, tmp_path)] == ["start", "end"], "detection goes on"
