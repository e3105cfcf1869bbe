"""Scores over time -> events: an excavator working all day becomes a few events, not a record
per window.

Per alert group (edge/decisions/groups.py; without groups, per alert label), by one of two rules:
- "k_of_n": an event starts when k of the last n observations reach the group's threshold (one loud
  window alone raises nothing), is held while scores stay at or above threshold - hysteresis (a
  score wobbling around the threshold neither ends nor restarts it), and ends after n observations
  in a row below that.
- "mean": the rule looks at the rolling mean of the last `window` observations (edge/decisions/
  smoothing.py; nothing until `window` have come). An event starts when the mean reaches the
  threshold, and its start is the start of the first observation of that averaging window; it is
  held while the mean stays at or above threshold - hysteresis, and ends at the last observation
  that held it as soon as the mean falls below. Peak, mean and hot counts are of the group's own
  score per observation, as for k_of_n.
An event is reported in phases that share one id: "start", "update" heartbeats while it lasts, and "end".

Pure logic: no clock, no I/O. Times are passed in, in seconds: Unix time for a live source,
the offset from the clip's start for a file.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from edge.decisions.groups import describe, group_scores, plain
from edge.decisions.smoothing import window_mean
from edge.ids import uuid7

RULES = ("k_of_n", "mean")


@dataclass(frozen=True)
class EventRules:
    """How observations become events. The defaults suit audio windows of ~1 s with a 0.5 s hop."""

    k: int = 2  # an event starts when k ...
    n: int = 3  # ... of the last n observations are hot, and ends after n quiet ones in a row
    hysteresis: float = 0.1  # an active event is held while score >= threshold - hysteresis
    cooldown_s: float = 30.0  # after an event ends, its group cannot start a new one for this long
    update_s: float = 600.0  # an active event reports an "update" this often; 0 = never
    max_gap_s: float | None = 5.0  # a longer gap between observations ends active events; None = never
    rule: str = "k_of_n"  # "k_of_n" (k, n above) or "mean" (the rolling mean of `window` observations)
    window: int = 4  # observations the "mean" rule averages (2 s of windows at a 0.5 s hop)

    def __post_init__(self) -> None:
        _check({f.name: getattr(self, f.name) for f in fields(self)}, "event rules")

    @classmethod
    def from_dict(cls, d: dict, where: str) -> EventRules:
        """Rules from a config section; missing keys keep their defaults. `where` names the section
        in error messages (e.g. "nv.toml [audio.events]")."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a table of event rules, got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(known)}")
        _check(d, where)
        return cls(**d)


def layered_rules(*layers: tuple[dict | None, str]) -> EventRules:
    """Rules from tables of keys, lowest first, each a (table or None, where) pair: e.g. the bundle's
    recommended `events`, then a config table or the command line's. A key in a later table wins;
    keys none sets keep the defaults. A ValueError names the table that made the rules invalid."""
    merged: dict = {}
    for table, where in layers:
        if table is not None:
            EventRules.from_dict(table, where)  # its own keys and types
            merged = merged | table
            EventRules.from_dict(merged, where)  # and what it makes of the tables below it
    return EventRules(**merged)


def _check(values: dict, where: str) -> None:
    """Types first (a config file can say anything), then ranges; the message names the key."""
    for key, value in values.items():
        if key == "rule":
            if not isinstance(value, str) or value not in RULES:
                raise ValueError(f"{where}: rule must be one of {', '.join(map(repr, RULES))}, got {value!r}")
            continue
        integer = key in ("k", "n", "window")
        nullable = key == "max_gap_s"
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            wanted = "an integer" if integer else ("a number of seconds or null" if nullable else "a number")
            raise ValueError(f"{where}: {key} must be {wanted}, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}: {key} must be finite, got {value!r}")
    k, n = values.get("k", EventRules.k), values.get("n", EventRules.n)
    if k < 1:
        raise ValueError(f"{where}: k must be at least 1, got {k}")
    if n < k:
        raise ValueError(f"{where}: k ({k}) must not exceed n ({n}): an event starts when k of the last n observations are hot")
    hysteresis = values.get("hysteresis", EventRules.hysteresis)
    if not 0 <= hysteresis < 1:
        raise ValueError(f"{where}: hysteresis must be in [0, 1) (scores are 0-1), got {hysteresis}")
    for key in ("cooldown_s", "update_s"):
        if values.get(key, 0) < 0:
            raise ValueError(f"{where}: {key} must be >= 0 seconds, got {values[key]}")
    if values.get("window", EventRules.window) < 1:
        raise ValueError(f"{where}: window must be at least 1 observation, got {values['window']}")
    gap = values.get("max_gap_s", EventRules.max_gap_s)
    if gap is not None and gap <= 0:
        raise ValueError(f"{where}: max_gap_s must be > 0 seconds (or null for no limit), got {gap}")


