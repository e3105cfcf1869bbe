"""`nv-edge classify` on audio files and `nv-edge listen`, in process (`edge.cli.main`), with the tiny
audio model and, for `listen`, a fake `sounddevice` (tests/fake_sounddevice.py) playing real samples."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from audiofiles import RATE, hum, scripted, write_wav
from fake_sounddevice import FakeDevice, FakeSoundDevice
from imagefiles import GREEN, RED, encode, solid

from edge.cli import listen as listen_command
from edge.cli.main import main
from edge.delivery.outbox import Outbox
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"),
                                            format_checker=jsonschema.FormatChecker())


def run(capsys, *args) -> tuple[int, list[dict], str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    for record in records:
        VALIDATOR.validate(record)
    return code, records, err


@pytest.fixture(autouse=True)
def _unit(monkeypatch):
    monkeypatch.setenv("NV_DEVICE", "unit-7")
    monkeypatch.delenv("NV_AUDIO_MODEL", raising=False)
    monkeypatch.delenv("NV_MODEL", raising=False)


@pytest.fixture
def card(tmp_path) -> Path:
    """An SD card dump: two clips and two frames."""
    d = tmp_path / "card"
    (d / "sub").mkdir(parents=True)
    write_wav(d / "a_hum.wav", hum(2.0))
    write_wav(d / "sub" / "b_script.wav", scripted(("hiss", 5), ("hum", 5), ("hiss", 5)))
    (d / "c_red.png").write_bytes(encode(solid(RED), "PNG"))
    (d / "d_green.png").write_bytes(encode(solid(GREEN), "PNG"))
    return d


# -- nv-edge classify on audio files --------------------------------------------------------------

def test_classify_a_clip_one_record_per_window(capsys, tiny_audio_models, card):
    code, records, _ = run(capsys, "classify", card / "a_hum.wav", "--audio-model", tiny_audio_models["int8"])
    assert code == 0 and len(records) == 4
    assert [r["audio"]["offset_s"] for r in records] == [0.0, 0.5, 1.0, 1.02]
    assert all(r["label"] == "engine" and r["alert"] and r["kind"] == "audio" and r["device"] == "unit-7" for r in records)


def test_classify_events_hop_and_threshold(capsys, tiny_audio_models, card):
    clip = card / "sub" / "b_script.wav"
    code, records, _ = run(capsys, "classify", clip, "--audio-model", tiny_audio_models["int8"], "--events")
    assert code == 0 and [r["event"]["phase"] for r in records] == ["start", "end"]
    assert 4.0 <= records[0]["event"]["offset_s"] <= 5.0
    _, windows, _ = run(capsys, "classify", clip, "--audio-model", tiny_audio_models["int8"], "--hop", "1.0")
    assert [r["audio"]["offset_s"] for r in windows][:3] == [0.0, 1.0, 2.0] and len(windows) == 16
    _, strict, _ = run(capsys, "classify", clip, "--audio-model", tiny_audio_models["float32"], "--threshold", "engine=0.99")
    assert all(r["alert"] == (r["scores"]["engine"] >= 0.99) for r in strict)
    assert {r["threshold"] for r in strict if r["label"] == "engine"} == {0.99}
    code = main(["classify", str(clip), "--audio-model", str(tiny_audio_models["int8"]), "--threshold", "mining=0.5"])
    assert code == 2 and "'mining' is not an alert label" in capsys.readouterr().err


def test_classify_a_folder_with_images_and_clips(capsys, tiny_audio_models, tiny_int8, card, tmp_path):
    (card / "torn.wav").write_bytes(b"RIFF\x10\x00")
    code, records, _ = run(capsys, "classify", card, "--audio-model", tiny_audio_models["int8"], "--model", tiny_int8,
                           "--threshold", "mining=0.7", "--threshold", "engine=0.65", "--events", "--outbox",
                           tmp_path / "outbox.db")
    assert code == 0
    by_file = {}
    for r in records:
        by_file.setdefault(Path(r["source"]).name, []).append(r)
    assert list(by_file) == ["a_hum.wav", "c_red.png", "d_green.png", "torn.wav", "b_script.wav"], "walk order"
    assert by_file["c_red.png"][0]["label"] == "mining" and by_file["c_red.png"][0]["threshold"] == 0.7
    assert by_file["d_green.png"][0]["kind"] == "image"
    assert [r["event"]["phase"] for r in by_file["b_script.wav"]] == ["start", "end"]
    assert by_file["b_script.wav"][0]["threshold"] == 0.65
    [torn] = by_file["torn.wav"]
    assert torn["kind"] == "audio" and "truncated WAV header" in torn["error"] and str(card / "torn.wav") in torn["error"]
    with Outbox(tmp_path / "outbox.db") as outbox:
        queued = [json.loads(row.payload) for row in outbox.due(after_seq=0, limit=100, resend_after_s=None)]
    assert [r["id"] for r in queued] == [r["id"] for r in records]


def test_classify_clips_without_an_audio_model(capsys, tiny_int8, card, monkeypatch):
    monkeypatch.setattr(listen_command, "default_audio_model_path", lambda: None)
    code, records, _ = run(capsys, "classify", card, "--model", tiny_int8)
    assert code == 0, "the frames are classified; each clip says why it was not"
    errors = [r for r in records if "error" in r]
    assert len(errors) == 2 and all("no audio model: pass --audio-model PATH" in r["error"] for r in errors)
    assert sum("label" in r for r in records) == 2
    code = main(["classify", str(card / "a_hum.wav"), "--audio-model", str(card / "missing.nvm")])
    assert code == 2 and "no such model bundle" in capsys.readouterr().err


def test_classify_table_shows_offsets(capsys, tiny_audio_models, card):
    assert main(["classify", str(card / "a_hum.wav"), "--audio-model", str(tiny_audio_models["int8"]),
                 "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["source", "label", "score", "alert", "tiles/at"]
    assert "engine" in lines[1] and "YES" in lines[1] and "0.00s" in lines[1] and "dBFS" in lines[1]
    assert "1.02s" in lines[4] or "1.03s" in lines[4]


def test_classify_audio_as_a_user_runs_it(tiny_audio_models, card):
    """A real process: `python -m edge.cli` loads edge.cli as __main__, and listen_command imports it again."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NV_DEVICE="unit-7")
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "classify", str(card / "a_hum.wav"), "--audio-model",
                           str(tiny_audio_models["int8"]), "--events"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["event"]["phase"] for line in proc.stdout.splitlines()] == ["start", "end"]
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "listen", "--list-devices"], capture_output=True,
                          text=True, env=env, timeout=120)
    try:
        import sounddevice  # noqa: F401
    except OSError:
        assert proc.returncode == 1 and "PortAudio is missing: sudo apt install libportaudio2" in proc.stderr
    else:
        assert proc.returncode == 0


