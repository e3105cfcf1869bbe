"""An audio bundle's operating point: its alert groups' thresholds and its event rule, chosen on scored
labelled audio (`converter.audio_events`) for a target false-alarm rate, and written into the manifest
with how it was chosen. Shared by `nv-convert audio` (a new model, on its validation clips),
`nv-convert operating-point` (a made bundle, on the validation split of its data) and
`nv-convert calibrate` (a site's own recordings and score logs).

The target is false alarms per hour of background audio. A short stretch of background cannot show a low
rate: seeing no false alarm in h hours still allows a rate of about 3 / h (the rule of three; the exact 95 %
bound of a Poisson count of zero is 2.996 / h). Aiming lower than that picks whichever extreme setting
happens to dodge the few confusable clips of that data; so the target used is the one asked, or 3 false
alarms in the data's hours when that is more, and the choice says so. A release rule may fix the number
instead (`max_false_alarms`, `nv-convert operating-point --max-false-alarms N`): at most N false alarms on
the data chosen on, whatever its hours; N = 2 is the exact bound (2.996 false alarms in the data's hours
for zero seen) rounded down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from converter.audio_events import RULE_KEYS, RULES, THRESHOLDS, ScoredClip, evaluate, figures, rule_name, thresholds_of
from converter.operating_points import Choice, Point, choose, first_within, poisson_upper
from edge.decisions.events import EventRules
from edge.model.bundle import Manifest

DEFAULT_TARGET_FA_PER_HOUR = 1.0  # what a ranger asked for: one false alarm an hour of background at most
RESOLVABLE_FALSE_ALARMS = 3  # the fewest false alarms a target may allow in the data's hours (rule of three)


def background_hours(clips: Sequence[ScoredClip]) -> float:
    return sum(c.duration_s for c in clips if not c.alert) / 3600


def resolvable_target(asked: float, hours: float, max_false_alarms: int | None = None) -> float:
    """The target used: `asked`, or RESOLVABLE_FALSE_ALARMS in `hours`, the finest rate they can tell from zero.
    With `max_false_alarms`: that many false alarms in `hours`, in place of both."""
    if max_false_alarms is not None:
        if max_false_alarms < 0:
            raise ValueError(f"the false alarms allowed must be >= 0, got {max_false_alarms}")
        return max_false_alarms / hours if hours > 0 else math.inf
    return max(asked, RESOLVABLE_FALSE_ALARMS / hours) if hours > 0 else math.inf


@dataclass(frozen=True)
class Selection:
    choice: Choice
    points: list[Point]  # every candidate, measured on the data chosen on
    asked: float
    used: float  # after the resolution floor
    hours: float  # of background
    by_recall: bool  # False: no machinery in the data, the least strict setting within the target was taken
    max_false_alarms: int | None = None  # the target was this many false alarms in `hours` (not `asked`)


def select(clips: Sequence[ScoredClip], labels: Sequence[str], groups: dict[str, tuple[str, ...]],
           base: dict | None, asked: float = DEFAULT_TARGET_FA_PER_HOUR, before: dict | None = None,
           rules: Sequence[dict] = RULES, thresholds: Sequence[float] = THRESHOLDS, quick: bool = False,
           max_false_alarms: int | None = None) -> Selection:
    """With machinery in `clips`: the most event recall within the target over rules x thresholds (and
    `before`, the setting in use, when given). Background only: recall cannot be measured, so the rule in
    use is kept and thresholds are only raised, each to at least t for t ascending, until the target is met.
    `quick` stops counting a point's false alarms once it is out of the target (hours of score logs): the
    choice is the same, but those points' figures are lower bounds. `max_false_alarms`: the target is that
    many false alarms in the clips' hours of background, in place of `asked` and the rule-of-three floor."""
    hours = background_hours(clips)
    used = resolvable_target(asked, hours, max_false_alarms)
    budget = math.floor(used * hours * (1 + 1e-9)) if quick and math.isfinite(used) else None
    if any(c.alert for c in clips):
        candidates = [{**r, "threshold": float(t)} for r in rules for t in thresholds]
        if before is not None:
            candidates.insert(0, before)
        points = [evaluate(clips, labels, groups, p, base, budget=budget) for p in candidates]
        choice = choose(points, used)
        if not choice.reached and budget is not None:  # the fallback compares rates: count them all
            points = [evaluate(clips, labels, groups, p, base) for p in candidates]
            choice = choose(points, used)
        return Selection(choice, points, asked, used, hours, True, max_false_alarms)
    if before is None:
        raise ValueError("background-only data needs the setting in use to start from")
    start = thresholds_of(before, groups)
    rule = {k: v for k, v in before.items() if k != "threshold"}
    candidates = [before] + [{**rule, "threshold": {g: max(v, float(t)) for g, v in start.items()}}
                             for t in thresholds if t > min(start.values())]
    points = [evaluate(clips, labels, groups, p, base, budget=budget) for p in candidates]
    choice = first_within(points, used)
    if not choice.reached and budget is not None:
        points = [evaluate(clips, labels, groups, p, base) for p in candidates]
        choice = first_within(points, used)
    return Selection(choice, points, asked, used, hours, False, max_false_alarms)


