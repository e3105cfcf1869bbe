"""Labelled sound clips -> log-mel windows whose source recordings never straddle a split.

Input: a folder with `index.csv` (`path,class,group[,licence]`, paths relative to the folder), or a
folder of class sub-folders holding WAV/FLAC clips (any rate, mono or stereo). In a folder, a clip's
group is its file name up to the first `__` (`site4__003.wav` and `site4__004.wav` are slices of one
recording, the convention of the image data), else the clip is its own group. Anything subtler (slices
named by another scheme) belongs in an index.csv `group` column.

Classes become model labels through a label map (`load_label_map`), or stay as they are.
Every clip is read with soundfile, made mono (`edge.features.logmel.to_mono_float`) and resampled to the spec's
rate (`edge.features.logmel.resample`): the device's own front end, so train and serve see the same features.
"""

from __future__ import annotations

import csv
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.dataset import Dataset, Sample, class_folder_files, split
from edge.features.logmel import LogMelSpec, clip_windows, resample, to_mono_float

AUDIO_SUFFIXES = (".wav", ".flac")
# Windows more than this far under the clip's loudest window are dropped: ESC-10 pads short events with
# digital silence, and UrbanSound8K slices hold quiet gaps between events. A window of (near) silence
# carrying an event label teaches the model that silence is that event.
SILENCE_BELOW_PEAK_DB = 30.0
# Below this a window is digital silence (or resampler ringing around it) whatever the clip's peak.
DIGITAL_SILENCE_DBFS = -90.0


class AudioDatasetError(Exception):
    """A data set or label map that cannot be used: the message names the file and what to fix."""


@dataclass(frozen=True)
class LabelMap:
    """Source class -> model label. `labels` keep the file's order; `ignore` lists classes left out."""

    labels: tuple[str, ...]
    classes: dict[str, str]  # class -> label
    alert: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    path: Path | None = None
    groups: dict[str, tuple[str, ...]] | None = None  # [groups]: alert labels decided together; None: each alone

    def alert_groups(self) -> dict[str, tuple[str, ...]]:
        """Group name -> alert labels, every alert label in one (a label in no group is a group of its own)."""
        groups = dict(self.groups or {})
        grouped = {m for members in groups.values() for m in members}
        return groups | {label: (label,) for label in self.alert if label not in grouped}

    def label_of(self, cls: str) -> str | None:
        """The label of a class, None for an ignored class; an unmapped class is an error."""
        if cls in self.ignore:
            return None
        if cls not in self.classes:
            where = self.path or "the label map"
            raise AudioDatasetError(f"{where}: class {cls!r} of the data is not mapped to a label; add it to a label "
                                    "under [labels], or to `ignore = [...]` to leave its clips out")
        return self.classes[cls]