@dataclass(frozen=True)
class Event:
    """One phase of one event. Times are in the tracker's time base (see the module docstring)."""

    id: str  # shared by every phase of the event
    label: str  # the alert group's name (without groups, the alert label)
    phase: str  # "start" | "update" | "end"
    start: float  # start of the first hot observation
    end: float | None  # end of the last held observation; None while active
    peak_score: float
    peak_time: float  # start of the observation with the peak score (finds its window record)
    windows: int  # observations from start to the last held one, quiet ones between included
    hot_windows: int  # of those, at or above the threshold
    mean_score: float  # of the group's score over `windows`
    threshold: float
    suppressed: int  # hot observations that would have started an event during the cooldown before this one
    until: float  # end of the last held observation so far (= end once ended)
    peak_scores: tuple[float, ...] = ()  # every label's score in the peak observation (the record's `scores`)
    peak_group_scores: dict[str, float] | None = None  # every group's, there; None when groups are plain labels

    @property
    def duration_s(self) -> float:
        """Seconds covered so far (the whole event once ended)."""
        return self.until - self.start


@dataclass
class _Active:
    id: str
    start: float
    threshold: float
    suppressed: int
    peak_score: float = -math.inf
    peak_time: float = 0.0
    peak_scores: tuple = ()  # every label's score in the peak observation
    peak_groups: dict | None = None  # and every group's
    windows: int = 0
    hot_windows: int = 0
    score_sum: float = 0.0
    until: float = 0.0
    last_report: float = 0.0  # `until` when the last phase was reported, for update_s
    # Quiet observations after the last held one: they belong to the event only if a held one follows.
    quiet: int = 0
    quiet_sum: float = 0.0

    def hold(self, start: float, end: float, score: float, hot: bool, values: tuple, groups: dict | None) -> None:
        self.windows += self.quiet + 1
        self.score_sum += self.quiet_sum + score
        self.quiet, self.quiet_sum = 0, 0.0
        self.hot_windows += hot
        if score > self.peak_score:
            self.peak_score, self.peak_time, self.peak_scores, self.peak_groups = score, start, values, groups
        self.until = end

    def event(self, label: str, phase: str, end: float | None = None) -> Event:
        return Event(self.id, label, phase, self.start, end, self.peak_score, self.peak_time, self.windows,
                     self.hot_windows, self.score_sum / self.windows, self.threshold, self.suppressed, self.until,
                     self.peak_scores, self.peak_groups)


@dataclass
class _Group:
    label: str  # the group's name
    index: int  # its column in the tracker's group scores
    threshold: float
    history: deque = field(default_factory=deque)  # (start, end, score, all scores, group scores) of the last n (or window)
    active: _Active | None = None
    cooldown_until: float = -math.inf
    suppressed: int = 0

    def step(self, start: float, end: float, score: float, values: tuple, groups: dict | None,
             rules: EventRules) -> list[Event]:
        mean = rules.rule == "mean"
        self.history.append((start, end, score, values, groups))
        if len(self.history) > (rules.window if mean else rules.n):
            self.history.popleft()
        level = score  # what the rule decides on: the observation's score, or the rolling mean once the window is full
        if mean:
            level = window_mean(o[2] for o in self.history) if len(self.history) == rules.window else None
        active = self.active
        if active is None:
            return self._maybe_start(rules, level)
        if level >= self.threshold - rules.hysteresis:
            active.hold(start, end, score, score >= self.threshold, values, groups)
        elif mean:
            return [self.finish(rules, None)]
        else:
            active.quiet += 1
            active.quiet_sum += score
            if active.quiet >= rules.n:
                return [self.finish(rules, None)]
        if rules.update_s and active.until - active.last_report >= rules.update_s:
            active.last_report = active.until
            return [active.event(self.label, "update")]
        return []

    def _maybe_start(self, rules: EventRules, level: float | None) -> list[Event]:
        if rules.rule == "mean":
            if level is None or level < self.threshold:
                return []
            first = self.history[0][0]  # the averaging window that reached the threshold
            if first < self.cooldown_until:  # ... must lie wholly after the cooldown
                self.suppressed += 1
                return []
        else:
            hot = [o for o in self.history if o[2] >= self.threshold]
            if len(hot) < rules.k or hot[-1] is not self.history[-1]:  # only a hot observation starts one
                return []
            # An event may not start inside the cooldown: only hot observations after it count.
            eligible = [o for o in hot if o[0] >= self.cooldown_until]
            if len(eligible) < rules.k:
                self.suppressed += 1
                return []
            first = eligible[0][0]
        self.active = active = _Active(uuid7(), first, self.threshold, self.suppressed)
        self.suppressed = 0
        for start, end, score, values, groups in self.history:
            if start >= first:
                active.hold(start, end, score, score >= self.threshold, values, groups)
        active.last_report = active.until
        return [active.event(self.label, "start")]

    def finish(self, rules: EventRules, limit: float | None) -> Event:
        active = self.active
        end = active.until if limit is None else min(active.until, limit)
        active.until = end
        self.active = None
        self.cooldown_until = end + rules.cooldown_s
        return active.event(self.label, "end", end)


