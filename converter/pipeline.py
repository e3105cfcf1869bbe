"""Image model from a folder to a verified bundle: dataset -> split -> train -> quantize -> verify
-> threshold -> bundle + metrics. Each step is its own module; this one only runs them in order.
The steps after training (`quantize_and_verify`, `score_metrics`, `choose_thresholds`, `finish_bundle`)
are shared with the audio pipeline (`converter.audio_pipeline`)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from converter.crosscheck import run_on_backend
from converter.dataset import Dataset, class_weights, label_counts, split
from converter.metrics import precision_recall_curve, summary, threshold_for_precision
from converter.quantize import to_tflite
from converter.train import TrainConfig, load_pixels, train
from edge import __version__
from edge.features.pixels import InputSpec, normalise
from edge.model.bundle import Manifest, TrainedOn, write_bundle

BACKENDS = ("litert", "tflite-runtime")  # every converted model must run on both


class QuantizationDropError(Exception):
    """int8 is worse than float by more than allowed: the bundle must not ship."""


@dataclass(frozen=True)
class ConvertOptions:
    name: str
    version: str = "1.0.0"
    alert_labels: tuple[str, ...] = ()
    target_precision: float = 0.9
    max_drop_pp: float = 1.0
    rep_samples: int = 500
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    source: str = ""
    licences: tuple[str, ...] = ()
    ground_resolution_m: float | None = None
    tile_px: int | None = None  # None: the dataset's common size, if any
    keep_keras: Path | None = None  # also save the trained float Keras model here (for later experiments)
    baseline: bool = False  # also score the linear-probe baseline on the same split


@dataclass
class Result:
    bundle: Path
    manifest: Manifest
    metrics: dict
    history: object
    worst: list[dict]  # worst test errors, for the report
    curves: dict  # precision-recall on validation, per alert label


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def convert_images(
    dataset: Dataset,
    out: Path,
    options: ConvertOptions,
    config: TrainConfig,
    representative_override: np.ndarray | None = None,
) -> Result:
    """Train, quantize and verify; write `out` (.nvm) and `metrics.json` beside it.
    Raises QuantizationDropError (after writing the metrics, before writing the bundle)."""
    labels = dataset.labels
    alert = options.alert_labels or ((labels[0],) if len(labels) == 2 else ())
    unknown = [a for a in alert if a not in labels]
    if unknown:
        raise ValueError(f"alert labels {unknown} are not in the dataset's labels {list(labels)}")
    spec = InputSpec(size=(config.size, config.size), dtype="int8")
    parts = split(dataset, options.fractions, options.seed)
    for name, samples in parts.items():
        missing = [label for label, n in label_counts(samples, labels).items() if n == 0]
        if missing:
            raise ValueError(f"the {name} split has no {missing} pictures: add data or groups for them")
    log("split (groups whole): " + ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        + f"; {dataset.groups_merged} groups merged")
    t0 = time.time()
    px = {k: load_pixels(v, spec) for k, v in parts.items()}
    y = {k: np.array([labels.index(s.label) for s in v]) for k, v in parts.items()}
    log(f"pixels ready in {time.time() - t0:.0f}s")

    weights = class_weights(parts["train"], labels)
    baseline = None
    if options.baseline:
        from converter.baseline import linear_probe

        baseline = linear_probe(config.weights, config.alpha, spec, (px["train"], y["train"]), (px["test"], y["test"]),
                                labels, weights, seed=options.seed)
        log(f"baseline (linear probe) test balanced accuracy {baseline['balanced_accuracy']:.4f}")
    model, history = train(px["train"], y["train"], px["val"], y["val"], labels, spec, weights, config)
    log(f"trained in {history.seconds / 60:.1f} min, best epoch {history.best_epoch}")
    if options.keep_keras is not None:
        model.save(options.keep_keras)

    rng = np.random.default_rng(options.seed)
    if representative_override is not None:
        rep = representative_override
    else:
        pick = rng.choice(len(px["train"]), min(options.rep_samples, len(px["train"])), replace=False)
        rep = normalise(px["train"][np.sort(pick)], spec)
    keras_test = model.predict(normalise(px["test"], spec), batch_size=256, verbose=0)

    manifest = Manifest(
        name=options.name,
        version=options.version,
        task="image",
        labels=labels,
        alert_labels=alert,
        thresholds={a: 0.5 for a in alert},
        input=spec,
        trained_on=TrainedOn(
            source=options.source or str(dataset.root),
            tile_px=options.tile_px or dataset.tile_px,
            ground_resolution_m=options.ground_resolution_m,
            licences=options.licences,
        ),
        converter_version=__version__,
        min_runtime="0.1.0",
    )
    verified = quantize_and_verify(model, rep, manifest, px["val"], px["test"])
    metrics = {**score_metrics(labels, y["test"], keras_test, verified), **_split_metrics(parts, dataset, history)}
    thresholds, metrics["thresholds"], curves = choose_thresholds(
        labels, alert, y["val"], verified.val_int8, y["test"], verified.test_int8, options.target_precision)
    metrics["labels"] = list(labels)
    if baseline is not None:
        metrics["test"]["baseline"] = baseline
    final = finish_bundle(out, metrics, replace(manifest, thresholds=thresholds), verified, options.max_drop_pp,
                          _manifest_metrics(metrics))

    worst = _worst_errors(parts["test"], y["test"], verified.test_int8, labels)
    log(f"wrote {out}")
    return Result(bundle=out, manifest=final, metrics=metrics, history=history, worst=worst, curves=curves)


@dataclass(frozen=True)
class Verified:
    """A trained model converted to float32 and int8 TFLite and run on every edge backend (TF-free)."""

    runs: dict  # (kind, backend) -> (test scores, {"latency_ms", "version", ...})
    val_int8: np.ndarray  # int8 scores on the validation inputs (LiteRT): thresholds are chosen on these
    sizes: dict[str, int]  # kind -> bytes
    int8_bytes: bytes

    @property
    def test_int8(self) -> np.ndarray:
        return self.runs[("int8", "litert")][0]


def quantize_and_verify(model, representative: np.ndarray, manifest: Manifest, val_inputs: np.ndarray,
                        test_inputs: np.ndarray) -> Verified:
    """Convert `model` to float32 and int8 (calibrated on `representative`, normalised training inputs), and
    score both on every backend in a process without TensorFlow. Inputs are what `edge.model.loaded.Model.predict`
    takes: uint8 pixels for images, normalised log-mel windows for audio."""
    runs, sizes, data = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("float32", "int8"):
            data[kind] = to_tflite(model, kind, None if kind == "float32" else representative)
            path = Path(tmp) / f"{kind}.nvm"
            write_bundle(path, data[kind], replace(manifest, input=replace(manifest.input, dtype=kind)))
            sizes[kind] = len(data[kind])
            for backend in BACKENDS:
                log(f"checking {kind} on {backend}")
                runs[(kind, backend)] = run_on_backend(path, test_inputs, backend)
        val_int8, _ = run_on_backend(Path(tmp) / "int8.nvm", val_inputs, "litert", repeat=1)
    return Verified(runs=runs, val_int8=val_int8, sizes=sizes, int8_bytes=data["int8"])


def score_metrics(labels, y_test: np.ndarray, keras_test: np.ndarray, verified: Verified) -> dict:
    """Test metrics of Keras, float32 and int8 (both backends), their agreement, sizes and latency."""
    int8 = verified.test_int8
    f32 = verified.runs[("float32", "litert")][0]
    legacy = verified.runs[("int8", "tflite-runtime")][0]
    test = {
        "keras": summary(y_test, keras_test, labels),
        "float32": summary(y_test, f32, labels),
        "int8": summary(y_test, int8, labels),
        "int8_tflite_runtime": summary(y_test, legacy, labels),
    }
    runtime = {}
    for (kind, backend), (_, info) in verified.runs.items():
        runtime[f"{kind}/{backend}"] = {"latency_ms_batch1_1thread": info["latency_ms"], "version": info["version"]}
    return {
        "test": test,
        "agreement": {
            "int8_vs_float32": round(float(np.mean(int8.argmax(1) == f32.argmax(1))), 4),
            "int8_vs_keras": round(float(np.mean(int8.argmax(1) == keras_test.argmax(1))), 4),
            "int8_litert_vs_tflite_runtime": round(float(np.mean(int8.argmax(1) == legacy.argmax(1))), 4),
            "max_abs_score_diff_litert_vs_tflite_runtime": round(float(np.abs(int8 - legacy).max()), 4),
        },
        "size_bytes": dict(verified.sizes),
        "runtime": runtime,
    }


def choose_thresholds(labels, alert, y_val, val_scores, y_test, test_scores, target: float) -> tuple[dict, dict, dict]:
    """Per alert label, the threshold reaching `target` precision on validation (int8 scores), and what it
    gives on test. Returns (label -> threshold, metrics per label, validation PR curves)."""
    thresholds, table, curves = {}, {}, {}
    for label in alert:
        k = labels.index(label)
        t, p, r, reached = threshold_for_precision(y_val == k, val_scores[:, k], target)
        thresholds[label] = round(t, 4)
        table[label] = {
            "threshold": round(t, 4), "val_precision": round(p, 4), "val_recall": round(r, 4),
            "target_precision": target, "target_reached": reached,
        }
        if not reached:
            log(f"warning: no threshold reaches precision {target} for {label!r} on validation; "
                f"using {t:.3f} (precision {p:.3f})")
        curves[label] = _pr_points(y_val == k, val_scores[:, k])
        sel = test_scores[:, k] >= t
        tp = int(np.sum(sel & (y_test == k)))
        table[label]["test_precision"] = round(tp / max(1, sel.sum()), 4)
        table[label]["test_recall"] = round(tp / max(1, np.sum(y_test == k)), 4)
    return thresholds, table, curves


def finish_bundle(out: Path, metrics: dict, manifest: Manifest, verified: Verified, max_drop_pp: float,
                  manifest_metrics: dict) -> Manifest:
    """Write metrics.json beside `out`; then, unless int8 lost more than `max_drop_pp` points of balanced
    accuracy against float32 on test (QuantizationDropError), the int8 bundle."""
    out.parent.mkdir(parents=True, exist_ok=True)
    metrics_path = out.parent / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    drop = (metrics["test"]["float32"]["balanced_accuracy"] - metrics["test"]["int8"]["balanced_accuracy"]) * 100
    if drop > max_drop_pp:
        raise QuantizationDropError(
            f"int8 balanced accuracy is {drop:.2f} pp below float32 on the test split (allowed: "
            f"{max_drop_pp} pp); the bundle was not written. Metrics are in {metrics_path}. "
            "Try more or more varied --rep-samples, or a model that quantizes better."
        )
    return write_bundle(out, verified.int8_bytes, replace(manifest, metrics=manifest_metrics))


def _split_metrics(parts, dataset, history) -> dict:
    return {
        "split": {
            "train": len(parts["train"]), "val": len(parts["val"]), "test": len(parts["test"]),
            "groups_merged": dataset.groups_merged,
            "merges": dict(dataset.merges),
            "per_label": {k: label_counts(v, dataset.labels) for k, v in parts.items()},
        },
        "training": {"seconds": round(history.seconds, 1), "best_epoch": history.best_epoch, "epochs": history.epochs},
    }


def _manifest_metrics(metrics: dict) -> dict:
    """The headline figures, small enough to travel in every bundle."""
    t = metrics["test"]
    return {
        "test_balanced_accuracy": {k: t[k]["balanced_accuracy"] for k in ("keras", "float32", "int8")},
        "test_per_class_int8": t["int8"]["per_class"],
        "agreement_int8_vs_float32": metrics["agreement"]["int8_vs_float32"],
        "split": {k: metrics["split"][k] for k in ("train", "val", "test", "groups_merged")},
        "thresholds": metrics.get("thresholds", {}),
    }


def _pr_points(is_positive: np.ndarray, score: np.ndarray) -> dict:
    t, p, r = precision_recall_curve(is_positive, score)
    return {"threshold": t.tolist(), "precision": p.tolist(), "recall": r.tolist()}


def _worst_errors(samples, y_true, scores, labels, n: int = 16) -> list[dict]:
    wrong = np.flatnonzero(scores.argmax(1) != y_true)
    confidence = scores[wrong, scores[wrong].argmax(1)]
    order = wrong[np.argsort(-confidence)][:n]
    return [{"path": str(samples[i].path), "true": labels[y_true[i]], "predicted": labels[int(scores[i].argmax())],
             "score": round(float(scores[i].max()), 4)} for i in order]
