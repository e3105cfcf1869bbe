"""The sound model's report (`report.md` + plots) and its attribution list (`ATTRIBUTION.md`), beside the
bundle. Like `converter.report`, it leads with the int8 figures the device lives by, per window and per clip,
beside the baseline, and says which source classes the false alarms come from."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from converter.audio_event_report import event_lines, plot_events
from converter.report import plot_thresholds, plot_training, runtime_rows, threshold_rows


def _confusion_plot(plt, panels, labels, path: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (title, table) in zip(np.atleast_1d(axes), panels):
        cm = np.array(table["confusion"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=30)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"{title}: bal. acc {table['balanced_accuracy']:.3f}", fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _row(title: str, t: dict, labels) -> str:
    cells = " | ".join(f"{t['per_class'][l]['precision']:.3f} / {t['per_class'][l]['recall']:.3f}" for l in labels)
    return f"| {title} | {t['accuracy']:.4f} | {t['balanced_accuracy']:.4f} | {cells} |"


def write_audio_report(result, out_dir: Path, command: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    labels = m["labels"]
    kinds = [("Keras float", "keras"), ("float32 TFLite (LiteRT)", "float32"), ("**int8 TFLite (LiteRT), shipped**", "int8")]
    if "baseline" in m["test"]:
        kinds.append(("baseline: " + m["test"]["baseline"]["what"], "baseline"))

    _confusion_plot(plt, [("windows, float32", m["test"]["float32"]), ("windows, int8", m["test"]["int8"]),
                          ("clips, int8", m["test_clip"]["int8"]["labels"])], labels, out_dir / "confusion.png")

    plot_training(plt, m["training"], out_dir / "training.png", loss="training loss (weighted, augmented)",
                  score="validation balanced accuracy (windows)")
    plot_thresholds(plt, result.curves, m["thresholds"], out_dir / "precision_recall.png",
                    what="validation windows, int8")

    head = "| model | accuracy | balanced accuracy | " + " | ".join(f"{l} P / R" for l in labels) + " |"
    rule = "|---|---|---|" + "---|" * len(labels)
    lines = [f"# Model report: {result.manifest.name} {result.manifest.version}", "",
             "Reproduce:", "", "```sh", command, "```", ""]
    if "events" in m:
        plot_events(m, out_dir / "events.png")
        lines += event_lines(m)
    lines += ["## Test split (recordings never seen in training)", "",
             f"Labels: {', '.join(labels)}; alert labels: {', '.join(m['alert_labels'])}. "
             + "; ".join(f"{l} = {', '.join(c)}" for l, c in m["label_map"].items()) + ".", "",
             f"### Per window ({m['split']['windows']['test']} windows of {m['features']['window_s']} s, "
             f"every {m['features']['eval_hop_s']} s, near-silent windows left out)", "", head, rule]
    lines += [_row(title, m["test"][key], labels) for title, key in kinds[:3]]
    lines.append(_row("int8 TFLite (tflite-runtime 2.14)", m["test"]["int8_tflite_runtime"], labels))
    lines += [_row(title, m["test"][key], labels) for title, key in kinds[3:]]
    lines += ["", f"### Per clip ({m['split']['test']} clips; clip score = mean of its window scores)", "", head, rule]
    lines += [_row(title, m["test_clip"][key]["labels"], labels) for title, key in kinds]
    lines += ["", "### Alert vs background (is the most likely label an alert label?)", "",
              "| model | windows: balanced accuracy | alert recall | background recall | clips: balanced accuracy | alert recall | background recall |",
              "|---|---|---|---|---|---|---|"]
    for title, key in kinds:
        w, c = m["test_binary"][key], m["test_clip"][key]["binary"]
        lines.append(f"| {title} | {w['balanced_accuracy']:.4f} | {w['per_class']['alert']['recall']:.3f} | "
                     f"{w['per_class']['background']['recall']:.3f} | {c['balanced_accuracy']:.4f} | "
                     f"{c['per_class']['alert']['recall']:.3f} | {c['per_class']['background']['recall']:.3f} |")
    a = m["agreement"]
    lines += ["", f"int8 vs float32 argmax agreement (windows): **{a['int8_vs_float32']:.4f}**; int8 on LiteRT vs tflite-runtime: "
              f"{a['int8_litert_vs_tflite_runtime']:.4f} (largest score difference {a['max_abs_score_diff_litert_vs_tflite_runtime']:.4f}).", ""]
    lines += ["## Alert thresholds", "", "Chosen per alert label on the validation windows, on the int8 model's scores, for the target precision:", "",
              "| label | threshold | target precision | val precision | val recall | test precision | test recall |", "|---|---|---|---|---|---|---|"]
    lines += threshold_rows(m["thresholds"])
    lines += ["", "### What raises an alert at these thresholds (test split, int8)", "",
              "A window alerts when any alert label reaches its threshold; a clip alerts when any of its windows does. "
              "Precision and recall here are alert vs background (an engine window that alerts as drilling counts as found).", "",
              "| unit | alerts | precision | recall | false alarms | false alarms by source class (alarms of all) |", "|---|---|---|---|---|---|"]
    for unit, r in m["alerts_at_thresholds"].items():
        by = ", ".join(f"{c} {n}" for c, n in r["false_alarms_by_class"].items()) or "none"
        lines.append(f"| {unit.replace('_', ' ')} | {r['alerts']} | {r['precision']:.4f} | {r['recall']:.4f} | {r['false_alarms']} | {by} |")
    lines += ["", "## Size and speed (batch 1, one thread, this machine)", "", "| model | size | backend | latency per window |", "|---|---|---|---|"]
    lines += runtime_rows(m, lambda n: f"{n / 1e3:.0f} kB")
    s = m["split"]
    lines += ["", "## Data and split", "",
              f"train {s['train']}, validation {s['val']}, test {s['test']} clips ({s['groups']['train']}, {s['groups']['val']}, "
              f"{s['groups']['test']} source recordings); a recording is never split. Windows: train {s['windows']['train']} "
              f"(every {m['features']['train_hop_s']} s), validation {s['windows']['val']}, test {s['windows']['test']}; near-silent "
              f"windows dropped: {', '.join(f'{k} {v}' for k, v in s['silent_windows_dropped'].items())}. "
              f"Forced into test: {', '.join(s['held_out_groups_in_test']) or 'none'}.", "",
              "| split | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name, counts in s["per_label"].items():
        lines.append(f"| {name} (clips) | " + " | ".join(str(counts[l]) for l in labels) + " |")
    for name, counts in s["per_label_windows"].items():
        lines.append(f"| {name} (windows) | " + " | ".join(str(counts[l]) for l in labels) + " |")
    tr = m["training"]
    cfg = tr["config"]
    arch = f"MobileNetV2 alpha {cfg['alpha']}" if cfg["arch"] == "mobilenet" else f"small CNN (first block {cfg['width']} filters)"
    if cfg.get("cut_at"):
        arch += f" up to `{cfg['cut_at']}`"
    start = f"started from `{Path(cfg['weights']).name}`" if cfg.get("weights") else "from scratch"
    lines += ["", f"Model: {arch}, {start}, on {m['features']['frames']} x {m['features']['n_mels']} log-mel windows. "
              f"Training took {tr['seconds'] / 60:.1f} min; the weights of epoch {tr['best_epoch']} (best validation balanced accuracy) were kept.", "",
              "![confusion matrices](confusion.png)", "", "![training](training.png)", "", "![precision-recall](precision_recall.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_attribution(data_root: Path, clips, out_dir: Path) -> Path | None:
    """ATTRIBUTION.md for the clips that shaped the model, from the data's `attribution.csv` (when it has one):
    every clip whose licence asks for attribution (CC-BY, CC-BY-NC, CC-Sampling+), one row per recording."""
    source = Path(data_root) / "attribution.csv"
    if not source.is_file():
        return None
    used = {str(c.path.relative_to(data_root)) for c in clips if c.path.is_relative_to(data_root)}
    rows: dict[tuple[str, str], dict] = {}
    with open(source, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["path"] in used and ("BY" in r["licence"] or "Sampling" in r["licence"]):
                row = rows.setdefault((r["licence"], r["freesound_id"]), {**r, "clips": 0})
                row["clips"] += 1
    lines = ["# Attribution: sound clips this model learnt from", "",
             f"Made by `nv-convert audio` from `{source}`: the training and validation clips whose licence asks for "
             "attribution, one row per freesound recording. Clips under CC0 need none and are not listed.", ""]
    for licence in sorted({k[0] for k in rows}):
        group = sorted((v for k, v in rows.items() if k[0] == licence), key=lambda v: int(v["freesound_id"]))
        lines += [f"## {licence} ({group[0]['licence_url']}): {len(group)} recordings, {sum(v['clips'] for v in group)} clips", ""]
        if licence == "CC-BY-NC-3.0":
            lines += ["UrbanSound8K (J. Salamon, C. Jacoby, J. P. Bello, \"A Dataset and Taxonomy for Urban Sound Research\", "
                      "ACM MM 2014), clips from freesound.org. The copy used ships no credits file: recordings are named by "
                      "freesound id (https://freesound.org/s/ID/).", "",
                      ", ".join(v["freesound_id"] for v in group), ""]
            continue
        lines += ["| freesound id | title | author | licence | clips |", "|---|---|---|---|---|"]
        lines += [f"| [{v['freesound_id']}]({v['source_url']}) | {v['title']} | {v['author']} | {v['licence']} | {v['clips']} |" for v in group]
        lines.append("")
    path = out_dir / "ATTRIBUTION.md"
    path.write_text("\n".join(lines))
    return path