def rule_keys(params: dict) -> dict:
    """The event keys a point sets: the rule and its size."""
    keys = ("rule", "window") if params.get("rule") == "mean" else ("rule", "k", "n")
    return {k: params[k] for k in keys if k in params}


def before_params(manifest: Manifest, groups: dict[str, tuple[str, ...]]) -> dict:
    """The setting a bundle ships with, as a point: its rule (the defaults when it recommends none) and its
    thresholds by group."""
    rules = EventRules(**{k: v for k, v in (manifest.events or {}).items() if k in RULE_KEYS})
    rule = {"rule": rules.rule, "window": rules.window} if rules.rule == "mean" else {"rule": rules.rule, "k": rules.k, "n": rules.n}
    return {**rule, "threshold": {g: float(manifest.thresholds[g]) for g in groups}}


def how(selection: Selection, groups: dict[str, tuple[str, ...]], where: str, by: str, date: str) -> str:
    """One line for people (make demo prints it from the manifest)."""
    p = selection.choice.point
    t = thresholds_of(p.params, groups)
    shown = ", ".join(f"{g} >= {v:g}" for g, v in t.items())
    target = f"at most {selection.used:.3g} false alarms per hour of background"
    if selection.max_false_alarms is not None:
        target = (f"at most {selection.max_false_alarms} false alarms in its {selection.hours:.3g} h of background "
                  f"({selection.used:.3g} per hour)")
    elif selection.used > selection.asked:
        target += f" ({selection.asked:g} asked; {selection.hours:.3g} h of background cannot show less)"
    aim = "the most machinery clips with an event" if selection.by_recall else "the least strict thresholds"
    reached = "" if selection.choice.reached else "; NO setting reached the target, the one with the fewest was taken"
    return (f"{rule_name(p.params)} windows, {shown}: chosen by {by} on {where} for {aim} {target}{reached}, {date}")


