"""The operating point in the model's report: `operating_points.png` and the "Operating point" section of
report.md, from the `operating_points` section of metrics.json (converter.image_release.evaluate)."""

from __future__ import annotations

import re
from pathlib import Path

SECTION = "## Operating point"
_OLD_SECTION = "## Alert threshold"  # what reports before issue 12 call it


def plot_operating_points(points: dict, path: Path) -> None:
    """Left: tile figures against the threshold (validation dashed, test solid) for the shipped TTA. Right:
    scene recall against false alarm frames per 100 km² of background, for every TTA option."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shipped = _run(points, points["shipped_tta"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, colour in (("balanced_accuracy", "tab:blue"), ("recall", "tab:green"), ("false_alarm_rate", "tab:red")):
        for split, style in (("val", "--"), ("test", "-")):
            c = shipped["curves"][split]["tile"]
            left.plot(c["threshold"], c[name], style, color=colour, label=f"{name.replace('_', ' ')} ({split})")
    left.axvline(shipped["threshold"], color="black", label=f"chosen {shipped['threshold']:.3f}")
    left.axvline(points["before"]["threshold"], color="grey", linestyle=":", label=f"before {points['before']['threshold']:.3f}")
    left.set_xlabel("threshold")
    left.set_title(f"per tile, TTA {shipped['tta']}", fontsize=9)
    left.legend(fontsize=6)
    colours = dict(zip((1, 2, 4, 8), ("tab:grey", "tab:orange", "tab:blue", "tab:purple")))
    for run in points["runs"]:
        for split, style in (("val", "--"), ("test", "-")):
            c = run["curves"][split]["scene"]
            right.plot(c["false_alarms_per_100km2"], c["scene_recall"], style, color=colours.get(run["tta"], "black"),
                       label=f"TTA {run['tta']} ({split})", linewidth=2 if run is shipped else 0.8)
    for split, marker in (("val", "s"), ("test", "o")):
        point = shipped[split]["scene"]
        right.plot([point["false_alarms_per_100km2"]], [point["scene_recall"]], marker, color="black", markersize=7,
                   label=f"chosen {shipped['threshold']:.3f} ({split})")
        before = _run(points, 1)["before"][split]["scene"]
        right.plot([before["false_alarms_per_100km2"]], [before["scene_recall"]], marker, color="tab:red", markersize=7,
                   fillstyle="none", label=f"before {points['before']['threshold']:.3f} ({split})")
    s = points["scenes"]
    right.set_xlabel(f"false alarm frames per 100 km² of background ({s['rows']}x{s['cols']} tiles = {s['scene_km2']:.1f} km²)")
    right.set_ylabel("scenes with mining found")
    right.set_title("per scene, every TTA option (dashed: validation, solid: test)", fontsize=9)
    right.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def section(points: dict, why: str, command: str = "") -> list[str]:
    """The report's "Operating point" section (markdown lines)."""
    shipped = _run(points, points["shipped_tta"])
    plain = _run(points, 1)
    s = points["scenes"]
    lines = [SECTION, "", f"Chosen on the validation split and validation scenes for **{points['target']}**, never on "
             f"test: threshold **{shipped['threshold']:.4f}** for `{points['group']}`, TTA {shipped['tta']} "
             f"({'no test-time augmentation' if shipped['tta'] == 1 else 'mean over the tile in ' + str(shipped['tta']) + ' orientations'}). "
             f"{why}", ""] + (["Reproduce (same model bytes; no TensorFlow):", "", "```sh", command, "```", ""] if command else []) + [
             f"Scenes: {s['background']} without mining and {s['with_alert']} with a square block of "
             f"{'/'.join(map(str, s['block_sizes']))} tiles a side, each {s['rows']} x {s['cols']} tiles of one split "
             f"({s['scene_km2']:.1f} km²), classified as the unit does (overlap {s['overlap']}: {s['grid_tiles']} tiles a "
             "frame). A scene is found when a tile over its block alerts; a background frame alerts when any tile does. "
             "Tiles are "
             f"{s['tile_km2']:.4f} km² of ground. Interpreter: {points['backend']}, int8.", "",
             "| | threshold | TTA | split | tile recall | tile false alarms | tile precision | tile balanced acc. | "
             "tile false alarms / 100 km² | scenes found | background frames alerting | false alarm frames / 100 km² | "
             "quiet tiles alerting |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = [("before", points["before"]["threshold"], 1, plain["before"]), ("**chosen**", shipped["threshold"], shipped["tta"], shipped)]
    for title, threshold, tta, figures in rows:
        for split in ("val", "test"):
            lines.append(f"| {title} | {threshold:.4f} | {tta} | {split} | " + _cells(figures[split]) + " |")
    lines += ["", "Every TTA option, each at the threshold its own validation figures give:", "",
              "| TTA | threshold | ms per tile | tile balanced acc. (val / test) | tile recall (test) | "
              "tile false alarms (test) | scenes found (val / test) | false alarm frames / 100 km² (val / test) |",
              "|---|---|---|---|---|---|---|---|"]
    for run in points["runs"]:
        v, t = run["val"], run["test"]
        lines.append(f"| {run['tta']} | {run['threshold']:.4f} | {run['ms_per_tile']:.2f} | "
                     f"{v['tile']['balanced_accuracy']:.4f} / {t['tile']['balanced_accuracy']:.4f} | {t['tile']['recall']:.4f} | "
                     f"{t['tile']['false_alarm_rate']:.4f} | {v['scene']['scene_recall']:.3f} / {t['scene']['scene_recall']:.3f} | "
                     f"{v['scene']['false_alarms_per_100km2']:.2f} / {t['scene']['false_alarms_per_100km2']:.2f} |")
    lines += ["", "![operating points](operating_points.png)", ""]
    return lines


def update_report(report: Path, points: dict, why: str, title: str | None = None, command: str = "") -> None:
    """Replace the report's operating point (or older "Alert threshold") section, up to the next "## "
    heading, with `section(points, why)`; append it when there is neither. `title` replaces the first line."""
    text = report.read_text() if report.is_file() else ""
    new = "\n".join(section(points, why, command)) + "\n"
    for heading in (SECTION, _OLD_SECTION):
        match = re.search(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
        if match:
            text = text[:match.start()] + new + text[match.end():]
            break
    else:
        text = text.rstrip("\n") + "\n\n" + new
    if title is not None:
        text = re.sub(r"\A# .*\n", f"# {title}\n", text) if text.startswith("# ") else f"# {title}\n\n{text}"
    report.write_text(text)


def _run(points: dict, tta: int) -> dict:
    return next(r for r in points["runs"] if r["tta"] == tta)


def _cells(figures: dict) -> str:
    t, s = figures["tile"], figures["scene"]
    return (f"{t['recall']:.4f} | {t['false_alarm_rate']:.4f} | {t['precision']:.4f} | {t['balanced_accuracy']:.4f} | "
            f"{t['false_alarms_per_100km2']:.1f} | {s['scene_recall']:.3f} | {s['background_frames_alerting']:.3f} | "
            f"{s['false_alarms_per_100km2']:.2f} | {s['quiet_tiles_alerting']:.4f}")