def load_label_map(path: Path) -> LabelMap:
    """A TOML file:

        alert = ["engine", "drilling", "chainsaw"]
        ignore = []                                     # optional: classes whose clips are left out
        [labels]
        engine = ["engine_idling", "air_conditioner"]   # label = [source classes]
        background = ["rain", ...]
        [groups]                                        # optional: alert labels decided together,
        machinery = ["engine", "drilling", "chainsaw"]  # on the sum of their scores (edge/decisions/groups.py)
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AudioDatasetError(f"{path}: no such label map; pass --labels PATH to a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise AudioDatasetError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"labels", "alert", "ignore", "groups"})
    if unknown:
        raise AudioDatasetError(f"{path}: unknown key(s) {unknown}; expected alert, ignore, a [labels] and a [groups] table")
    table = data.get("labels")
    if not isinstance(table, dict) or len(table) < 2:
        raise AudioDatasetError(f"{path}: [labels] must map at least two labels to lists of source classes")
    classes: dict[str, str] = {}
    for label, members in table.items():
        if not (isinstance(members, list) and members and all(isinstance(m, str) and m for m in members)):
            raise AudioDatasetError(f"{path}: labels.{label}: expected a non-empty list of class names")
        for cls in members:
            if cls in classes:
                raise AudioDatasetError(f"{path}: class {cls!r} is mapped twice ({classes[cls]!r} and {label!r})")
            classes[cls] = label
    alert = data.get("alert", [])
    ignore = data.get("ignore", [])
    for key, value in (("alert", alert), ("ignore", ignore)):
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise AudioDatasetError(f"{path}: {key}: expected a list of strings")
    bad = [a for a in alert if a not in table]
    if bad:
        raise AudioDatasetError(f"{path}: alert label(s) {bad} are not labels of [labels] ({list(table)})")
    both = sorted(set(ignore) & set(classes))
    if both:
        raise AudioDatasetError(f"{path}: class(es) {both} are both mapped and ignored")
    return LabelMap(labels=tuple(table), classes=classes, alert=tuple(alert), ignore=tuple(ignore), path=path,
                    groups=_groups(data.get("groups"), tuple(table), tuple(alert), path))


def _groups(raw, labels: tuple[str, ...], alert: tuple[str, ...], path: Path) -> dict[str, tuple[str, ...]] | None:
    """The [groups] table, checked as edge.model.bundle will check the manifest's."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise AudioDatasetError(f"{path}: [groups] must map group names to lists of alert labels")
    seen: dict[str, str] = {}
    for name, members in raw.items():
        if not (isinstance(members, list) and members and all(isinstance(m, str) for m in members)):
            raise AudioDatasetError(f"{path}: groups.{name}: expected a non-empty list of alert labels")
        strays = [m for m in members if m not in alert]
        if strays:
            raise AudioDatasetError(f"{path}: groups.{name}: {strays} are not alert labels ({list(alert)})")
        if name in labels and members != [name]:
            raise AudioDatasetError(f"{path}: groups.{name}: a group may not take the name of a label; rename it")
        for m in members:
            if m in seen:
                raise AudioDatasetError(f"{path}: alert label {m!r} is in two groups ({seen[m]!r} and {name!r})")
            seen[m] = name
    return {name: tuple(members) for name, members in raw.items()}


def identity_map(classes: list[str], alert: tuple[str, ...] = ()) -> LabelMap:
    labels = tuple(sorted(set(classes)))
    bad = [a for a in alert if a not in labels]
    if bad:
        raise AudioDatasetError(f"alert label(s) {bad} are not classes of the data ({list(labels)})")
    return LabelMap(labels=labels, classes={c: c for c in labels}, alert=alert)


@dataclass(frozen=True)
class Clip:
    path: Path
    cls: str  # the source class
    label: str  # the model label
    group: str
    licence: str = ""


def scan_clips(root: Path) -> list[tuple[Path, str, str, str]]:
    """(path, class, group, licence) for every clip under root."""
    root = Path(root)
    if not root.is_dir():
        raise AudioDatasetError(f"{root}: not a folder")
    index = root / "index.csv"
    if index.is_file():
        with open(index, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "class"} - set(reader.fieldnames or [])
            if missing:
                raise AudioDatasetError(f"{index}: missing column(s) {sorted(missing)}; expected path,class,group[,licence]")
            return [(root / r["path"], r["class"], r.get("group") or r["path"], r.get("licence") or "") for r in reader]
    rows = []
    for path, cls in class_folder_files(root, AUDIO_SUFFIXES):
        stem = path.stem.split("__")[0] if "__" in path.stem else str(path.relative_to(root))
        rows.append((path, cls, f"{cls}/{stem}", ""))
    if not rows:
        raise AudioDatasetError(f"{root}: no index.csv and no class sub-folders with {'/'.join(AUDIO_SUFFIXES)} clips")
    return rows


def load_clips(root: Path, label_map: LabelMap | None = None) -> tuple[list[Clip], LabelMap]:
    rows = scan_clips(root)
    if label_map is None:
        label_map = identity_map([cls for _, cls, _, _ in rows])
    clips = []
    for path, cls, group, licence in rows:
        label = label_map.label_of(cls)
        if label is not None:
            clips.append(Clip(path=path, cls=cls, label=label, group=group, licence=licence))
    empty = [label for label in label_map.labels if not any(c.label == label for c in clips)]
    if empty:
        raise AudioDatasetError(f"{root}: no clips for label(s) {empty}; add clips or remove the label from the map")
    return clips, label_map


