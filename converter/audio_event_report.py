"""The events part of an audio model's report: what a unit reports at the chosen operating point (event
recall, false alarms per hour of background, delay) on validation and test, beside the setting before,
the whole recall / false-alarm curve (`events.png`), and what other targets would have chosen."""

from __future__ import annotations

from pathlib import Path

HEAD = "## Events: what a unit reports"
AIM_RECALL, AIM_RATE = 0.95, 1.0  # issue 12: recall >= 0.95 at <= 1 false alarm per hour of background, on test


def _thresholds(params: dict) -> str:
    t = params["threshold"]
    return ", ".join(f"{g} {v:.3g}" for g, v in t.items()) if isinstance(t, dict) else f"{t:.3g}"


def _delay(f: dict, key: str) -> str:
    a, b = f.get(f"{key}_median"), f.get(f"{key}_p90")
    return "-" if a is None else f"{a:.2f} / {b:.2f} s"


def _row(title: str, f: dict) -> str:
    recall = "-" if f["event_recall"] is None else f"{f['event_recall']:.3f} ({f['detected']}/{f['machinery_clips']})"
    return (f"| {title} | {f['rule']} | {_thresholds(f['params'])} | {recall} | {f['recordings_detected']}/"
            f"{f['machinery_recordings']} | {f['false_alarms']} | {f['false_alarms_per_hour']:.1f} | "
            f"{_delay(f, 'delay_s')} | {_delay(f, 'report_delay_s')} |")


