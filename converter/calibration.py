"""`nv-convert calibrate BUNDLE [LABELLED_DIR] --out NEW.nvm`: choose a shipped bundle's thresholds and
event rule again on a site's own sounds, without retraining and without TensorFlow (the edge runtime
scores, the device's EventTracker decides).

The site's sounds are a folder of labelled recordings (class sub-folders or an index.csv, as for
`nv-convert audio`; a class is one of the bundle's labels or "background", or is mapped to one by
--labels MAP.toml) and/or units' score logs (docs/score-log.md), which are all background. With machinery
among the recordings, every rule x threshold is tried (and the setting in use) for the most event recall
within the target false-alarm rate; with background only, the rule in use is kept and thresholds are only
raised, as little as meets the target. The new bundle has the same model bytes (records name the same
model) and a new manifest whose `metrics.operating_point` says what it was calibrated on and how.

An image bundle goes to `converter.image_calibration` (the same as `nv-convert calibrate-images`, at its
default target, the most balanced accuracy per frame): class sub-folders of frames named by its labels or groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from converter.audio_dataset import load_label_map, scan_clips
from converter.audio_events import ScoredClip, evaluate, figures, thresholds_of
from converter.audio_operating import DEFAULT_TARGET_FA_PER_HOUR, apply, before_params, provenance, select
from converter.audio_scoring import LabelledClip, read_score_log, score_clips
from edge.audio.listen import DEFAULT_HOP_S, DEFAULT_RMS_GATE_DBFS
from edge.decisions.groups import alert_groups
from edge.model.bundle import read_bundle, write_bundle
from edge.model.loaded import load_model

BACKGROUND = "background"


class CalibrationError(Exception):
    """Data that cannot calibrate this bundle; the message names the file and what to do."""


@dataclass(frozen=True)
class CalibrationOptions:
    out: Path
    labels: Path | None = None  # class -> label map (TOML, as for nv-convert audio)
    score_logs: tuple[Path, ...] = ()
    target_fa_per_hour: float = DEFAULT_TARGET_FA_PER_HOUR
    hop_s: float = DEFAULT_HOP_S
    rms_gate_dbfs: float | None = DEFAULT_RMS_GATE_DBFS
    backend: str | None = None


def calibrate(bundle_path: Path, folder: Path | None, options: CalibrationOptions, say=print) -> int:
    """Write options.out; `say` gets the before/after lines. Returns the exit status."""
    if read_bundle(bundle_path).manifest.task == "image":
        return calibrate_image_bundle(bundle_path, folder, options, say)
    return calibrate_audio(bundle_path, folder, options, say)


def calibrate_image_bundle(bundle_path: Path, folder: Path | None, options: CalibrationOptions, say=print) -> int:
    from converter import image_calibration as images

    if folder is None:
        raise CalibrationError(f"{bundle_path}: is an image model: give a folder of labelled frames (class sub-folders); "
                               "score logs are for audio models")
    if options.score_logs:
        raise CalibrationError(f"{options.score_logs[0]}: score logs calibrate audio models, and {bundle_path} is an image model")
    result = images.calibrate_images(bundle_path, folder, images.CalibrationOptions(backend=options.backend))
    for path, why in result.unreadable:
        say(f"skipped {path}: {why}")
    for group, threshold in result.thresholds.items():
        b, a = result.before.get(group, {}), result.after.get(group, {})
        say(f"{group}: threshold {result.previous.get(group)} -> {threshold:.4f}; balanced accuracy per frame "
            f"{b.get('balanced_accuracy')} -> {a.get('balanced_accuracy')}, recall {b.get('recall')} -> {a.get('recall')}, "
            f"false alarm rate {b.get('false_alarm_rate')} -> {a.get('false_alarm_rate')} ({sum(result.frames.values())} frames)")
    images.write_calibrated(result, options.out)
    say(f"wrote {options.out}")
    return 0


def site_clips(folder: Path, labels: tuple[str, ...], alert: tuple[str, ...], map_path: Path | None) -> list[LabelledClip]:
    """The labelled recordings of a site, each machinery (an alert label) or background."""
    label_map = load_label_map(map_path) if map_path is not None else None
    out = []
    for path, cls, group, _ in scan_clips(folder):
        label = label_map.label_of(cls) if label_map is not None else cls
        if label is None:
            continue
        if label not in labels and label != BACKGROUND:
            where = f"{map_path}: labels.{label}" if label_map is not None else f"{path}: class {cls!r}"
            raise CalibrationError(f"{where}: {label!r} is neither a label of the bundle ({', '.join(labels)}) nor "
                                   f"{BACKGROUND!r}; rename it or map it with --labels MAP.toml")
        out.append(LabelledClip(path, cls, label in alert, group))
    if not out:
        raise CalibrationError(f"{folder}: no labelled clips (every class was ignored)")
    return out


def calibrate_audio(bundle_path: Path, folder: Path | None, options: CalibrationOptions, say=print) -> int:
    if folder is None and not options.score_logs:
        raise CalibrationError("give a folder of labelled recordings, or --score-log PATH, or both")
    bundle = read_bundle(bundle_path)
    model = load_model(bundle_path, backend=options.backend, task="audio")
    manifest = model.manifest
    groups = alert_groups(manifest)
    clips: list[ScoredClip] = []
    if folder is not None:
        labelled = site_clips(folder, manifest.labels, manifest.alert_labels, options.labels)
        clips += score_clips(model, labelled, options.hop_s, options.rms_gate_dbfs)
    logs = [read_score_log(p, model) for p in options.score_logs]
    clips += logs
    if not any(not c.alert for c in clips):
        raise CalibrationError(f"{folder}: no background audio (clips labelled {BACKGROUND!r} or --score-log): false "
                               "alarms cannot be counted")
    base = dict(manifest.events or {})
    before = before_params(manifest, groups)
    selection = select(clips, manifest.labels, groups, base, options.target_fa_per_hour, before=before, quick=True)
    before_point = evaluate(clips, manifest.labels, groups, before, base, detail=True)
    after_point = evaluate(clips, manifest.labels, groups, selection.choice.point.params, base, detail=True)
    machinery = sum(c.alert for c in clips)
    log_hours = sum(c.duration_s for c in logs) / 3600
    parts = [f"{machinery} machinery and {sum(not c.alert for c in clips) - len(logs)} background clips of {folder}"
             if folder is not None else "", f"{len(logs)} score log(s) ({log_hours:.2f} h)" if logs else ""]
    where = " and ".join(p for p in parts if p)
    data = {"folder": None if folder is None else str(folder), "score_logs": [str(p) for p in options.score_logs],
            "machinery_clips": machinery, "background_clips": sum(not c.alert for c in clips) - len(logs),
            "score_log_hours": round(log_hours, 4), "background_hours": round(selection.hours, 4)}
    record = provenance(selection, groups, by="nv-convert calibrate", where=where, data=data, before=before_point,
                        hop_s=options.hop_s, rms_gate_dbfs=options.rms_gate_dbfs,
                        previous=manifest.metrics.get("operating_point"))
    record["after"] = figures(after_point)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    written = write_bundle(options.out, bundle.model_bytes, apply(manifest, groups, selection.choice.point, record))
    for line in report_lines(selection, before_point, after_point, where, groups):
        say(line)
    say(f"wrote {options.out}: model sha256 {written.model_sha256[:16]}… (unchanged), manifest sha256 "
        f"{written.manifest_sha256[:16]}… (was {manifest.manifest_sha256[:16] or 'none, format 1'}…)")
    return 0


def report_lines(selection, before, after, where: str, groups: dict[str, tuple[str, ...]]) -> list[str]:
    target = f"target {selection.used:.3g} false alarms per hour of background"
    if selection.used > selection.asked:
        target += f" ({selection.asked:g} asked; {selection.hours:.3g} h of background cannot show less)"
    lines = [f"calibrated on {where}: {selection.hours:.3f} h of background; {target}"
             + ("" if selection.choice.reached else "; NOT reached by any setting")]
    lines.append(f"{'':7} {'rule':10} {'thresholds':28} {'event recall':>14} {'false alarms':>13} {'per hour':>9} "
                 f"{'delay to report (median)':>25}")
    for name, p in (("before", before), ("after", after)):
        f = figures(p)
        shown = ", ".join(f"{g} {v:.3g}" for g, v in thresholds_of(p.params, groups).items())
        recall = "-" if f["event_recall"] is None else f"{f['detected']}/{f['machinery_clips']} {f['event_recall']:.2f}"
        delay = "-" if f["report_delay_s_median"] is None else f"{f['report_delay_s_median']:.2f} s"
        lines.append(f"{name:7} {f['rule']:10} {shown:28} {recall:>14} {f['false_alarms']:>13} "
                     f"{f['false_alarms_per_hour']:>9.2f} {delay:>25}")
    return lines
