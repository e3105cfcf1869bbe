"""The config's [audio] and [image] sections over a bundle's alert groups and recommended event rules,
and the audio score log's keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from build_models import rebundle

from edge.config import ConfigError, load_config
from edge.decisions.events import EventRules


def audio(tmp_path: Path, model: Path, keys: str = "") -> Path:
    (tmp_path / "clips").mkdir(exist_ok=True)
    (tmp_path / "state").mkdir(exist_ok=True)
    path = tmp_path / "edge.toml"
    path.write_text(f'[device]\nid = "unit-9"\nstate_dir = "{tmp_path / "state"}"\n\n[audio]\nmodel = "{model}"\n{keys}\n'
                    f'[audio.source]\ntype = "files"\npath = "{tmp_path / "clips"}"\n')
    return path


def test_the_score_log_keys(tmp_path, tiny_grouped_audio):
    cfg = load_config(audio(tmp_path, tiny_grouped_audio, 'score_log = "scores.jsonl"'))
    assert (cfg.audio.score_log, cfg.audio.score_log_hours, cfg.audio.score_log_mb) == (
        tmp_path / "state" / "scores.jsonl", 24.0, 64.0), "relative to the state dir, like the outbox"
    assert load_config(audio(tmp_path, tiny_grouped_audio)).audio.score_log is None
    for keys, message in [("score_log_hours = 2", r"\[audio.score_log_hours\]: given without audio.score_log"),
                          (f'score_log = "{tmp_path}/nowhere/s.jsonl"', r"\[audio.score_log\]: .*nowhere: no such folder"),
                          ('score_log = "s.jsonl"\nscore_log_hours = 0', r"\[audio.score_log_hours\]: 0 is out of range")]:
        with pytest.raises(ConfigError, match=message):
            load_config(audio(tmp_path, tiny_grouped_audio, keys))


def test_thresholds_and_rules_name_what_is_wrong_and_where(tmp_path, tiny_grouped_audio, tiny_audio_models):
    with pytest.raises(ConfigError, match=r"\[audio.thresholds.engine\]: 'engine' is decided in its group, not alone: .*"
                                          r"expected an alert group of tiny-grouped"):
        load_config(audio(tmp_path, tiny_grouped_audio, "thresholds = { engine = 0.5 }"))
    assert load_config(audio(tmp_path, tiny_grouped_audio, "thresholds = { machinery = 0.5 }")).audio.resolved_thresholds() \
        == {"machinery": 0.5}
    with pytest.raises(ConfigError, match=r"\[audio.events\]: rule must be one of 'k_of_n', 'mean', got 'median'"):
        load_config(audio(tmp_path, tiny_grouped_audio, 'events = { rule = "median" }'))
    broken = rebundle(tiny_audio_models["int8"], tmp_path / "broken.nvm", events={"rule": "mean", "window": 0})
    with pytest.raises(ConfigError, match=r"broken.nvm: manifest.json: events: window must be at least 1 observation"):
        load_config(audio(tmp_path, broken))


def test_image_events_stay_opt_in_and_take_the_bundles_rules(tmp_path, tiny_int8):
    model = rebundle(tiny_int8, tmp_path / "image.nvm", events={"k": 2, "n": 4, "hysteresis": 0.05})
    (tmp_path / "in").mkdir()

    def image(keys: str) -> EventRules | None:
        path = tmp_path / "edge.toml"
        path.write_text(f'[device]\nid = "unit-9"\n[image]\nmodel = "{model}"\n{keys}\n'
                        f'[[image.sources]]\ntype = "folder"\npath = "{tmp_path / "in"}"\n')
        return load_config(path).image.events

    assert image("") is None, "whether frames are a sequence is the site's choice"
    assert image("events = {}") == EventRules(k=2, n=4, hysteresis=0.05, max_gap_s=None)
    assert image("events = { n = 2, max_gap_s = 600 }") == EventRules(k=2, n=2, hysteresis=0.05, max_gap_s=600)


def test_config_check_says_which_groups_and_rules_won(tmp_path, tiny_grouped_audio, capsys):
    from edge.cli.main import main

    path = audio(tmp_path, tiny_grouped_audio, 'events = { window = 6 }\nscore_log = "scores.jsonl"')
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "alert at machinery 0.6 (groups: machinery = engine)" in out
    assert "events the mean of the last 6 observations at the threshold (mean; hysteresis 0.1, cooldown 0 s)" in out
    assert f"scores to {tmp_path / 'state' / 'scores.jsonl'} for 24 h (at most 64 MB)" in out