def provenance(selection: Selection, groups: dict[str, tuple[str, ...]], *, by: str, where: str, data: dict,
               before: Point | None = None, hop_s: float, rms_gate_dbfs: float | None,
               previous: dict | None = None) -> dict:
    """What the manifest keeps of a choice (`metrics.operating_point`)."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    point = selection.choice.point
    out = {"how": how(selection, groups, where, by, date), "by": by, "date": date, "data": data,
           "groups": {g: list(m) for g, m in groups.items()}, "hop_s": hop_s, "rms_gate_dbfs": rms_gate_dbfs,
           "background_hours": round(selection.hours, 4),
           "target_fa_per_hour": _target(selection),
           "after": figures(point), "before": None if before is None else figures(before)}
    if previous:
        out["previous"] = {k: previous.get(k) for k in ("how", "by", "date")}
    return out


def _target(selection: Selection) -> dict:
    out = {"asked": selection.asked, "used": round(selection.used, 3), "reached": selection.choice.reached}
    return out if selection.max_false_alarms is None else out | {"max_false_alarms": selection.max_false_alarms}


def apply(manifest: Manifest, groups: dict[str, tuple[str, ...]], point: Point, record: dict) -> Manifest:
    """`manifest` with the point's thresholds (by group) and event rule, and its provenance in
    `metrics.operating_point`. Groups are written when the model decides on groups of several labels."""
    thresholds = {g: round(v, 4) for g, v in thresholds_of(point.params, groups).items()}
    events = dict(manifest.events or {}) | rule_keys(point.params)
    EventRules.from_dict(events, "the chosen event rules")
    plain = all(members == (name,) for name, members in groups.items())
    return replace(manifest, groups=None if plain and manifest.groups is None else {g: tuple(m) for g, m in groups.items()},
                   thresholds=thresholds, events=events, metrics={**manifest.metrics, "operating_point": record})


ALTERNATIVE_EVENTS = (0, 1, 2, 3, 5, 10)  # false events allowed on the data chosen on, for the report's "what if"


def event_metrics(selection: Selection, val: Sequence[ScoredClip], test: Sequence[ScoredClip], labels: Sequence[str],
                  groups: dict[str, tuple[str, ...]], base: dict | None, before: tuple[dict, dict, str] | None,
                  *, hop_s: float, rms_gate_dbfs: float | None) -> dict:
    """metrics.json's `events`: the choice on validation, what it gives on test (with the window and clip
    figures at its thresholds), the setting `before` (params, its groups, what it is) on both, the whole
    curve on both, and what other targets would have chosen."""
    from converter.audio_events import curve, curve_table, window_figures

    point = selection.choice.point
    test_point = evaluate(test, labels, groups, point.params, base, detail=True)

    def clips(data):
        return {"machinery": sum(c.alert for c in data), "background": sum(not c.alert for c in data),
                "background_hours": round(background_hours(data), 4),
                "rate_of_one_false_alarm": round(1 / max(background_hours(data), 1e-9), 2),
                "zero_false_alarms_bound_per_hour": round(poisson_upper(0) / max(background_hours(data), 1e-9), 2)}

    out = {
        "groups": {g: list(m) for g, m in groups.items()}, "hop_s": hop_s, "rms_gate_dbfs": rms_gate_dbfs,
        "base_rules": dict(base or {}),
        "target_fa_per_hour": _target(selection),
        "chosen": {"rule": rule_name(point.params), "events": rule_keys(point.params),
                   "thresholds": {g: round(v, 4) for g, v in thresholds_of(point.params, groups).items()},
                   "tied": selection.choice.tied, "eligible": selection.choice.eligible},
        "validation": {"clips": clips(val), "chosen": figures(evaluate(val, labels, groups, point.params, base, detail=True))},
        "test": {"clips": clips(test), "chosen": figures(test_point),
                 "chosen_windows": window_figures(test, labels, groups, thresholds_of(point.params, groups))},
        "curve": {"validation": curve_table(selection.points), "test": curve_table(curve(test, labels, groups, base=base))},
    }
    if before is not None:
        params, before_groups, what = before
        out["before"] = {"what": what, "params": params,
                         "validation": figures(evaluate(val, labels, before_groups, params, base, detail=True)),
                         "test": figures(evaluate(test, labels, before_groups, params, base, detail=True)),
                         "test_windows": window_figures(test, labels, before_groups, thresholds_of(params, before_groups))}
    alternatives = []
    for k in ALTERNATIVE_EVENTS:
        rate = k / selection.hours if selection.hours else math.inf
        alt = choose(selection.points, rate)
        alternatives.append({"false_events_allowed": k, "target_fa_per_hour": round(rate, 2), "reached": alt.reached,
                             "validation": figures(alt.point),
                             "test": figures(evaluate(test, labels, groups, alt.point.params, base))})
    out["alternatives"] = alternatives
    return out
