"""Scores over time -> events: an excavator working all day becomes a few events, not a record
per window.

Per alert label: an event starts when k of the last n observations reach the label's threshold
(one loud window alone raises nothing), is held while scores stay at or above threshold -
hysteresis (a score wobbling around the threshold neither ends nor restarts it), and ends after
n observations in a row below that. It is reported in phases that share one id: "start",
"update" heartbeats while it lasts, and "end".

Pure logic: no clock, no I/O. Times are passed in, in seconds: Unix time for a live source,
the offset from the clip's start for a file.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from edge.ids import uuid7


@dataclass(frozen=True)
class EventRules:
    """How observations become events. The defaults suit audio windows of ~1 s with a 0.5 s hop."""

    k: int = 2  # an event starts when k ...
    n: int = 3  # ... of the last n observations are hot, and ends after n quiet ones in a row
    hysteresis: float = 0.1  # an active event is held while score >= threshold - hysteresis
    cooldown_s: float = 30.0  # after an event ends, its label cannot start a new one for this long
    update_s: float = 600.0  # an active event reports an "update" this often; 0 = never
    max_gap_s: float | None = 5.0  # a longer gap between observations ends active events; None = never

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


def _check(values: dict, where: str) -> None:
    """Types first (a config file can say anything), then ranges; the message names the key."""
    for key, value in values.items():
        integer = key in ("k", "n")
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
    gap = values.get("max_gap_s", EventRules.max_gap_s)
    if gap is not None and gap <= 0:
        raise ValueError(f"{where}: max_gap_s must be > 0 seconds (or null for no limit), got {gap}")


@dataclass(frozen=True)
class Event:
    """One phase of one event. Times are in the tracker's time base (see the module docstring)."""

    id: str  # shared by every phase of the event
    label: str
    phase: str  # "start" | "update" | "end"
    start: float  # start of the first hot observation
    end: float | None  # end of the last held observation; None while active
    peak_score: float
    peak_time: float  # start of the observation with the peak score (finds its window record)
    windows: int  # observations from start to the last held one, quiet ones between included
    hot_windows: int  # of those, at or above the threshold
    mean_score: float  # of the label's score over `windows`
    threshold: float
    suppressed: int  # hot observations that would have started an event during the cooldown before this one
    until: float  # end of the last held observation so far (= end once ended)
    peak_scores: tuple[float, ...] = ()  # every label's score in the peak observation (the record's `scores`)

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
    windows: int = 0
    hot_windows: int = 0
    score_sum: float = 0.0
    until: float = 0.0
    last_report: float = 0.0  # `until` when the last phase was reported, for update_s
    # Quiet observations after the last held one: they belong to the event only if a held one follows.
    quiet: int = 0
    quiet_sum: float = 0.0

    def hold(self, start: float, end: float, score: float, hot: bool, values: tuple) -> None:
        self.windows += self.quiet + 1
        self.score_sum += self.quiet_sum + score
        self.quiet, self.quiet_sum = 0, 0.0
        self.hot_windows += hot
        if score > self.peak_score:
            self.peak_score, self.peak_time, self.peak_scores = score, start, values
        self.until = end

    def event(self, label: str, phase: str, end: float | None = None) -> Event:
        return Event(self.id, label, phase, self.start, end, self.peak_score, self.peak_time, self.windows,
                     self.hot_windows, self.score_sum / self.windows, self.threshold, self.suppressed, self.until,
                     self.peak_scores)


@dataclass
class _Label:
    label: str
    index: int
    threshold: float
    history: deque = field(default_factory=deque)  # (start, end, score, all scores) of the last n observations
    active: _Active | None = None
    cooldown_until: float = -math.inf
    suppressed: int = 0

    def step(self, start: float, end: float, score: float, values: tuple, rules: EventRules) -> list[Event]:
        hot = score >= self.threshold
        self.history.append((start, end, score, values))
        if len(self.history) > rules.n:
            self.history.popleft()
        active = self.active
        if active is None:
            return self._maybe_start(rules)
        if score >= self.threshold - rules.hysteresis:
            active.hold(start, end, score, hot, values)
        else:
            active.quiet += 1
            active.quiet_sum += score
            if active.quiet >= rules.n:
                return [self.finish(rules, None)]
        if rules.update_s and active.until - active.last_report >= rules.update_s:
            active.last_report = active.until
            return [active.event(self.label, "update")]
        return []

    def _maybe_start(self, rules: EventRules) -> list[Event]:
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
        for start, end, score, values in self.history:
            if start >= first:
                active.hold(start, end, score, score >= self.threshold, values)
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
    for each alert label independently, and returns the event phases they produce."""

    def __init__(self, labels: Sequence[str], thresholds: dict[str, float], rules: EventRules | None = None):
        self.labels = tuple(labels)
        self.rules = rules or EventRules()
        for label, threshold in thresholds.items():
            if label not in self.labels:
                raise ValueError(f"threshold given for {label!r}, which is not a label of this model ({', '.join(self.labels)})")
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {label!r} must be in [0, 1], got {threshold}")
        self.thresholds = dict(thresholds)
        self._reset()

    def _reset(self) -> None:
        self._tracked = [_Label(label, self.labels.index(label), t) for label, t in self.thresholds.items()]
        self._last: tuple[float, float] | None = None  # (start, end) of the latest observation

    def active(self) -> dict[str, str]:
        """label -> event id of the events now active."""
        return {t.label: t.active.id for t in self._tracked if t.active is not None}

    def observe(self, start_time: float, end_time: float, scores: Sequence[float] | np.ndarray) -> list[Event]:
        """One observation covering [start_time, end_time]; returns the phases it produced
        (gap ends first, then per label in the order of `thresholds`)."""
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
        gap = self.rules.max_gap_s
        if self._last is not None and gap is not None and start_time - self._last[1] > gap:
            # Silence-gated windows or a stopped source: what happened in the gap is unknown,
            # so active events end at what was last heard and k-of-n starts afresh.
            for tracked in self._tracked:
                if tracked.active is not None:
                    events.append(tracked.finish(self.rules, None))
                tracked.history.clear()
        self._last = (start_time, end_time)
        for tracked in self._tracked:
            score = float(values[tracked.index])
            if not math.isfinite(score):
                raise ValueError(f"score of {tracked.label!r} is {score} at {start_time}: the model gave a non-finite score")
            events.extend(tracked.step(start_time, end_time, score, every, self.rules))
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

