"""Choosing an operating point on a trade-off curve: the most detections at a false-alarm rate a ranger
can live with.

A point is one setting of a detector (an event rule and a threshold, a tile threshold...) measured on
labelled data: how many of the positives it found, how many false alarms it raised on the negatives and
over how much exposure (hours of background audio, scenes, frames), and how long it took to find them.
Nothing here knows about audio: `converter.audio_events` makes the points, the image side may too.

The choice, on validation only (test is for reporting):
1. keep the points whose false-alarm rate is at most the target;
2. of those, the highest recall; ties -> the shorter delay -> fewer false alarms;
3. the points still tied measured the same, so the one in the middle of them (in the order given, e.g.
   threshold ascending) is furthest from the edges where recall starts to fall or false alarms start.
When no point reaches the target, the one with the lowest rate (then the highest recall) is taken and
the choice says so (`reached=False`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Point:
    params: dict[str, Any]  # the setting, e.g. {"rule": "mean", "window": 4, "threshold": 0.5}
    detected: int  # positives found
    positives: int
    false_alarms: int
    exposure: float  # what false alarms are counted over (hours of background audio, frames...)
    delay: float | None = None  # lower is better, e.g. the median seconds to an event; None: nothing found
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth reporting

    @property
    def recall(self) -> float | None:
        return self.detected / self.positives if self.positives else None

    @property
    def rate(self) -> float:
        """False alarms per unit of exposure (inf when there was none to count over)."""
        if self.exposure > 0:
            return self.false_alarms / self.exposure
        return 0.0 if self.false_alarms == 0 else math.inf


@dataclass(frozen=True)
class Choice:
    point: Point
    reached: bool  # the target rate was met
    tied: int  # points that measured exactly as well (1: the choice was clear)
    eligible: int  # points within the target


def _key(p: Point) -> tuple:
    """Smaller is better: recall (high), delay (short), false alarms (few)."""
    return (-(p.recall or 0.0), math.inf if p.delay is None else p.delay, p.false_alarms)


def choose(points: Sequence[Point], max_rate: float) -> Choice:
    """The point to ship for a target false-alarm rate (see the module docstring)."""
    if not points:
        raise ValueError("no operating points to choose from")
    if not (max_rate >= 0):
        raise ValueError(f"the target false-alarm rate must be >= 0, got {max_rate}")
    eligible = [p for p in points if p.rate <= max_rate * (1 + 1e-9)]
    if not eligible:
        best = min(points, key=lambda p: (p.rate, *_key(p)))
        return Choice(best, False, 1, 0)
    best = min(_key(p) for p in eligible)
    tied = [p for p in eligible if _key(p) == best]
    return Choice(tied[(len(tied) - 1) // 2], True, len(tied), len(eligible))


def first_within(points: Sequence[Point], max_rate: float) -> Choice:
    """The first point, in the order given, whose rate is within the target: for data without positives
    (background only), where recall cannot be measured and the order says which setting is the least
    strict. None reaching it: the last point (the strictest), reached=False."""
    if not points:
        raise ValueError("no operating points to choose from")
    for k, p in enumerate(points):
        if p.rate <= max_rate * (1 + 1e-9):
            return Choice(p, True, 1, len(points) - k)
    return Choice(points[-1], False, 1, 0)


def frontier(points: Sequence[Point]) -> list[Point]:
    """The points no other beats on both recall and rate (the upper-left edge of the recall / false-alarm
    curve), by rate ascending."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.rate, -(p.recall or 0.0))):
        if not out or (p.recall or 0.0) > (out[-1].recall or 0.0):
            out.append(p)
    return out


def poisson_upper(count: int, confidence: float = 0.95) -> float:
    """Upper confidence bound of a Poisson mean after seeing `count` events (exact, by bisection on the
    CDF): with 0 events in h hours, the rate may still be as high as poisson_upper(0) / h = 3.0 / h."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    alpha = 1.0 - confidence

    def cdf(mu: float) -> float:
        term = total = math.exp(-mu)
        for k in range(1, count + 1):
            term *= mu / k
            total += term
        return total

    lo, hi = 0.0, count + 10.0 * math.sqrt(count + 1) + 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > alpha else (lo, mid)
    return hi
