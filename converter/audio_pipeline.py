"""Sound model from labelled clips to a verified bundle: clips -> grouped split -> log-mel windows ->
train -> (shared with images) quantize, verify on both edge backends, threshold, guard, bundle.

Scores are reported per window (what the device classifies) and per clip. A clip's score is the MEAN
of its windows' scores (its predicted label is the argmax of that mean); a clip alerts at the thresholds
when ANY of its windows does, because that is when the device would raise an event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from converter.audio_dataset import Clip, LabelMap, Windows, class_counts, label_counts, split_clips, windows_of
from converter.audio_train import AudioTrainConfig, train
from converter.metrics import summary
from converter.pipeline import Result, choose_thresholds, finish_bundle, log, quantize_and_verify, score_metrics
from edge import __version__
from edge.features.logmel import LogMelSpec, normalise
from edge.features.pixels import InputSpec
from edge.model.bundle import Manifest, TrainedOn, write_bundle


@dataclass(frozen=True)
class AudioOptions:
    name: str
    version: str = "1.0.0"
    target_precision: float = 0.9
    max_drop_pp: float = 1.0
    rep_samples: int = 300
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    train_hop_s: float = 0.25  # overlapping training windows: shifted views of the same sound
    eval_hop_s: float = 0.5  # the device's default hop (edge.config audio.hop_s)
    hold_out_groups: tuple[str, ...] = ()
    source: str = ""
    licences: tuple[str, ...] = ()  # added to the licences found in the data's index
    baseline: bool = False
    target_fa_per_hour: float = 1.0  # the event rule and thresholds are chosen on validation for this
    class_weight_factors: tuple[tuple[str, float], ...] = ()  # (label, factor): that label's training weight times factor


def convert_audio(clips: list[Clip], label_map: LabelMap, out: Path, options: AudioOptions, config: AudioTrainConfig,
                  spec: LogMelSpec = LogMelSpec(), root: Path | None = None) -> Result:
    """Train, quantize and verify; write `out` (.nvm) and `metrics.json` beside it.
    Raises QuantizationDropError (after writing the metrics, before writing the bundle)."""
    labels, alert = label_map.labels, label_map.alert
    parts = split_clips(clips, labels, options.fractions, options.seed, options.hold_out_groups)
    log("split (groups whole): " + ", ".join(f"{k} {len(v)} clips" for k, v in parts.items()))
    t0 = time.time()
    win = {k: windows_of(v, spec, options.train_hop_s if k == "train" else options.eval_hop_s) for k, v in parts.items()}
    y = {k: w.labels(labels) for k, w in win.items()}
    # One scalar mean/std over every training log-mel value: the spec holds scalars, and a per-band
    # normalisation would erase the spectral tilt that tells a hum from a hiss.
    spec = replace(spec, mean=round(float(win["train"].features.mean()), 4), std=round(float(win["train"].features.std()), 4))
    log(f"windows ready in {time.time() - t0:.0f}s: " + ", ".join(f"{k} {len(w.clip)}" for k, w in win.items())
        + f"; log-mel mean {spec.mean}, std {spec.std}")
    x = {k: normalise(w.features, spec) for k, w in win.items() if k != "train"}

    counts = np.bincount(y["train"], minlength=len(labels)).astype(np.float64)
    weights = {k: float(len(y["train"]) / (len(labels) * max(1.0, c))) for k, c in enumerate(counts)}
    for label, factor in options.class_weight_factors:
        if label not in labels:
            raise ValueError(f"--class-weight {label}={factor}: {label!r} is not a label (labels: {', '.join(labels)})")
        weights[labels.index(label)] *= factor
    log("class weights: " + ", ".join(f"{label} {weights[k]:.3f}" for k, label in enumerate(labels)))
    background = win["train"].features[~np.isin(y["train"], [labels.index(a) for a in alert])]
    baseline = None
    if options.baseline:
        from converter.audio_baseline import band_stats_baseline

        baseline = band_stats_baseline(win["train"].features, y["train"], win["test"].features, y["test"], labels, weights,
                                       seed=options.seed)
        log(f"baseline test balanced accuracy {summary(y['test'], baseline, labels)['balanced_accuracy']:.4f} (windows)")
    model, history = train(win["train"].features, y["train"], win["val"].features, y["val"], labels, spec, weights, config,
                           background=background)
    log(f"trained in {history.seconds / 60:.1f} min, best epoch {history.best_epoch}")

    rng = np.random.default_rng(options.seed)
    pick = np.sort(rng.choice(len(y["train"]), min(options.rep_samples, len(y["train"])), replace=False))
    rep = normalise(win["train"].features[pick], spec)
    keras_test = model.predict(x["test"], batch_size=256, verbose=0)

    shaped = parts["train"] + parts["val"]  # the clips that shaped the model (weights, epoch, thresholds)
    manifest = Manifest(
        name=options.name, version=options.version, task="audio", labels=labels, alert_labels=alert,
        thresholds={a: 0.5 for a in alert},
        input=InputSpec(size=(spec.n_mels, spec.frames), colour="log-mel", dtype="int8"),
        trained_on=TrainedOn(source=options.source or str(root or ""),
                             licences=tuple(sorted({c.licence for c in shaped if c.licence} | set(options.licences)))),
        converter_version=__version__, min_runtime="0.1.0", audio=spec.to_dict(),
    )
    verified = quantize_and_verify(model, rep, manifest, x["val"], x["test"])
    metrics = score_metrics(labels, y["test"], keras_test, verified)
    thresholds, metrics["thresholds"], curves = choose_thresholds(
        labels, alert, y["val"], verified.val_int8, y["test"], verified.test_int8, options.target_precision)
    scores = {"keras": keras_test, "float32": verified.runs[("float32", "litert")][0], "int8": verified.test_int8}
    if baseline is not None:
        scores["baseline"] = baseline
        metrics["test"]["baseline"] = summary(y["test"], baseline, labels)
        metrics["test"]["baseline"]["what"] = BASELINE_WHAT
    metrics["test_binary"] = {k: binary_summary(y["test"], s, labels, alert) for k, s in scores.items()}
    metrics["test_clip"] = {k: clip_summary(win["test"], s, labels, alert) for k, s in scores.items()}
    metrics["alerts_at_thresholds"] = alert_report(win["test"], verified.test_int8, labels, thresholds)
    metrics["split"] = _split_metrics(parts, win, labels, options)
    metrics["training"] = {"seconds": round(history.seconds, 1), "best_epoch": history.best_epoch, "epochs": history.epochs,
                           "config": {k: v for k, v in config.__dict__.items()},
                           "class_weights": {label: round(weights[k], 4) for k, label in enumerate(labels)},
                           "class_weight_factors": dict(options.class_weight_factors)}
    metrics["features"] = {**spec.to_dict(), "window_s": round(spec.window_s, 4), "train_hop_s": options.train_hop_s, "eval_hop_s": options.eval_hop_s,
                           "clip_score": "mean of window scores; clip alerts when any window reaches its threshold"}
    metrics["labels"] = list(labels)
    metrics["alert_labels"] = list(alert)
    metrics["label_map"] = {label: sorted(c for c, l in label_map.classes.items() if l == label) for label in labels}
    chosen, record = _operating_point(manifest, label_map, parts, verified, thresholds, metrics, options)
    final = finish_bundle(out, metrics, chosen, verified, options.max_drop_pp,
                          _manifest_metrics(metrics) | {"operating_point": record})
    log(f"wrote {out}")
    return AudioResult(bundle=out, manifest=final, metrics=metrics, history=history, worst=[], curves=curves, parts=parts)


def _operating_point(manifest: Manifest, label_map: LabelMap, parts: dict, verified, window_thresholds: dict,
                     metrics: dict, options: AudioOptions) -> tuple[Manifest, dict]:
    """Groups, event rule and thresholds chosen on the validation clips as the unit sees them (its windows,
    int8 on LiteRT in a clean process, its EventTracker); metrics["events"] gets the figures on test."""
    import tempfile

    from converter.audio_operating import apply, event_metrics, provenance, select
    from converter.audio_scoring import LabelledClip, score_in_clean_process
    from edge.audio.listen import DEFAULT_HOP_S, DEFAULT_RMS_GATE_DBFS

    groups = label_map.alert_groups()
    plain = {a: (a,) for a in label_map.alert}
    draft = replace(manifest, groups=None if groups == plain else groups, thresholds={g: 0.5 for g in groups})
    scored = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_bundle(Path(tmp) / "int8.nvm", verified.int8_bytes, draft)
        for name in ("val", "test"):
            log(f"events: scoring the {name} clips as the unit does")
            clips = [LabelledClip(c.path, c.cls, c.label in label_map.alert, c.group) for c in parts[name]]
            scored[name] = score_in_clean_process(Path(tmp) / "int8.nvm", clips)
    selection = select(scored["val"], manifest.labels, groups, None, options.target_fa_per_hour)
    before = ({"rule": "k_of_n", "k": 2, "n": 3, "threshold": dict(window_thresholds)}, plain,
              f"per-label window thresholds for precision {options.target_precision}, 2 of 3")
    hop = dict(hop_s=DEFAULT_HOP_S, rms_gate_dbfs=DEFAULT_RMS_GATE_DBFS)
    events = event_metrics(selection, scored["val"], scored["test"], manifest.labels, groups, None, before, **hop)
    where = f"the {len(scored['val'])} validation clips"
    record = provenance(selection, groups, by="nv-convert audio", where=where, data={"split": "val", **events["validation"]["clips"]}, **hop)
    record["test"] = events["test"]["chosen"]
    metrics["events"] = events | {"how": record["how"]}
    log(f"events: {record['how']}")
    return apply(draft, groups, selection.choice.point, record), record


@dataclass
class AudioResult(Result):
    parts: dict = None  # split name -> clips


BASELINE_WHAT = "logistic regression on per-band log-mel mean and std of each window (float)"


def binary_summary(y: np.ndarray, scores: np.ndarray, labels: tuple[str, ...], alert: tuple[str, ...]) -> dict:
    """Alert vs background by argmax: is the most likely label an alert label?"""
    is_alert = np.isin(np.arange(len(labels)), [labels.index(a) for a in alert])
    truth = np.where(is_alert[y], 0, 1)
    said = np.where(is_alert[scores.argmax(1)], 0, 1)
    return summary(truth, np.eye(2)[said], ("alert", "background"))


def clip_scores(windows: Windows, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clip indices that have windows, mean window score per clip)."""
    ids = np.unique(windows.clip)
    return ids, np.stack([scores[windows.clip == k].mean(0) for k in ids])


