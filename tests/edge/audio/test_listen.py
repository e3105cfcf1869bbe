"""edge/audio/listen.py: clips and live windows -> scores -> decisions -> events -> records, with the tiny
audio model (tests/build_models.py: low bands over high bands is "engine") and real clips."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from audiofiles import COMPOSITE, RATE, hiss, hum, scripted, silence, write_wav
from build_models import AUDIO_SPEC, tiny_audio_scores

from edge.audio import listen
from edge.audio.listen import AudioClassifier, AudioOptions, LiveSession, classify_clip
from edge.audio.microphone import LiveWindow, hop_samples
from edge.decisions.alerts import resolve_thresholds
from edge.decisions.events import EventRules
from edge.features.logmel import clip_windows, normalise
from edge.model.bundle import BundleError
from edge.model.loaded import load_model
from edge.records.schemas import load_schema

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"),
                                            format_checker=jsonschema.FormatChecker())
MTIME = datetime(2026, 5, 1, 16, 0, 0, tzinfo=timezone.utc)


def classifier(path: Path, **options) -> AudioClassifier:
    model = load_model(path, num_threads=1)
    return AudioClassifier(model, AudioOptions(thresholds=resolve_thresholds(model.manifest), **options))


def clip_file(folder: Path, samples: np.ndarray, name: str = "clip.wav") -> Path:
    path = write_wav(folder / name, samples)
    os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))  # the recorder finished writing at MTIME
    return path


def valid(records: list[dict]) -> list[dict]:
    for record in records:
        VALIDATOR.validate(record)
    return records


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_window_records_of_a_clip(tmp_path, tiny_audio_models, dtype):
    samples = scripted(("hiss", 2), ("hum", 2))
    path = clip_file(tmp_path, samples)
    records = valid(list(classify_clip(classifier(tiny_audio_models[dtype]), path, "unit-7")))

    features, places = clip_windows(samples, AUDIO_SPEC, 0.5)
    assert [r["audio"]["offset_s"] for r in records] == [round(p.offset_s, 3) for p in places]
    assert [r["audio"]["offset_s"] for r in records][:8] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.02]
    start = MTIME - timedelta(seconds=4.0)  # the file's mtime is the end of the recording
    for record, place in zip(records, places):
        assert record["kind"] == "audio" and record["time_source"] == "file-mtime" and record["device"] == "unit-7"
        moment = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        assert abs((moment - start).total_seconds() - place.offset_s) < 0.001
        assert record["audio"]["sample_rate"] == RATE and record["audio"]["duration_s"] == pytest.approx(0.975)
    expected = tiny_audio_scores(normalise(features, AUDIO_SPEC))[:, 1]
    got = np.array([r["scores"]["engine"] for r in records])
    np.testing.assert_allclose(got, expected, atol=1e-3 if dtype == "float32" else 0.03)
    labels = {r["audio"]["offset_s"]: (r["label"], r["alert"]) for r in records}
    assert labels[0.0] == labels[1.0] == ("background", False), "hiss"
    assert labels[2.0] == labels[3.0] == ("engine", True), "hum"
    assert records[4]["threshold"] == 0.6


def test_a_long_clip_goes_in_blocks_with_the_same_windows(tmp_path, tiny_audio_models, monkeypatch):
    samples = np.concatenate([hum(3.3), hiss(2.0), hum(1.234)])
    c = classifier(tiny_audio_models["float32"])
    whole = c.score(*clip_windows(samples, AUDIO_SPEC, 0.5))
    monkeypatch.setattr(listen, "BLOCK_WINDOWS", 3)
    blocked = list(c.score_clip(samples))
    assert [w.offset_s for w in blocked] == pytest.approx([w.offset_s for w in whole])
    assert [w.duration_s for w in blocked] == pytest.approx([w.duration_s for w in whole])
    np.testing.assert_allclose(np.stack([w.scores for w in blocked]), np.stack([w.scores for w in whole]), atol=1e-6)


def test_a_clip_shorter_than_a_window_is_looped(tmp_path, tiny_audio_models):
    path = clip_file(tmp_path, hum(0.4))
    [record] = valid(list(classify_clip(classifier(tiny_audio_models["float32"]), path, "unit-7")))
    assert record["label"] == "engine" and record["audio"]["duration_s"] == pytest.approx(0.4)


def test_events_on_a_scripted_clip(tmp_path, tiny_audio_models):
    path = clip_file(tmp_path, scripted(("hiss", 5), ("hum", 5), ("hiss", 5)))
    c = classifier(tiny_audio_models["int8"], per_window=False, events=EventRules())
    records = valid(list(classify_clip(c, path, "unit-7")))
    assert [r["event"]["phase"] for r in records] == ["start", "end"], "one event, no window records"
    start, end = records
    assert start["event"]["id"] == end["event"]["id"] and start["id"] != end["id"]
    assert start["label"] == "engine" and start["alert"] is True and start["time_source"] == "file-mtime"
    assert 4.0 <= start["event"]["offset_s"] <= 5.0, "starts where the hum does (a window half in it counts)"
    clip_start = MTIME - timedelta(seconds=15)
    ended = (datetime.fromisoformat(end["event"]["end"].replace("Z", "+00:00")) - clip_start).total_seconds()
    assert 10.0 <= ended <= 11.0, "ends with the last window that hears the hum"
    assert end["event"]["duration_s"] == pytest.approx(ended - end["event"]["offset_s"], abs=0.002)


def test_events_on_the_recorded_composite_clip(tiny_audio_models):
    """Rain 0-5 s, a real chainsaw 5-10 s, rain 10-15 s (ESC-10)."""
    c = classifier(tiny_audio_models["float32"], per_window=False, events=EventRules())
    records = valid(list(classify_clip(c, COMPOSITE, "unit-7")))
    assert [r["event"]["phase"] for r in records] == ["start", "end"]
    assert 4.5 <= records[0]["event"]["offset_s"] <= 5.5
    assert records[1]["event"]["offset_s"] + records[1]["event"]["duration_s"] <= 10.5


def test_an_event_open_at_the_end_of_a_clip_ends_with_it(tmp_path, tiny_audio_models):
    path = clip_file(tmp_path, scripted(("hiss", 2), ("hum", 3)))
    c = classifier(tiny_audio_models["float32"], per_window=True, events=EventRules())
    records = valid(list(classify_clip(c, path, "unit-7")))
    windows = [r for r in records if "audio" in r]
    events = [r for r in records if "event" in r]
    assert len(windows) == 10 and [e["event"]["phase"] for e in events] == ["start", "end"]
    assert records[-1] is events[-1], "closed after the last window"
    assert events[1]["event"]["offset_s"] + events[1]["event"]["duration_s"] == pytest.approx(5.0, abs=0.01)


def test_silent_windows_are_not_classified(tmp_path, tiny_audio_models, caplog):
    c = classifier(tiny_audio_models["float32"], rms_gate_dbfs=-60.0)
    path = clip_file(tmp_path, np.concatenate([silence(2.0), hum(2.0)]))
    records = valid(list(classify_clip(c, path, "unit-7")))
    assert min(r["audio"]["offset_s"] for r in records) == 1.5, "windows wholly in the silence are skipped"
    assert all(r["audio"]["rms_dbfs"] >= -60 for r in records)
    quiet = clip_file(tmp_path, hum(2.0, amplitude=0.0005), "quiet.wav")  # about -70 dBFS
    with caplog.at_level(logging.INFO, logger="nv.audio"):
        assert list(classify_clip(c, quiet, "unit-7")) == []
    [message] = [r for r in caplog.records if "quiet.wav" in r.getMessage()]
    assert message.levelno == logging.WARNING and "4 of 4 windows are below the RMS gate (-60.0 dBFS)" in message.getMessage()
    loud = classifier(tiny_audio_models["float32"], rms_gate_dbfs=None)
    assert [r["label"] for r in classify_clip(loud, quiet, "unit-7")] == ["engine"] * 4, "a quiet hum is still a hum"


def test_a_torn_file_is_classified_with_a_warning(tmp_path, tiny_audio_models, caplog):
    path = clip_file(tmp_path, hum(3.0))
    path.write_bytes(path.read_bytes()[:-RATE])  # half a second torn off
    with caplog.at_level(logging.WARNING, logger="nv.audio"):
        records = valid(list(classify_clip(classifier(tiny_audio_models["int8"]), path, "unit-7")))
    assert len(records) == 5 and "truncated audio data" in caplog.text and "0.50 s missing" in caplog.text


def test_an_image_model_is_refused(tiny_int8):
    model = load_model(tiny_int8)
    with pytest.raises(BundleError, match="is an image model, not an audio model"):
        AudioClassifier(model, AudioOptions(thresholds={}))


def live_windows(samples: np.ndarray, t0: float, gate: float = -60.0) -> list[LiveWindow]:
    """What the microphone yields for these samples (tests/edge/test_microphone.py checks that it does)."""
    from edge.features.logmel import rms_dbfs

    hop, size = hop_samples(AUDIO_SPEC, 0.5), AUDIO_SPEC.window_samples
    out = []
    for n in range((samples.size - size) // hop + 1):
        x = samples[n * hop:n * hop + size]
        level = rms_dbfs(x)
        out.append(LiveWindow(x, n, n * hop / RATE, t0 + n * hop / RATE, size / RATE, level, level < gate))
    return out


def test_live_session_events_in_wall_clock_time(tiny_audio_models):
    t0 = datetime(2026, 5, 2, 3, 0, 0, tzinfo=timezone.utc).timestamp()
    c = classifier(tiny_audio_models["int8"], per_window=True, events=EventRules())
    session = LiveSession(c, source="microphone:USB", device="unit-7")
    windows = live_windows(scripted(("silence", 3), ("hum", 4), ("hiss", 3)), t0)
    records = valid(list(session.run(windows)) + session.close())
    per_window = [r for r in records if "audio" in r]
    events = [r for r in records if "event" in r]
    assert len(per_window) == sum(not w.silent for w in windows) < len(windows), "silent windows make no record"
    assert all(r["time_source"] == "received" and r["source"] == "microphone:USB" for r in records)
    first = per_window[0]
    assert first["time"] == datetime.fromtimestamp(t0 + first["audio"]["offset_s"], timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    assert [e["event"]["phase"] for e in events] == ["start", "end"]
    began = datetime.fromisoformat(events[0]["event"]["start"].replace("Z", "+00:00")).timestamp() - t0
    assert 2.0 <= began <= 3.0 and "offset_s" not in events[0]["event"]
