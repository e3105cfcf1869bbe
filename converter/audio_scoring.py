"""Scores of labelled audio as a unit computes them, for choosing event rules and thresholds
(`converter.audio_events`): from clips, through the device's own reader, windows, RMS gate and
interpreter (`edge.audio.listen.AudioClassifier`, no TensorFlow), or from a unit's score log
(docs/score-log.md), which a unit wrote with the very same code.

The converter's own process has imported TensorFlow, so it scores through `score_in_clean_process`:

    python -m converter.audio_scoring BUNDLE CLIPS.json OUT.npz [--hop 0.5] [--rms-gate -60] [--backend litert]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from converter.audio_events import ScoredClip
from edge.audio.audiofile import AudioFileError, read_audio
from edge.audio.listen import DEFAULT_HOP_S, DEFAULT_RMS_GATE_DBFS, AudioClassifier, AudioOptions
from edge.audio.score_log import FORMAT as SCORE_LOG_FORMAT
from edge.decisions.alerts import resolve_thresholds
from edge.features.logmel import LogMelSpec
from edge.model.loaded import Model, load_model


class ScoringError(Exception):
    """Audio that cannot be scored; the message names the file and what to do."""


@dataclass(frozen=True)
class LabelledClip:
    path: Path
    cls: str  # the class it was labelled with
    alert: bool  # machinery (one of the bundle's alert labels) or background
    group: str = ""  # the source recording


def score_clips(model: Model, clips: Sequence[LabelledClip], hop_s: float = DEFAULT_HOP_S,
                rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS) -> list[ScoredClip]:
    """Each clip as `nv-edge classify` reads and windows it. Must run where TensorFlow was not imported."""
    classifier = AudioClassifier(model, AudioOptions(thresholds=resolve_thresholds(model.manifest), hop_s=hop_s,
                                                     rms_gate_dbfs=rms_gate_dbfs, per_window=False))
    out = []
    for clip in clips:
        try:
            audio = read_audio(clip.path, classifier.spec.sample_rate)
        except AudioFileError as exc:
            raise ScoringError(f"{exc}; fix or remove the clip") from None
        windows = [w for w in classifier.score_clip(audio.samples) if w.scores is not None]
        starts = np.array([w.offset_s for w in windows], dtype=np.float64)
        ends = np.array([w.offset_s + w.duration_s for w in windows], dtype=np.float64)
        scores = (np.stack([w.scores for w in windows]) if windows
                  else np.zeros((0, len(model.manifest.labels)), np.float32))
        out.append(ScoredClip(str(clip.path), clip.cls, clip.alert, audio.duration_s, starts, ends, scores, group=clip.group))
    return out


def save_scored(path: Path, clips: Sequence[ScoredClip]) -> None:
    counts = np.array([len(c.starts) for c in clips], dtype=np.int64)
    width = clips[0].scores.shape[1] if clips else 0
    np.savez(path, meta=json.dumps([{"name": c.name, "cls": c.cls, "alert": c.alert, "duration_s": c.duration_s,
                                     "origin": c.origin, "group": c.group} for c in clips]), counts=counts,
             starts=np.concatenate([c.starts for c in clips]) if clips else np.zeros(0),
             ends=np.concatenate([c.ends for c in clips]) if clips else np.zeros(0),
             scores=np.concatenate([c.scores for c in clips]) if clips else np.zeros((0, width), np.float32))


def load_scored(path: Path) -> list[ScoredClip]:
    with np.load(path) as data:
        meta, counts = json.loads(str(data["meta"])), data["counts"]
        starts, ends, scores = data["starts"], data["ends"], data["scores"]
    edges = np.r_[0, np.cumsum(counts)]
    return [ScoredClip(m["name"], m["cls"], m["alert"], m["duration_s"], starts[a:b], ends[a:b], scores[a:b], m["origin"],
                       m.get("group", "")) for m, a, b in zip(meta, edges[:-1], edges[1:])]


def score_in_clean_process(bundle: Path, clips: Sequence[LabelledClip], hop_s: float = DEFAULT_HOP_S,
                           rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS, backend: str = "litert") -> list[ScoredClip]:
    """`score_clips` in a fresh process that imports the edge runtime only, as a device does."""
    with tempfile.TemporaryDirectory() as tmp:
        listing, out = Path(tmp) / "clips.json", Path(tmp) / "scores.npz"
        listing.write_text(json.dumps([{"path": str(c.path), "cls": c.cls, "alert": c.alert, "group": c.group} for c in clips]))
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        gate = "off" if rms_gate_dbfs is None else str(rms_gate_dbfs)
        proc = subprocess.run([sys.executable, "-m", "converter.audio_scoring", str(bundle), str(listing), str(out),
                               "--hop", str(hop_s), "--rms-gate", gate, "--backend", backend],
                              capture_output=True, text=True, env=env, timeout=3600)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ScoringError(f"{bundle}: scoring clips on {backend} failed: {last}")
        return load_scored(out)


def read_score_log(path: Path, model: Model) -> ScoredClip:
    """A unit's score log (docs/score-log.md) as one stretch of background: its windows at their Unix
    times (the tracker ends events across gaps longer than max_gap_s, as the unit did), the covered time as
    its duration. A torn last line (power cut) is skipped; the log must hold this model's scores."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoringError(f"{path}: cannot read this score log ({exc})") from None
    try:
        header = json.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("score_log") != SCORE_LOG_FORMAT:
            raise ValueError
    except ValueError:
        raise ScoringError(f"{path}: is not a score log of format {SCORE_LOG_FORMAT} (docs/score-log.md): its first "
                           "line is no score-log header") from None
    labels = model.manifest.labels
    sha = (header.get("model") or {}).get("sha256")
    if sha != model.manifest.model_sha256:
        raise ScoringError(f"{path}: holds the scores of another model ({(header.get('model') or {}).get('name', '?')}, "
                           f"sha256 {str(sha)[:12]}…), not of {model.path} ({model.manifest.model_sha256[:12]}…); "
                           "log with the bundle you calibrate")
    if sorted(header.get("labels") or []) != sorted(labels):
        raise ScoringError(f"{path}: its labels {header.get('labels')} are not the model's {list(labels)}")
    times, rows = [], []
    for line in lines[1:]:
        try:
            entry = json.loads(line)
            t = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            row = [float(entry["scores"][label]) for label in labels]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn line: the unit lost power mid-write
        times.append(t)
        rows.append(row)
    if not rows:
        raise ScoringError(f"{path}: holds no window lines; let the unit log for a while (--score-log-hours)")
    order = np.argsort(times, kind="stable")
    starts = np.asarray(times, dtype=np.float64)[order]
    window = LogMelSpec.from_dict(model.manifest.audio).window_s
    covered = float(np.minimum(np.diff(starts), window).sum() + window)  # the union of the window spans
    return ScoredClip(str(path), "score log", False, covered, starts, starts + window,
                      np.asarray(rows, dtype=np.float32)[order], origin=float(starts[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converter.audio_scoring")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("clips", type=Path, help="JSON list of {path, cls, alert}")
    parser.add_argument("out", type=Path)
    parser.add_argument("--hop", type=float, default=DEFAULT_HOP_S)
    parser.add_argument("--rms-gate", default=str(DEFAULT_RMS_GATE_DBFS))
    parser.add_argument("--backend", default="litert")
    args = parser.parse_args(argv)
    assert "tensorflow" not in sys.modules
    model = load_model(args.bundle, backend=args.backend, num_threads=1, task="audio")
    clips = [LabelledClip(Path(c["path"]), c["cls"], bool(c["alert"]), c.get("group", "")) for c in json.loads(args.clips.read_text())]
    gate = None if args.rms_gate == "off" else float(args.rms_gate)
    save_scored(args.out, score_clips(model, clips, args.hop, gate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
