"""converter/operating_points.py: choosing a point on a recall / false-alarm curve, on synthetic points
whose answer is known by hand."""

from __future__ import annotations

import math

import pytest

from converter.operating_points import Point, choose, first_within, frontier, poisson_upper


def point(name: str, detected: int, false_alarms: int, delay: float | None = 1.0, *, positives: int = 10,
          hours: float = 2.0) -> Point:
    return Point({"name": name}, detected, positives, false_alarms, hours, delay)


def names(points) -> list[str]:
    return [p.params["name"] for p in points]


def test_the_most_recall_within_the_target_wins():
    points = [point("lax", 10, 9), point("middle", 8, 2), point("strict", 5, 0), point("over", 9, 3)]
    # 1 false alarm an hour over 2 hours: at most 2 false alarms
    choice = choose(points, 1.0)
    assert choice.point.params["name"] == "middle" and choice.reached and choice.eligible == 2 and choice.tied == 1
    assert choose(points, 0.0).point.params["name"] == "strict"
    assert choose(points, 100).point.params["name"] == "lax"
    assert points[1].recall == 0.8 and points[1].rate == 1.0


def test_ties_go_to_the_shorter_delay_then_fewer_false_alarms_then_the_middle():
    by_delay = [point("slow", 8, 1, 3.0), point("fast", 8, 2, 1.5), point("never", 8, 0, None)]
    assert choose(by_delay, 1.0).point.params["name"] == "fast"
    by_alarms = [point("two", 8, 2, 1.5), point("one", 8, 1, 1.5), point("also one", 8, 1, 1.5)]
    choice = choose(by_alarms, 1.0)
    assert choice.tied == 2 and choice.point.params["name"] == "one", "of two tied, the first of the middle pair"
    run = [point(f"t{k}", 8, 0, 1.5) for k in range(5)]  # e.g. five thresholds in a row that measured the same
    assert choose(run, 1.0).point.params["name"] == "t2" and choose(run, 1.0).tied == 5


def test_when_nothing_reaches_the_target_the_fewest_false_alarms_then_the_most_recall():
    points = [point("a", 10, 9), point("b", 6, 4), point("c", 7, 4)]
    choice = choose(points, 1.0)
    assert not choice.reached and choice.point.params["name"] == "c" and choice.eligible == 0


def test_first_within_takes_the_least_strict_setting_that_meets_the_target():
    ordered = [point("0.5", 0, 6, positives=0), point("0.6", 0, 3, positives=0), point("0.7", 0, 1, positives=0),
               point("0.8", 0, 0, positives=0)]
    assert ordered[0].recall is None
    assert first_within(ordered, 1.0).point.params["name"] == "0.7"
    assert first_within(ordered, 3.0).point.params["name"] == "0.5"
    missed = first_within(ordered[:2], 1.0)
    assert not missed.reached and missed.point.params["name"] == "0.6", "none meets it: the strictest"


def test_no_exposure_means_no_rate_unless_there_were_false_alarms():
    assert point("x", 1, 0, hours=0.0).rate == 0.0 and point("y", 1, 1, hours=0.0).rate == math.inf


def test_frontier_keeps_what_nothing_beats_on_both():
    points = [point("a", 5, 0), point("b", 4, 1), point("c", 8, 2), point("d", 8, 3), point("e", 10, 6)]
    assert names(frontier(points)) == ["a", "c", "e"]


def test_poisson_upper_bounds():
    assert poisson_upper(0) == pytest.approx(-math.log(0.05), abs=1e-6)  # 2.996: the rule of three
    assert poisson_upper(1) == pytest.approx(4.7439, abs=1e-3)
    assert poisson_upper(3) == pytest.approx(7.7537, abs=1e-3)
    assert poisson_upper(0, 0.9) == pytest.approx(-math.log(0.1), abs=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no operating points"):
        choose([], 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        choose([point("a", 1, 0)], -1)
