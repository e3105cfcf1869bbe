"""`nv-convert operating-point`: choose a made audio bundle's groups, event rule and thresholds on the
validation split of the data it was trained on, report them on its test split, and write the bundle
again with the same model bytes. No TensorFlow: the split is the converter's own seeded split
(`converter.audio_dataset.split_clips`), checked against the split counts in the bundle's metrics.json,
and the clips are scored by the edge runtime (`converter.audio_scoring`).

    nv-convert operating-point models/mining-audio/mining-audio.nvm ../shared/data/audio \\
        --labels converter/labelmaps/mining-audio.toml --hold-out-groups esc:169127,esc:21189
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from converter.audio_dataset import AudioDatasetError, load_clips, load_label_map, split_clips
from converter.audio_operating import (DEFAULT_TARGET_FA_PER_HOUR, apply, before_params, event_metrics, provenance,
                                       select)
from converter.audio_scoring import LabelledClip, score_clips
from converter.pipeline import log
from edge.audio.listen import DEFAULT_HOP_S, DEFAULT_RMS_GATE_DBFS
from edge.decisions.groups import alert_groups
from edge.model.bundle import read_bundle, write_bundle
from edge.model.loaded import load_model


@dataclass(frozen=True)
class ReleaseOptions:
    labels: Path  # the label map the bundle was trained with ([groups] says the groups to decide on)
    out: Path
    hold_out_groups: tuple[str, ...] = ()
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    target_fa_per_hour: float = DEFAULT_TARGET_FA_PER_HOUR
    hop_s: float = DEFAULT_HOP_S
    rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS
    source: str = ""  # how the data is named in the manifest's provenance (default: its path)
    version: str | None = None  # the new bundle's version (default: the bundle's)
    max_false_alarms: int | None = None  # at most this many on validation, in place of the per-hour target


def rechoose(bundle_path: Path, data: Path, options: ReleaseOptions) -> dict:
    """Write options.out (and metrics.json, report.md and events.png beside it); returns metrics' `events`."""
    bundle = read_bundle(bundle_path)
    manifest = bundle.manifest
    if manifest.task != "audio":
        raise ValueError(f"{bundle_path}: is an {manifest.task} model; operating-point chooses event rules of audio models")
    label_map = load_label_map(options.labels)
    if label_map.labels != manifest.labels or label_map.alert != manifest.alert_labels:
        raise AudioDatasetError(f"{options.labels}: labels {list(label_map.labels)} (alert {list(label_map.alert)}) are not "
                                f"the bundle's {list(manifest.labels)} (alert {list(manifest.alert_labels)})")
    groups = label_map.alert_groups() if label_map.groups else alert_groups(manifest)
    clips, _ = load_clips(data, label_map)
    parts = split_clips(clips, label_map.labels, options.fractions, options.seed, options.hold_out_groups)
    metrics_path = bundle_path.parent / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    made = {k: metrics.get("split", {}).get(k) for k in ("train", "val", "test")}
    got = {k: len(parts[k]) for k in made}
    if metrics and made != got:
        raise AudioDatasetError(f"{data}: this split ({got}) is not the one {bundle_path.name} was made with ({made}, "
                                f"{metrics_path}); give the same data, --seed and --hold-out-groups")
    log(f"split as made: {got}")
    model = load_model(bundle_path, backend="litert", num_threads=1, task="audio")

    def scored(name):
        return score_clips(model, [LabelledClip(c.path, c.cls, c.label in label_map.alert, c.group) for c in parts[name]],
                           options.hop_s, options.rms_gate_dbfs)

    val, test = scored("val"), scored("test")
    base = dict(manifest.events or {})
    selection = select(val, manifest.labels, groups, base, options.target_fa_per_hour,
                       max_false_alarms=options.max_false_alarms)
    old_groups = alert_groups(manifest)
    before = (before_params(manifest, old_groups), old_groups, "the bundle as it was")
    events = event_metrics(selection, val, test, manifest.labels, groups, base, before,
                           hop_s=options.hop_s, rms_gate_dbfs=options.rms_gate_dbfs)
    where = (f"the {len(val)} validation clips of {options.source or data} ({events['validation']['clips']['machinery']} "
             f"machinery, {events['validation']['clips']['background']} background)")
    record = provenance(selection, groups, by="nv-convert operating-point", where=where,
                        data={"source": options.source or str(data), "split": "val", "seed": options.seed,
                              "hold_out_groups": list(options.hold_out_groups), **events["validation"]["clips"]},
                        hop_s=options.hop_s, rms_gate_dbfs=options.rms_gate_dbfs,
                        previous=manifest.metrics.get("operating_point"))
    record["before"] = events["before"]["validation"]
    record["test"] = events["test"]["chosen"]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    chosen = apply(replace(manifest, version=options.version or manifest.version), groups, selection.choice.point, record)
    written = write_bundle(options.out, bundle.model_bytes, chosen)
    events["how"] = record["how"]
    metrics["events"] = events
    out_dir = options.out.parent
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    from converter.audio_event_report import write_event_report

    write_event_report(metrics, out_dir)
    log(f"wrote {options.out} (model sha256 {written.model_sha256[:12]}…, manifest sha256 {written.manifest_sha256[:12]}…)")
    return events
