"""The model report: `report.md` with plots, beside the bundle. Written for the person deciding
whether this model may go to the field, so it leads with the int8 figures the device will live by."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_report(result, out_dir: Path, command: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    labels = m["labels"]

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for ax, kind in zip(axes, ("keras", "float32", "int8")):
        cm = np.array(m["test"][kind]["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
        ax.set_xticks(range(len(labels)), labels, rotation=30)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"{kind}: bal. acc {m['test'][kind]['balanced_accuracy']:.3f}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=100)
    plt.close(fig)

    plot_training(plt, m["training"], out_dir / "training.png", loss="training loss (weighted)",
                  score="validation balanced accuracy")
    plot_thresholds(plt, result.curves, m["thresholds"], out_dir / "precision_recall.png", what="validation, int8")

    worst = result.worst
    if worst:
        cols = min(8, len(worst))
        rows = int(np.ceil(len(worst) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, w in zip(axes.ravel(), worst):
            with Image.open(w["path"]) as img:
                ax.imshow(img.convert("RGB"))
            ax.set_title(f"true {w['true']}\nsaid {w['predicted']} {w['score']:.2f}", fontsize=6)
        fig.tight_layout()
        fig.savefig(out_dir / "worst_errors.png", dpi=110)
        plt.close(fig)

    lines = [f"# Model report: {result.manifest.name} {result.manifest.version}", ""]
    lines += ["Reproduce:", "", "```sh", command, "```", ""]
    lines += ["## Test split (groups never seen in training)", "",
              "| model | accuracy | balanced accuracy | " + " | ".join(f"{l} P / R / F1" for l in labels) + " |",
              "|---|---|---|" + "---|" * len(labels)]
    rows = [("Keras float", "keras"), ("float32 TFLite (LiteRT)", "float32"), ("**int8 TFLite (LiteRT), shipped**", "int8"),
            ("int8 TFLite (tflite-runtime 2.14)", "int8_tflite_runtime")]
    for title, key in rows:
        t = m["test"][key]
        cells = " | ".join(f"{t['per_class'][l]['precision']:.3f} / {t['per_class'][l]['recall']:.3f} / {t['per_class'][l]['f1']:.3f}" for l in labels)
        lines.append(f"| {title} | {t['accuracy']:.4f} | {t['balanced_accuracy']:.4f} | {cells} |")
    if "baseline" in m["test"]:
        t = m["test"]["baseline"]
        cells = " | ".join(f"{t['per_class'][l]['precision']:.3f} / {t['per_class'][l]['recall']:.3f} / {t['per_class'][l]['f1']:.3f}" for l in labels)
        lines.append(f"| baseline: {t['what']} | {t['accuracy']:.4f} | {t['balanced_accuracy']:.4f} | {cells} |")
    a = m["agreement"]
    lines += ["", f"int8 vs float32 argmax agreement: **{a['int8_vs_float32']:.4f}**; int8 on LiteRT vs tflite-runtime: "
              f"{a['int8_litert_vs_tflite_runtime']:.4f} (largest score difference {a['max_abs_score_diff_litert_vs_tflite_runtime']:.4f}).", ""]
    lines += ["## Alert threshold", "", "Chosen on the validation split, on the int8 model's scores, for the target precision:", "",
              "| label | threshold | target precision | val precision | val recall | test precision | test recall |", "|---|---|---|---|---|---|---|"]
    lines += threshold_rows(m.get("thresholds", {}))
    lines += ["", "## Size and speed (batch 1, one thread, this machine)", "", "| model | size | backend | latency |", "|---|---|---|---|"]
    lines += runtime_rows(m, lambda n: f"{n / 1e6:.2f} MB")
    s = m["split"]
    lines += ["", "## Data and split", "",
              f"train {s['train']}, validation {s['val']}, test {s['test']} pictures; a group (one place) is never split. "
              f"{s['groups_merged']} given groups were merged by the leakage checks ({', '.join(f'{k}: {v}' for k, v in s['merges'].items()) or 'none'}).",
              "", "| split | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name, counts in s["per_label"].items():
        lines.append(f"| {name} | " + " | ".join(str(counts[l]) for l in labels) + " |")
    tr = m["training"]
    lines += ["", f"Training took {tr['seconds'] / 60:.1f} min; the weights of epoch {tr['best_epoch']} (best validation balanced accuracy) were kept.", "",
              "![confusion matrices](confusion.png)", "", "![training](training.png)", "", "![precision-recall](precision_recall.png)", ""]
    if worst:
        lines += ["## Worst test errors (most confident mistakes of the int8 model)", "", "![worst errors](worst_errors.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_training(plt, training: dict, path: Path, *, loss: str, score: str) -> None:
    """Loss and validation score per epoch; dotted lines between phases, a dashed one at the kept epoch."""
    epochs = training["epochs"]
    fig, ax1 = plt.subplots(figsize=(7, 3.8))
    xs = [e["epoch"] for e in epochs]
    ax1.plot(xs, [e["loss"] for e in epochs], "o-", color="tab:red", label=loss)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax2 = ax1.twinx()
    ax2.plot(xs, [e["val_balanced_accuracy"] for e in epochs], "s-", color="tab:blue", label=score)
    ax2.set_ylabel("balanced accuracy")
    for k in range(1, len(epochs)):
        if epochs[k]["phase"] != epochs[k - 1]["phase"]:
            ax1.axvline(xs[k] - 0.5, color="grey", linestyle=":")
    ax1.axvline(training["best_epoch"], color="tab:green", linestyle="--", label="kept (best validation)")
    fig.legend(loc="lower center", ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_thresholds(plt, curves: dict, thresholds: dict, path: Path, *, what: str) -> None:
    """Precision-recall per alert label, with the chosen threshold marked."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, curve in curves.items():
        line, = ax.plot(curve["recall"], curve["precision"], label=f"{label} ({what})")
        t = thresholds[label]
        ax.plot([t["val_recall"]], [t["val_precision"]], "o", color=line.get_color())
        ax.annotate(f"{t['threshold']:.3f}", (t["val_recall"], t["val_precision"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=7)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def threshold_rows(thresholds: dict) -> list[str]:
    """Table rows: label | threshold | target precision | val precision | val recall | test precision | test recall."""
    return [f"| {label} | {t['threshold']:.4f} | {t['target_precision']} | {t['val_precision']:.4f} | {t['val_recall']:.4f} | "
            f"{t['test_precision']:.4f} | {t['test_recall']:.4f} |" for label, t in thresholds.items()]


def runtime_rows(m: dict, size) -> list[str]:
    """Table rows: model | size | backend | latency, from metrics.json's `runtime` and `size_bytes`."""
    rows = []
    for key, r in sorted(m["runtime"].items()):
        kind, backend = key.split("/")
        rows.append(f"| {kind} | {size(m['size_bytes'][kind])} | {backend} {r['version']} | {r['latency_ms_batch1_1thread']:.2f} ms |")
    return rows