def clip_summary(windows: Windows, scores: np.ndarray, labels, alert) -> dict:
    ids, mean = clip_scores(windows, scores)
    y = np.array([labels.index(windows.clips[k].label) for k in ids])
    return {"labels": summary(y, mean, labels), "binary": binary_summary(y, mean, labels, alert)}


def alert_report(windows: Windows, scores: np.ndarray, labels, thresholds: dict[str, float]) -> dict:
    """What alerts at the recommended thresholds on test: per window and per clip (any window), and the
    source classes of the false alarms."""
    limits = np.array([thresholds.get(label, np.inf) for label in labels])
    fired = (scores >= limits).any(1)
    true_alert = np.array([windows.clips[k].label in thresholds for k in windows.clip])

    def rates(fire, truth, classes):
        tp, fp = int(np.sum(fire & truth)), int(np.sum(fire & ~truth))
        false = {}
        for cls in np.asarray(classes)[fire & ~truth]:
            false[str(cls)] = false.get(str(cls), 0) + 1
        totals = {}
        for cls in np.asarray(classes)[~truth]:
            totals[str(cls)] = totals.get(str(cls), 0) + 1
        return {"alerts": int(fire.sum()), "precision": round(tp / max(1, fire.sum()), 4),
                "recall": round(tp / max(1, truth.sum()), 4), "false_alarms": fp,
                "false_alarms_by_class": {c: f"{n} of {totals[c]}" for c, n in sorted(false.items(), key=lambda kv: -kv[1])}}

    window_classes = [windows.clips[k].cls for k in windows.clip]
    ids = np.unique(windows.clip)
    clip_fired = np.array([fired[windows.clip == k].any() for k in ids])
    clip_truth = np.array([windows.clips[k].label in thresholds for k in ids])
    return {"window": rates(fired, true_alert, window_classes),
            "clip_any_window": rates(clip_fired, clip_truth, [windows.clips[k].cls for k in ids])}