def _by(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def event_lines(m: dict) -> list[str]:
    e = m["events"]
    v, t = e["validation"]["clips"], e["test"]["clips"]
    chosen, target = e["test"]["chosen"], e["target_fa_per_hour"]
    met = chosen["event_recall"] is not None and chosen["event_recall"] >= AIM_RECALL and chosen["false_alarms_per_hour"] <= AIM_RATE
    lines = [HEAD, "",
             f"**How the thresholds were chosen:** {e['how']}.", "",
             "Each clip goes through the unit's own path: windows every "
             f"{e['hop_s']} s, the RMS gate ({e['rms_gate_dbfs']} dBFS), the int8 model on LiteRT, the alert groups "
             f"({', '.join(f'{g} = ' + ' + '.join(ms) for g, ms in e['groups'].items())}) and the unit's EventTracker. "
             "Event recall: machinery clips with at least one event (and source recordings with at least one). "
             "False alarms: events on background (and every update of one that goes on), per hour of background "
             "audio. Delay: from the clip's start "
             "(its machinery's onset) to the event's `start` as the unit dates it, and to the end of the window that "
             "started it, when the unit can first report it. Every rule x threshold was tried on validation; the "
             "most event recall within the target won, ties to the shorter report delay.", "",
             f"How little background there is: validation holds {v['background_hours']:.3f} h of background "
             f"({v['background']} clips), test {t['background_hours']:.3f} h ({t['background']} clips). One false "
             f"alarm on validation is {v['rate_of_one_false_alarm']:.1f} per hour, and seeing none still allows up "
             f"to {v['zero_false_alarms_bound_per_hour']:.1f} per hour (95 %). So {target['asked']:g} per hour asked "
             f"means no false alarm at all on validation; the target used was {target['used']:.3g} per hour"
             + (f" ({target['max_false_alarms']} false alarms in its hours, fixed by the release rule)"
                if "max_false_alarms" in target else
                " (3 false alarms in its hours, the finest rate it can resolve)" if target["used"] > target["asked"] else "")
             + ". These background clips are dense, hard sound events (rain, helicopters, fire, dogs), not a "
             "site's quiet hours: per hour of a real site the rate will differ, and `nv-convert calibrate` on a "
             "unit's score log measures it there.", "",
             "| data | rule | thresholds | event recall (clips) | recordings | false alarms | per hour of background | "
             "delay to start, median / p90 | delay to report, median / p90 |", "|---|---|---|---|---|---|---|---|---|",
             _row("**test, chosen**", chosen), _row("validation, chosen", e["validation"]["chosen"])]
    if "before" in e:
        lines += [_row(f"test, before ({e['before']['what']})", e["before"]["test"]),
                  _row(f"validation, before ({e['before']['what']})", e["before"]["validation"])]
    lines += ["", f"Aim (issue 12): event recall >= {AIM_RECALL} at <= {AIM_RATE:g} false alarm per hour of background on "
              f"test: **{'met' if met else 'not met'}** (recall {chosen['event_recall']}, "
              f"{chosen['false_alarms_per_hour']:.1f} per hour).", "",
              f"Test false alarms by source class: {_by(chosen.get('false_alarms_by_class', {}))}; missed machinery "
              f"clips by class: {_by(chosen.get('missed_by_class', {}))}.", ""]
    w = e["test"]["chosen_windows"]
    lines += ["Per window and per clip (any window) at these thresholds, alert vs background (test, the unit's windows; "
              "the per-window and per-clip tables further down judge the model by its labels' argmax):", "",
              "| setting | window precision | window recall | window false alarms | clip (any window) precision | clip recall | clip false alarms |",
              "|---|---|---|---|---|---|---|", _window_row("chosen", w)]
    if "before" in e:
        lines.append(_window_row("before", e["before"]["test_windows"]))
    lines += ["", "What other targets would have chosen (on validation; test beside it, never chosen on):", "",
              "| false alarms allowed on validation | target per hour | rule | thresholds | validation recall | "
              "validation false alarms | test recall | test false alarms (per hour) |", "|---|---|---|---|---|---|---|---|"]
    for a in e["alternatives"]:
        va, te = a["validation"], a["test"]
        lines.append(f"| {a['false_events_allowed']} | {a['target_fa_per_hour']:.1f} | {va['rule']} | {_thresholds(va['params'])} | "
                     f"{va['event_recall']:.3f} | {va['false_alarms']} | {te['event_recall']:.3f} | "
                     f"{te['false_alarms']} ({te['false_alarms_per_hour']:.1f}) |")
    lines += ["", "![event recall against false alarms per hour](events.png)", ""]
    return lines


def _window_row(title: str, w: dict) -> str:
    a, c = w["window"], w["clip_any_window"]
    return (f"| {title} | {a['precision']:.3f} | {a['recall']:.3f} | {a['false_alarms']} | {c['precision']:.3f} | "
            f"{c['recall']:.3f} | {c['false_alarms']} |")


def plot_events(m: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = m["events"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    colours = plt.get_cmap("tab20").colors
    for ax, split in zip(axes, ("validation", "test")):
        for k, (name, row) in enumerate(e["curve"][split].items()):
            style = "-" if row["params"].get("rule") == "mean" else "--"
            ax.plot(row["false_alarms_per_hour"], row["event_recall"], style, marker=".", markersize=3, linewidth=1,
                    label=name, color=colours[k % len(colours)])
        f = e[split]["chosen"]
        ax.plot([f["false_alarms_per_hour"]], [f["event_recall"]], "*", color="black", markersize=14, label="chosen")
        if "before" in e:
            b = e["before"][split]
            ax.plot([b["false_alarms_per_hour"]], [b["event_recall"]], "X", color="red", markersize=10, label="before")
        ax.axvline(e["target_fa_per_hour"]["used"], color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(-1, max(max(r["false_alarms_per_hour"]) for r in e["curve"][split].values()) * 1.3 + 1)
        ax.set_xlabel("false alarms per hour of background")
        ax.set_title(f"{split}: {e[split]['clips']['machinery']} machinery clips, {e[split]['clips']['background_hours']:.3f} h background", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("event recall (machinery clips with an event)")
    axes[1].legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_event_report(m: dict, out_dir: Path) -> Path:
    """events.png, and report.md's events section (replaced when there, else put before the test tables)."""
    plot_events(m, out_dir / "events.png")
    path = out_dir / "report.md"
    section = event_lines(m)
    lines = path.read_text().splitlines() if path.is_file() else [f"# Model report", ""]
    if HEAD in lines:
        start = lines.index(HEAD)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        lines[at:at] = section
    path.write_text("\n".join(lines) + "\n")
    return path
