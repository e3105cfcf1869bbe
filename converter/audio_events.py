"""Events on labelled audio, found the way a unit finds them, and the figures a ranger asks for.

    clip -> the device's windows (edge.audio.listen.AudioClassifier: hop, RMS gate) -> int8 scores
         -> alert groups and the device's own EventTracker (edge.decisions) for one rule and threshold

- event recall: of the machinery clips, the share that raised at least one event;
- false alarms per hour: events raised on background, over the hours of background audio (an event that goes
  on counts again at each of its updates, every `update_s`: a unit stuck on "machinery" is not one alarm);
- delay: seconds from the clip's start (its machinery's onset) to the event's `start` (`delay_s`), and
  to the moment the unit could report it, the end of the window that started it (`report_delay_s`). The
  device dates an event back to its first hot window (k_of_n) or to the first window of the averaging
  window (mean), so `delay_s` hides how long a rule waits; ties are broken on `report_delay_s`.

Scores come from `converter.audio_scoring` (in a process without TensorFlow); this module is pure logic.
Every group gets the same threshold in one point: a bundle with one group (machinery) is decided
exactly, a bundle without groups (one per alert label) on one shared scale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from converter.operating_points import Point
from edge.decisions.events import EventRules, EventTracker
from edge.decisions.groups import group_scores

# Candidate rules: k of the last n windows at or above the threshold, or the rolling mean of `window`.
RULES: tuple[dict, ...] = (
    {"rule": "k_of_n", "k": 1, "n": 1}, {"rule": "k_of_n", "k": 2, "n": 2}, {"rule": "k_of_n", "k": 2, "n": 3},
    {"rule": "k_of_n", "k": 2, "n": 4}, {"rule": "k_of_n", "k": 3, "n": 4}, {"rule": "k_of_n", "k": 3, "n": 5},
    {"rule": "mean", "window": 2}, {"rule": "mean", "window": 3}, {"rule": "mean", "window": 4},
    {"rule": "mean", "window": 6}, {"rule": "mean", "window": 8},
)
# Group scores are int8 outputs summed (steps of 1/256 = 0.004): every 0.025 from 0.05, and every 0.005 above
# 0.95, where a confident model's scores crowd.
THRESHOLDS: tuple[float, ...] = tuple(round(float(t), 3) for t in np.r_[np.arange(0.05, 0.951, 0.025), np.arange(0.955, 0.996, 0.005)])
RULE_KEYS = {f.name for f in fields(EventRules)}


@dataclass(frozen=True)
class ScoredClip:
    """One clip (or one unit's score log) as the tracker sees it: classified windows only (gated ones are
    gaps), times in seconds from the clip's start (a log: Unix time, origin its first window)."""

    name: str
    cls: str  # source class (or "score log"), for where false alarms come from
    alert: bool  # machinery: an alert label's sound
    duration_s: float  # audio it stands for: the clip's length, or a log's covered time
    starts: np.ndarray  # (W,) window starts
    ends: np.ndarray  # (W,)
    scores: np.ndarray  # (W, labels)
    origin: float = 0.0  # when the sound began (delays are measured from it)
    group: str = ""  # the source recording: clips of one machine share it


@dataclass(frozen=True)
class Outcome:
    events: int  # event starts on this clip
    delay_s: float | None  # first event's start - origin
    report_delay_s: float | None  # end of the window that started it - origin
    alarms: int = 0  # starts and updates: what a ranger is told, counted as false alarms on background
    stopped: bool = False  # stopped early, past the limit of alarms asked for


def rule_name(params: dict) -> str:
    """{"rule": "k_of_n", "k": 2, "n": 3} -> "2 of 3"; {"rule": "mean", "window": 4} -> "mean of 4"."""
    if params.get("rule", "k_of_n") == "mean":
        return f"mean of {params.get('window', EventRules.window)}"
    return f"{params.get('k', EventRules.k)} of {params.get('n', EventRules.n)}"