def _split_metrics(parts: dict[str, list[Clip]], win: dict[str, Windows], labels, options: AudioOptions) -> dict:
    out = {k: len(v) for k, v in parts.items()}
    out.update({
        "unit": "clips (groups = source recordings, never split)",
        "windows": {k: int(len(w.clip)) for k, w in win.items()},
        "silent_windows_dropped": {k: w.dropped for k, w in win.items()},
        "groups": {k: len({c.group for c in v}) for k, v in parts.items()},
        "held_out_groups_in_test": list(options.hold_out_groups),
        "per_label": {k: label_counts(v, labels) for k, v in parts.items()},
        "per_label_windows": {k: {label: int(np.sum(w.labels(labels) == i)) for i, label in enumerate(labels)} for k, w in win.items()},
        "per_class": {k: class_counts(v) for k, v in parts.items()},
        "groups_merged": 0,
    })
    return out


def _manifest_metrics(metrics: dict) -> dict:
    """The headline figures, small enough to travel in every bundle."""
    t = metrics["test"]
    return {
        "test_balanced_accuracy_windows": {k: t[k]["balanced_accuracy"] for k in ("keras", "float32", "int8")},
        "test_balanced_accuracy_clips_int8": metrics["test_clip"]["int8"]["labels"]["balanced_accuracy"],
        "test_alert_vs_background_balanced_accuracy_int8": {
            "windows": metrics["test_binary"]["int8"]["balanced_accuracy"],
            "clips": metrics["test_clip"]["int8"]["binary"]["balanced_accuracy"]},
        "test_per_class_int8": t["int8"]["per_class"],
        "agreement_int8_vs_float32": metrics["agreement"]["int8_vs_float32"],
        "split": {k: metrics["split"][k] for k in ("train", "val", "test")},
        "thresholds": metrics.get("thresholds", {}),
    }