class EventTracker:
    """Feeds observations (one score vector per window or frame, in time order) through the rules
    for each alert group independently, and returns the event phases they produce.

    `thresholds` are keyed by group, `groups` (name -> its labels) as edge.decisions.groups.alert_groups
    gives them; without `groups`, thresholds are keyed by label and each label is a group of one."""

    def __init__(self, labels: Sequence[str], thresholds: dict[str, float], rules: EventRules | None = None,
                 groups: dict[str, tuple[str, ...]] | None = None):
        self.labels = tuple(labels)
        self.rules = rules or EventRules()
        if groups is None:
            for label in thresholds:
                if label not in self.labels:
                    raise ValueError(f"threshold given for {label!r}, which is not a label of this model ({', '.join(self.labels)})")
            groups = {label: (label,) for label in thresholds}
        for name, threshold in thresholds.items():
            if name not in groups:
                raise ValueError(f"threshold given for {name!r}, which is not an alert group ({describe(groups)})")
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {name!r} must be in [0, 1], got {threshold}")
        strays = sorted({m for members in groups.values() for m in members} - set(self.labels))
        if strays:
            raise ValueError(f"groups name {strays}, which are not labels of this model ({', '.join(self.labels)})")
        self.groups = {name: tuple(members) for name, members in groups.items()}
        self._detail = not plain(self.groups)  # events then carry every group's score
        self.thresholds = dict(thresholds)
        self._reset()

    def _reset(self) -> None:
        names = list(self.groups)
        self._tracked = [_Group(name, names.index(name), t) for name, t in self.thresholds.items()]
        self._last: tuple[float, float] | None = None  # (start, end) of the latest observation

    def active(self) -> dict[str, str]:
        """group -> event id of the events now active."""
        return {t.label: t.active.id for t in self._tracked if t.active is not None}

    def observe(self, start_time: float, end_time: float, scores: Sequence[float] | np.ndarray) -> list[Event]:
        """One observation covering [start_time, end_time]; returns the phases it produced
        (gap ends first, then per group in the order of `thresholds`)."""
        if not (math.isfinite(start_time) and math.isfinite(end_time)) or end_time < start_time:
            raise ValueError(f"observation times must be finite with end >= start, got {start_time}..{end_time}")
        if self._last is not None and start_time < self._last[0]:
            raise ValueError(f"observations must come in time order: {start_time} starts before the previous one "
                             f"({self._last[0]}); use close() before starting a new clip or stream")
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(self.labels):
            raise ValueError(f"got {values.shape[0]} scores for {len(self.labels)} labels ({', '.join(self.labels)})")
        events = []
        every = tuple(float(v) for v in values)
        by_group = group_scores(values, self.labels, self.groups)
        detail = {name: float(v) for name, v in zip(self.groups, by_group)} if self._detail else None
        gap = self.rules.max_gap_s
        if self._last is not None and gap is not None and start_time - self._last[1] > gap:
            # Silence-gated windows or a stopped source: what happened in the gap is unknown,
            # so active events end at what was last heard and k-of-n (or the mean) starts afresh.
            for tracked in self._tracked:
                if tracked.active is not None:
                    events.append(tracked.finish(self.rules, None))
                tracked.history.clear()
        self._last = (start_time, end_time)
        for tracked in self._tracked:
            score = float(by_group[tracked.index])
            if not math.isfinite(score):
                raise ValueError(f"score of {tracked.label!r} is {score} at {start_time}: the model gave a non-finite score")
            events.extend(tracked.step(start_time, end_time, score, every, detail, self.rules))
        return events

    def close(self, time: float | None = None) -> list[Event]:
        """End every active event (end of a clip, shutdown) and start afresh, so the next
        observation may come from a new clip with its own time origin. `time`, when given, is when
        the stream stopped: no event ends after it. Suppressed counts not yet reported are dropped."""
        if time is not None and self._last is not None and time < self._last[0]:
            raise ValueError(f"close({time}) is before the latest observation, which started at {self._last[0]}")
        events = [t.finish(self.rules, time) for t in self._tracked if t.active is not None]
        self._reset()
        return events