# -- nv-edge listen -------------------------------------------------------------------------------

def microphone(monkeypatch, audio: np.ndarray, **kwargs) -> FakeSoundDevice:
    module = FakeSoundDevice([FakeDevice("Built-in (hw:0,0)", 2, 44_100),
                              FakeDevice("USB PnP Sound Device: Audio (hw:1,0)", 1, 48_000, rates=(48_000, 16_000),
                                         audio={RATE: audio})], default=0, **kwargs)
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def test_listen_events_into_the_outbox(capsys, monkeypatch, tiny_audio_models, tmp_path):
    microphone(monkeypatch, scripted(("hiss", 5), ("hum", 5), ("hiss", 5)), pace=10)
    code, records, err = run(capsys, "listen", "--device", "pnp", "--audio-model", tiny_audio_models["int8"],
                             "--duration", "15", "--outbox", tmp_path / "outbox.db", "--unit", "unit-9")
    assert code == 0
    assert [r["event"]["phase"] for r in records] == ["start", "end"], "events only, without --per-window"
    assert all(r["device"] == "unit-9" and r["time_source"] == "received" for r in records)
    assert records[0]["source"] == "microphone:USB PnP Sound Device: Audio (hw:1,0)"
    with Outbox(tmp_path / "outbox.db") as outbox:
        queued = [json.loads(row.payload) for row in outbox.due(after_seq=0, limit=100, resend_after_s=None)]
    assert [r["id"] for r in queued] == [r["id"] for r in records]
    assert "[1] USB PnP Sound Device" in err and "16000 Hz" in err
    assert "29 windows" in err or "dropped (inference behind)" in err
    assert "input overflows" in err and "s of audio lost" in err