def rules_of(params: dict, base: dict | None = None) -> EventRules:
    """The device's rules for a point: `base` (the bundle's events) with the point's rule keys over it."""
    return EventRules(**((base or {}) | {k: v for k, v in params.items() if k in RULE_KEYS}))


def thresholds_of(params: dict, groups: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """A point's "threshold": one number for every group, or a table by group."""
    t = params["threshold"]
    return dict(t) if isinstance(t, dict) else {name: float(t) for name in groups}


def _warm(clip: ScoredClip, labels: Sequence[str], groups: dict[str, tuple[str, ...]], thresholds: dict[str, float],
          rules: EventRules) -> np.ndarray:
    """Which windows could start or hold an event: a group at or above its threshold - hysteresis (with a
    hair of margin, so rounding can only keep a window, never drop one)."""
    values = group_scores(np.asarray(clip.scores, dtype=np.float64), labels, {g: groups[g] for g in thresholds})
    limits = np.array([t - rules.hysteresis for t in thresholds.values()]) - 1e-9
    return (values >= limits).any(axis=1)


def _kept(warm: np.ndarray, margin: int) -> np.ndarray:
    """Windows to feed the tracker: all but the middle of long cold runs. `margin` cold windows after a
    warm one end any event and age the rule's history out; `margin` before the next warm one refill it as
    the unit's was. Between them the tracker would do nothing, so its events are the same."""
    keep = warm.copy()
    index = np.flatnonzero(warm)
    if index.size == 0:
        return keep
    for i in index:
        keep[max(0, i - margin):i + margin + 1] = True
    return keep


def run_clip(clip: ScoredClip, labels: Sequence[str], groups: dict[str, tuple[str, ...]],
             thresholds: dict[str, float], rules: EventRules, limit: int | None = None) -> Outcome:
    """The device's EventTracker over one clip or log. Cold stretches of a long stream are skipped
    (`_kept`): no event can start or go on in them, and that makes a day's log quick to sweep. With
    `limit`, it stops once there are more alarms than that (the point is then out of the running)."""
    tracker = EventTracker(labels, thresholds, rules, groups={g: groups[g] for g in thresholds})
    index = range(len(clip.starts))
    if len(clip.starts) > 64:
        index = np.flatnonzero(_kept(_warm(clip, labels, groups, thresholds, rules), max(rules.n, rules.window) + 1))
    first = None
    events = alarms = 0
    for i in index:
        end = float(clip.ends[i])
        for event in tracker.observe(float(clip.starts[i]), end, clip.scores[i]):
            # An event that goes on is told again at each update (every update_s): to a ranger, a unit
            # saying "still machinery" all day is not one false alarm.
            alarms += event.phase in ("start", "update")
            if event.phase == "start":
                events += 1
                if first is None:
                    first = (event.start - clip.origin, end - clip.origin)
        if limit is not None and alarms > limit:
            return Outcome(events, *(first or (None, None)), alarms, True)
    return Outcome(events, *(first or (None, None)), alarms)


def _quantile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def evaluate(clips: Sequence[ScoredClip], labels: Sequence[str], groups: dict[str, tuple[str, ...]], params: dict,
             base: dict | None = None, detail: bool = False, budget: int | None = None) -> Point:
    """One operating point (`params`: rule keys and "threshold") measured on `clips`. False alarms are the
    starts and updates of events on background, over its hours; `delay` (for choosing) is the median report
    delay. `detail` adds where false alarms and misses come from. With `budget`, counting stops past that many
    false alarms (`extra["over_budget"]`; the count is then a lower bound)."""
    rules, thresholds = rules_of(params, base), thresholds_of(params, groups)
    outcomes, false = [], 0
    for c in sorted(clips, key=lambda c: not c.alert):  # machinery first: the budget concerns background
        if budget is not None and not c.alert and false > budget:
            break
        o = run_clip(c, labels, groups, thresholds, rules, None if budget is None or c.alert else budget - false)
        outcomes.append((c, o))
        false += 0 if c.alert else o.alarms
    found = [(c, o) for c, o in outcomes if c.alert and o.events]
    hours = sum(c.duration_s for c in clips if not c.alert) / 3600
    delays = [o.delay_s for _, o in found]
    reports = [o.report_delay_s for _, o in found]
    machines = {c.group or c.name for c in clips if c.alert}
    extra = {"delay_s_median": _quantile(delays, 50), "delay_s_p90": _quantile(delays, 90),
             "report_delay_s_median": _quantile(reports, 50), "report_delay_s_p90": _quantile(reports, 90),
             "recordings_detected": len({c.group or c.name for c, _ in found}), "machinery_recordings": len(machines)}
    if budget is not None and false > budget:
        extra["over_budget"] = True
    if detail:
        extra["false_alarms_by_class"] = dict(Counter(c.cls for c, o in outcomes if not c.alert
                                                      for _ in range(o.alarms)).most_common())
        extra["missed_by_class"] = dict(Counter(c.cls for c, o in outcomes if c.alert and not o.events).most_common())
    return Point(params=dict(params), detected=len(found), positives=sum(c.alert for c in clips), false_alarms=false,
                 exposure=hours, delay=extra["report_delay_s_median"], extra=extra)


def curve(clips: Sequence[ScoredClip], labels: Sequence[str], groups: dict[str, tuple[str, ...]],
          rules: Sequence[dict] = RULES, thresholds: Sequence[float] = THRESHOLDS, base: dict | None = None) -> list[Point]:
    """Every rule x threshold, rule by rule, thresholds ascending (the order `choose` breaks ties in)."""
    return [evaluate(clips, labels, groups, {**rule, "threshold": float(t)}, base) for rule in rules for t in thresholds]


def window_figures(clips: Sequence[ScoredClip], labels: Sequence[str], groups: dict[str, tuple[str, ...]],
                   thresholds: dict[str, float]) -> dict:
    """Per window and per clip (any window), alert vs background, at `thresholds`: the figures models
    were judged by before events, on the device's windows."""
    def rates(fired: np.ndarray, truth: np.ndarray) -> dict:
        tp = int(np.sum(fired & truth))
        return {"alerts": int(fired.sum()), "precision": round(tp / max(1, int(fired.sum())), 4),
                "recall": round(tp / max(1, int(truth.sum())), 4), "false_alarms": int(np.sum(fired & ~truth))}

    chosen = {g: groups[g] for g in thresholds}
    limits = np.array(list(thresholds.values()))
    fired = [(group_scores(np.asarray(c.scores, np.float64), labels, chosen) >= limits).any(axis=1) for c in clips]
    window_truth = np.concatenate([np.full(len(f), c.alert) for c, f in zip(clips, fired)])
    return {"window": rates(np.concatenate(fired), window_truth),
            "clip_any_window": rates(np.array([bool(f.any()) for f in fired]), np.array([c.alert for c in clips]))}


def figures(point: Point) -> dict:
    """A point as metrics.json and the manifest carry it."""
    out = {"rule": rule_name(point.params), "params": point.params, "event_recall": _round(point.recall),
           "detected": point.detected, "machinery_clips": point.positives, "false_alarms": point.false_alarms,
           "background_hours": round(point.exposure, 4), "false_alarms_per_hour": _round(point.rate, 2)}
    return out | point.extra


def curve_table(points: Sequence[Point]) -> dict:
    """Points grouped by rule, as parallel lists (compact in metrics.json)."""
    out: dict[str, dict] = {}
    for p in points:
        row = out.setdefault(rule_name(p.params), {"params": {k: v for k, v in p.params.items() if k != "threshold"},
                                                   "threshold": [], "event_recall": [], "false_alarms": [],
                                                   "false_alarms_per_hour": [], "report_delay_s_median": []})
        row["threshold"].append(p.params["threshold"])
        row["event_recall"].append(_round(p.recall))
        row["false_alarms"].append(p.false_alarms)
        row["false_alarms_per_hour"].append(_round(p.rate, 2))
        row["report_delay_s_median"].append(p.extra.get("report_delay_s_median"))
    return out


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)
