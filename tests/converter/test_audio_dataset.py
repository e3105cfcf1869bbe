"""Audio data set: reading clips of any rate and layout, the label map, windowing and the grouped split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from converter.audio_dataset import (AudioDatasetError, audible, load_clips, load_label_map, read_clip, split_clips,
                                     windows_of)
from edge.features.logmel import LogMelSpec

SPEC = LogMelSpec()
MAP = """alert = ["engine", "saw"]
[labels]
engine = ["hum"]
saw = ["chirp"]
background = ["hiss"]
"""


def sound(cls: str, rng: np.random.Generator, rate: int, seconds: float) -> np.ndarray:
    """hum: a low tone with harmonics; hiss: high-passed noise; chirp: rising sweeps. Every clip differs."""
    t = np.arange(int(rate * seconds)) / rate
    if cls == "hum":
        f0 = rng.uniform(90, 160)
        x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in (1, 2, 3))
    elif cls == "hiss":
        noise = rng.normal(0, 1, t.size)
        x = np.diff(noise, prepend=0.0)  # a first difference tilts the spectrum up
    else:
        period = rng.uniform(0.2, 0.35)
        phase = (t % period) / period
        f = rng.uniform(1500, 2000) + 2500 * phase
        x = np.sin(2 * np.pi * np.cumsum(f) / rate)
    x = x + rng.normal(0, 0.02, t.size)
    return (0.3 * rng.uniform(0.5, 1.0) * x / np.abs(x).max()).astype(np.float32)


def write_clip_folders(root: Path, recordings: int = 8, slices: int = 2, seconds: float = 2.0, seed: int = 0) -> None:
    """Class folders of clips at 22.05 and 44.1 kHz, some stereo, some FLAC; slices of one recording are
    named `rec<k>__<n>` so they share a group."""
    rng = np.random.default_rng(seed)
    for cls in ("hum", "hiss", "chirp"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for r in range(recordings):
            rate = (22_050, 44_100)[r % 2]
            for n in range(slices):
                x = sound(cls, rng, rate, seconds)
                data = np.stack([x, 0.8 * x], 1) if r % 3 == 0 else x
                suffix = ".flac" if r % 4 == 1 else ".wav"
                soundfile.write(str(root / cls / f"{cls}{r}__{n}{suffix}"), data, rate, subtype="PCM_16")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    write_clip_folders(root)
    (root / "map.toml").write_text(MAP)
    return root


def test_folder_clips_are_read_at_the_spec_rate_and_grouped_by_name(data):
    clips, label_map = load_clips(data, load_label_map(data / "map.toml"))
    assert len(clips) == 3 * 8 * 2
    assert label_map.labels == ("engine", "saw", "background") and label_map.alert == ("engine", "saw")
    assert {c.label for c in clips if c.cls == "hum"} == {"engine"}
    assert len({c.group for c in clips}) == 3 * 8  # two slices per recording share its group
    for clip in clips[:6]:  # 22.05 and 44.1 kHz, mono and stereo, WAV and FLAC
        x = read_clip(clip.path, SPEC)
        assert x.ndim == 1 and abs(x.size - 2.0 * SPEC.sample_rate) <= 2


def test_identity_mapping_when_no_map(data):
    clips, label_map = load_clips(data)
    assert label_map.labels == ("chirp", "hiss", "hum")
    assert all(c.label == c.cls for c in clips)


def test_index_csv_gives_groups_and_licences(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "a").mkdir()
    rows = ["path,class,group,licence"]
    for k in range(4):
        soundfile.write(str(tmp_path / "a" / f"{k}.flac"), sound("hum", rng, 16_000, 1.5), 16_000)
        rows.append(f"a/{k}.flac,hum,rec{k // 2},CC0-1.0")
    (tmp_path / "index.csv").write_text("\n".join(rows) + "\n")
    clips, _ = load_clips(tmp_path)
    assert [c.group for c in clips] == ["rec0", "rec0", "rec1", "rec1"] and {c.licence for c in clips} == {"CC0-1.0"}


def test_an_unmapped_class_is_an_error_unless_ignored(data, tmp_path):
    partial = tmp_path / "partial.toml"
    partial.write_text('alert = ["engine"]\n[labels]\nengine = ["hum"]\nbackground = ["hiss"]\n')
    with pytest.raises(AudioDatasetError, match="'chirp' of the data is not mapped"):
        load_clips(data, load_label_map(partial))
    partial.write_text('alert = ["engine"]\nignore = ["chirp"]\n[labels]\nengine = ["hum"]\nbackground = ["hiss"]\n')
    clips, _ = load_clips(data, load_label_map(partial))
    assert {c.cls for c in clips} == {"hum", "hiss"}


@pytest.mark.parametrize("text, message", [
    ('alert = ["drill"]\n[labels]\nengine = ["hum"]\nbackground = ["hiss"]\n', r"alert label\(s\) \[.drill.\] are not labels"),
    ('[labels]\nengine = ["hum"]\nbackground = ["hum"]\n', "'hum' is mapped twice"),
    ('[labels]\nengine = ["hum"]\n', "at least two labels"),
    ('alert = ["engine"\n', "not valid TOML"),
    ('alert = ["engine"]\n[labels]\nengine = ["hum"]\nbackground = ["hiss"]\n[groups]\nm = ["engine", "background"]\n',
     r"groups.m: \['background'\] are not alert labels"),
    ('alert = ["engine", "saw"]\n[labels]\nengine = ["hum"]\nsaw = ["chirp"]\nbackground = ["hiss"]\n[groups]\n'
     'm = ["engine"]\nn = ["engine", "saw"]\n', "'engine' is in two groups"),
    ('alert = ["engine", "saw"]\n[labels]\nengine = ["hum"]\nsaw = ["chirp"]\nbackground = ["hiss"]\n[groups]\n'
     'engine = ["engine", "saw"]\n', "may not take the name of a label"),
])
def test_bad_label_maps_are_refused_with_the_file_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(AudioDatasetError, match=message) as info:
        load_label_map(path)
    assert str(path) in str(info.value)


def test_groups_of_a_label_map(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('alert = ["engine", "saw", "drill"]\n[labels]\nengine = ["hum"]\nsaw = ["chirp"]\ndrill = ["d"]\n'
                    'background = ["hiss"]\n[groups]\nmachinery = ["engine", "drill"]\n')
    label_map = load_label_map(path)
    assert label_map.groups == {"machinery": ("engine", "drill")}
    assert label_map.alert_groups() == {"machinery": ("engine", "drill"), "saw": ("saw",)}, "a label in no group: its own"
    path.write_text(MAP)
    assert load_label_map(path).groups is None
    assert load_label_map(path).alert_groups() == {"engine": ("engine",), "saw": ("saw",)}
    shipped = load_label_map(Path(__file__).resolve().parents[2] / "converter" / "labelmaps" / "mining-audio.toml")
    assert shipped.alert_groups() == {"machinery": ("engine", "drilling", "chainsaw")}


def test_silent_windows_are_dropped_and_short_clips_looped(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "hum").mkdir()
    loud = sound("hum", rng, 16_000, 2.0)
    # 2 s of sound then 3 s of digital silence, as ESC-10 pads its short events
    soundfile.write(str(tmp_path / "hum" / "tail.wav"), np.concatenate([loud, np.zeros(48_000, np.float32)]), 16_000)
    soundfile.write(str(tmp_path / "hum" / "short.wav"), sound("hum", rng, 16_000, 0.3), 16_000)
    clips, _ = load_clips(tmp_path)
    kept = windows_of(clips, SPEC, hop_s=0.5)
    every = windows_of(clips, SPEC, hop_s=0.5, drop_silent=False)
    tail = [k for k, c in enumerate(clips) if c.path.name == "tail.wav"][0]
    short = 1 - tail
    assert kept.dropped > 0 and kept.dropped == len(every.clip) - len(kept.clip)
    # the kept windows of the padded clip all start inside its sound (offsets 0..1.5 s at 0.5 s hops)
    assert np.sum(kept.clip == tail) <= 4 < np.sum(every.clip == tail)
    assert np.sum(kept.clip == short) == 1  # 0.3 s looped into one full window
    assert kept.features.shape[1:] == (SPEC.frames, SPEC.n_mels) and np.isfinite(kept.features).all()


def test_audible_keeps_the_loudest_window_of_a_quiet_clip():
    assert audible(np.array([-120.0, -95.0])).tolist() == [False, True]
    assert audible(np.array([-20.0, -45.0, -55.0, -200.0])).tolist() == [True, True, False, False]


def test_split_keeps_recordings_whole_and_holds_out_groups(data):
    clips, label_map = load_clips(data, load_label_map(data / "map.toml"))
    held = ("hum/hum3", "hiss/hiss5")
    parts = split_clips(clips, label_map.labels, seed=3, hold_out_groups=held)
    groups = {name: {c.group for c in members} for name, members in parts.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"]) and not (groups["val"] & groups["test"])
    assert set(held) <= groups["test"]
    assert sum(len(v) for v in parts.values()) == len(clips)
    for members in parts.values():  # stratified: every label in every split
        assert {c.label for c in members} == set(label_map.labels)
    again = split_clips(clips, label_map.labels, seed=3, hold_out_groups=held)
    assert [c.path for c in again["test"]] == [c.path for c in parts["test"]]  # seeded
    with pytest.raises(AudioDatasetError, match="not groups of the data"):
        split_clips(clips, label_map.labels, hold_out_groups=("nope",))