def test_listen_per_window_table_and_recordings(capsys, monkeypatch, tiny_audio_models, tmp_path):
    microphone(monkeypatch, scripted(("silence", 2), ("hum", 2)), pace=10)
    code = main(["listen", "--device", "1", "--audio-model", str(tiny_audio_models["float32"]), "--per-window",
                 "--format", "table", "--record-dir", str(tmp_path / "rec")])
    out, err = capsys.readouterr()
    assert code == 0
    rows = out.splitlines()[1:]
    assert rows and all("engine" in row and "YES" in row for row in rows if "dBFS" in row)
    assert any("event start" in row for row in rows) and "event end" in rows[-1], "the open event closes at the end"
    assert "below the RMS gate" in err and "WAV segment(s)" in err
    [segment] = list((tmp_path / "rec").iterdir())
    assert segment.name.endswith("_engine.wav")


def test_sigterm_closes_open_events_and_exits_0(capsys, monkeypatch, tiny_audio_models):
    sent = []

    def terminate(stream):
        if stream.blocks == 60 and not sent:  # 6 s into an endless hum
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    microphone(monkeypatch, hum(3.0), pace=10, loop=True, on_block=terminate)
    before = signal.getsignal(signal.SIGTERM)
    code, records, err = run(capsys, "listen", "--device", "pnp", "--audio-model", tiny_audio_models["int8"])
    assert code == 0 and sent
    assert [r["event"]["phase"] for r in records] == ["start", "end"], "the event open at the stop is ended"
    assert records[1]["event"]["end"] is not None
    assert "windows" in err and "dropped" in err
    assert signal.getsignal(signal.SIGTERM) is before, "handlers restored"