def read_clip(path: Path, spec: LogMelSpec) -> np.ndarray:
    """Mono float samples at the spec's rate."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioDatasetError(f"{path}: cannot read this clip ({exc}); convert it to WAV or FLAC or remove it") from None
    return resample(to_mono_float(data), int(rate), spec.sample_rate)


def audible(rms_dbfs: np.ndarray) -> np.ndarray:
    """Which windows of one clip to keep: not digital silence and within SILENCE_BELOW_PEAK_DB of the
    clip's loudest window. The loudest window is always kept, so a quiet clip is not lost."""
    keep = (rms_dbfs > DIGITAL_SILENCE_DBFS) & (rms_dbfs >= rms_dbfs.max() - SILENCE_BELOW_PEAK_DB)
    keep[int(np.argmax(rms_dbfs))] = True
    return keep


@dataclass
class Windows:
    """Log-mel windows (not normalised) of a set of clips, each window tied to its clip."""

    features: np.ndarray  # (W, frames, n_mels) float32
    clip: np.ndarray  # (W,) index into `clips`
    clips: list[Clip]
    dropped: int = 0  # near-silent windows left out

    def labels(self, labels: tuple[str, ...]) -> np.ndarray:
        return np.array([labels.index(self.clips[k].label) for k in self.clip], dtype=np.int64)


def windows_of(clips: list[Clip], spec: LogMelSpec, hop_s: float, drop_silent: bool = True) -> Windows:
    feats, owner, dropped = [], [], 0
    for k, clip in enumerate(clips):
        w, places = clip_windows(read_clip(clip.path, spec), spec, hop_s)
        if len(places) == 0:
            continue
        keep = audible(np.array([p.rms_dbfs for p in places])) if drop_silent else np.ones(len(places), bool)
        dropped += int((~keep).sum())
        feats.append(w[keep])
        owner.append(np.full(int(keep.sum()), k))
    if not feats:
        raise AudioDatasetError("no clip gave a window: are the clips empty?")
    return Windows(features=np.concatenate(feats).astype(np.float32), clip=np.concatenate(owner), clips=clips, dropped=dropped)


def split_clips(clips: list[Clip], labels: tuple[str, ...], fractions=(0.7, 0.15, 0.15), seed: int = 0,
                hold_out_groups: tuple[str, ...] = ()) -> dict[str, list[Clip]]:
    """Grouped, seeded split stratified by source class (`converter.dataset.split`): every group lands whole in one split.
    `hold_out_groups` go to test whatever the split says (clips shipped as samples must never be trained on)."""
    known = {c.group for c in clips}
    unknown = [g for g in hold_out_groups if g not in known]
    if unknown:
        raise AudioDatasetError(f"--hold-out-groups: {unknown} are not groups of the data (e.g. {sorted(known)[:3]})")
    held = set(hold_out_groups)
    by_path = {c.path: c for c in clips}
    rest = [c for c in clips if c.group not in held]
    # Stratify by source class, not by label: a label made of two classes (drilling = drilling + jackhammer)
    # then has both in every split, instead of whichever class has the bigger recordings.
    samples = [Sample(path=c.path, label=c.cls, group=c.group, origin=c.group) for c in rest]
    parts = split(Dataset(root=Path("."), samples=samples, labels=tuple(sorted({c.cls for c in rest}))), fractions, seed)
    out = {name: [by_path[s.path] for s in members] for name, members in parts.items()}
    out["test"] += [c for c in clips if c.group in held]
    for name, members in out.items():
        missing = [label for label in labels if not any(c.label == label for c in members)]
        if missing:
            raise AudioDatasetError(f"the {name} split has no clips of {missing}: add recordings (groups) of them")
    return out


def label_counts(clips: list[Clip], labels: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(c.label for c in clips)
    return {label: counts.get(label, 0) for label in labels}


def class_counts(clips: list[Clip]) -> dict[str, int]:
    return dict(sorted(Counter(c.cls for c in clips).items()))