def test_listen_device_problems(capsys, monkeypatch, tiny_audio_models):
    microphone(monkeypatch, hum(1.0))
    assert main(["listen", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "[0] Built-in (hw:0,0) (2 ch, 44100 Hz)" in out and "[1] USB PnP" in out
    assert main(["listen", "--device", "zoom h1", "--audio-model", str(tiny_audio_models["int8"])]) == 1
    err = capsys.readouterr().err
    assert "no input device named like 'zoom h1'" in err and "[1] USB PnP" in err
    monkeypatch.delitem(sys.modules, "sounddevice")
    try:
        import sounddevice  # noqa: F401
    except OSError:
        assert main(["listen", "--audio-model", str(tiny_audio_models["int8"])]) == 1
        assert "PortAudio is missing: sudo apt install libportaudio2" in capsys.readouterr().err


def test_listen_refuses_an_image_model(capsys, monkeypatch, tiny_int8):
    microphone(monkeypatch, hum(1.0))
    assert main(["listen", "--audio-model", str(tiny_int8)]) == 2
    assert "is an image model, not an audio model" in capsys.readouterr().err


# -- the bundle's groups and event rules, the score log --------------------------------------------

def test_classify_follows_the_bundles_groups_and_event_rules(capsys, tiny_grouped_audio, tiny_audio_models, card):
    clip = card / "sub" / "b_script.wav"
    code, events, _ = run(capsys, "classify", clip, "--audio-model", tiny_grouped_audio, "--events")
    assert code == 0 and [r["event"]["phase"] for r in events] == ["start", "end"]
    start = events[0]
    assert (start["label"], start["threshold"], start["model"]["name"]) == ("machinery", 0.6, "tiny-grouped")
    assert start["event"]["rules"] == {"k": 2, "n": 3, "hysteresis": 0.1, "cooldown_s": 0, "rule": "mean", "window": 3}
    assert start["group_scores"] == {"machinery": start["scores"]["engine"]} == {"machinery": start["score"]}
    assert 3.5 <= start["event"]["offset_s"] <= 5.0, "from the first window of the average that reached 0.6"
    _, windows, _ = run(capsys, "classify", clip, "--audio-model", tiny_grouped_audio)
    hot = [r for r in windows if r["alert"]]
    assert hot and all(r["label"] == "machinery" and r["threshold"] == 0.6 and r["group_scores"] == {"machinery": r["score"]}
                       for r in hot)
    _, kofn, _ = run(capsys, "classify", clip, "--audio-model", tiny_grouped_audio, "--event", "rule=k_of_n")
    assert [r["event"]["phase"] for r in kofn] == ["start", "end"], "--event implies --events"
    assert kofn[0]["event"]["rules"] == {"k": 2, "n": 3, "hysteresis": 0.1, "cooldown_s": 0}, "the bundle's other keys kept"
    _, old, _ = run(capsys, "classify", clip, "--audio-model", tiny_audio_models["int8"], "--events")
    assert old[0]["label"] == "engine" and "group_scores" not in old[0], "a bundle without groups: as before"
    assert old[0]["event"]["rules"] == {"k": 2, "n": 3, "hysteresis": 0.1, "cooldown_s": 30.0}
    for option, message in [(("--threshold", "engine=0.5"), "--threshold: 'engine' is decided in its group, not alone: "
                              "set the group's threshold (groups: machinery = engine)"),
                            (("--event", "window=3.5"), "--event: window must be an integer, got 3.5")]:
        assert main(["classify", str(clip), "--audio-model", str(tiny_grouped_audio), *option]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # argparse's own usage error
        main(["classify", str(clip), "--audio-model", str(tiny_grouped_audio), "--event", "windows"])
    assert "expected KEY=VALUE like rule=mean or window=6, got 'windows'" in capsys.readouterr().err


def test_listen_with_the_bundles_rules_and_a_score_log(capsys, monkeypatch, tiny_grouped_audio, tmp_path):
    microphone(monkeypatch, scripted(("hiss", 5), ("hum", 5), ("hiss", 5)), pace=10)
    code, records, err = run(capsys, "listen", "--device", "pnp", "--audio-model", tiny_grouped_audio, "--duration", "15",
                             "--score-log", tmp_path / "scores.jsonl", "--score-log-hours", "0.5")
    assert code == 0 and [r["event"]["phase"] for r in records] == ["start", "end"]
    assert records[0]["label"] == "machinery" and records[0]["event"]["rules"]["rule"] == "mean"
    header, *rows = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert header["groups"] == {"machinery": ["engine"]} and header["hop_s"] == 0.5 and header["model"]["name"] == "tiny-grouped"
    assert len(rows) > 10 and f"{len(rows)} score line(s) added to {tmp_path / 'scores.jsonl'}" in err
    assert all(set(r) == {"time", "rms_dbfs", "scores", "groups"} for r in rows)
    assert max(r["groups"]["machinery"] for r in rows) > 0.9 > min(r["groups"]["machinery"] for r in rows)
    code = main(["listen", "--device", "pnp", "--audio-model", str(tiny_grouped_audio), "--duration", "1",
                 "--score-log", str(tmp_path / "missing" / "scores.jsonl")])
    assert code == 1 and "cannot write the score log" in capsys.readouterr().err
