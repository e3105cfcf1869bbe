"""The "mean" event rule and its smoother on scripted sequences with known answers: audio windows
1 s long every 0.5 s (window i covers [0.5 i, 0.5 i + 1]). Scores are multiples of 1/8, so every
mean is exact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edge.decisions.events import Event, EventRules, EventTracker, layered_rules
from edge.decisions.smoothing import rolling_mean, window_mean

LABELS = ("background", "excavator")
HOP, WINDOW = 0.5, 1.0
MEAN = dict(rule="mean", window=4, hysteresis=0.125, cooldown_s=0.0, update_s=0.0, max_gap_s=None)


def tracker(**rules) -> EventTracker:
    return EventTracker(LABELS, {"excavator": 0.5}, EventRules(**(MEAN | rules)))


def feed(t: EventTracker, sequence: list[float], *, first: int = 0) -> list[tuple[int, Event]]:
    out = []
    for i, score in enumerate(sequence, start=first):
        out += [(i, e) for e in t.observe(i * HOP, i * HOP + WINDOW, [1 - score, score])]
    return out


def test_rolling_mean():
    np.testing.assert_array_equal(rolling_mean(np.array([1.0, 2, 3, 4, 5]), 2), [np.nan, 1.5, 2.5, 3.5, 4.5])
    two = rolling_mean(np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]]), 3)  # (T, G): each column alone
    np.testing.assert_array_equal(two, [[np.nan, np.nan], [np.nan, np.nan], [1.0, 2 / 3]])
    np.testing.assert_array_equal(rolling_mean(np.array([0.25, 0.5]), 1), [0.25, 0.5])
    assert np.isnan(rolling_mean(np.array([0.5]), 4)).all(), "nothing before `window` observations"
    assert window_mean([0.1] * 10) == 0.1 * 10 / 10 == window_mean(reversed([0.1] * 10)), "exact whatever the order"
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="window must be a whole number"):
            rolling_mean(np.zeros(3), bad)


def test_an_event_starts_with_the_averaging_window_and_ends_with_the_last_held_observation():
    t = tracker(hysteresis=0.1)
    #           0     1     2     3     4     5     6     7     8     9
    sequence = [0.25, 0.25, 0.75, 0.75, 0.75, 0.75, 0.25, 0.25, 0.25, 0.25]
    # means from window 3 on: 0.5, 0.625, 0.75, 0.625, 0.5, 0.375 (< 0.5 - 0.1: the end), 0.25
    events = feed(t, sequence)
    assert [(i, e.phase) for i, e in events] == [(3, "start"), (8, "end")]
    start, end = (e for _, e in events)
    assert (start.start, start.windows, start.hot_windows, start.until) == (0.0, 4, 2, 2.5), "the whole window that made it"
    assert (end.start, end.end, end.windows, end.hot_windows) == (0.0, 4.5, 8, 4)  # held to window 7 (mean 0.5)
    assert (end.peak_score, end.peak_time, end.mean_score, end.threshold) == (0.75, 1.0, 0.5, 0.5)


def test_scores_just_under_the_threshold_with_one_over_make_an_event_k_of_n_misses():
    wobble = [0.375, 0.375, 0.375, 0.875] * 5  # means 0.5 from window 3 on; one window in four is hot
    assert feed(EventTracker(LABELS, {"excavator": 0.5}, EventRules(cooldown_s=0)), wobble) == []
    assert [(i, e.phase) for i, e in feed(tracker(), wobble)] == [(3, "start")]
    alone = [0.25, 0.25, 0.25, 1.0, 0.25, 0.25, 0.25, 0.25]  # one loud window: its mean is 0.4375
    assert feed(tracker(), alone) == []


def test_hysteresis_holds_the_mean_through_a_dip():
    dip = [0.75] * 6 + [0.375] * 6 + [0.75] * 4  # the mean falls to 0.375 in the dip
    assert [(i, e.phase) for i, e in feed(tracker(hysteresis=0.125), dip)] == [(3, "start")]
    dropped = feed(tracker(hysteresis=0.0), dip)  # means 0.65625, 0.5625, 0.46875 (end) ... 0.5625 (again)
    assert [(i, e.phase) for i, e in dropped] == [(3, "start"), (8, "end"), (13, "start")]
    assert dropped[1][1].end == 4.5 and dropped[2][1].start == 5.0 and dropped[2][1].id != dropped[0][1].id


def test_a_gap_ends_the_event_and_the_mean_starts_afresh():
    t = tracker(max_gap_s=2.0)
    feed(t, [0.75] * 6)  # started at window 3; the last window ends at 3.5 s
    ended = t.observe(10.0, 11.0, [0.25, 0.75])
    assert [(e.phase, e.end, e.windows) for e in ended] == [("end", 3.5, 6)]
    assert t.observe(10.5, 11.5, [0.25, 0.75]) == [] and t.observe(11.0, 12.0, [0.25, 0.75]) == []
    (start,) = t.observe(11.5, 12.5, [0.25, 0.75])  # the 4th window after the gap fills the average
    assert (start.phase, start.start, start.windows) == ("start", 10.0, 4)


def test_cooldown_needs_the_whole_averaging_window_after_it():
    t = tracker(hysteresis=0.1, cooldown_s=10.0)
    events = feed(t, [0.75] * 6 + [0.25] * 4 + [0.75] * 30)
    assert [(i, e.phase) for i, e in events] == [(3, "start"), (8, "end"), (32, "start")]
    end, again = events[1][1], events[2][1]
    assert end.end == 4.5  # cooldown until 14.5 s: window 29 is the first to start after it
    assert again.start == 14.5 and again.suppressed == 21  # windows 11..31 had a mean >= 0.5, too early


def test_updates_and_close():
    t = tracker(update_s=10.0)
    events = feed(t, [0.75] * 60)
    assert [(i, e.phase) for i, e in events] == [(3, "start"), (23, "update"), (43, "update")]
    assert [e.until for _, e in events] == [2.5, 12.5, 22.5]
    (end,) = t.close(time=30.2)
    assert (end.phase, end.end, end.windows) == ("end", 30.2, 60)
    assert t.close() == [] and feed(t, [0.75] * 3) == [], "afresh: three windows do not fill the average"


def test_the_tracker_starts_where_the_rolling_mean_first_reaches_the_threshold():
    rng = np.random.default_rng(7)
    sequence = np.clip(np.linspace(0.1, 0.9, 200) + rng.normal(0, 0.1, 200), 0, 1)
    smoothed = rolling_mean(sequence, 6)
    first = int(np.argmax(smoothed >= 0.5))
    assert smoothed[first] >= 0.5
    events = feed(tracker(window=6), sequence.tolist())
    assert events[0][0] == first and events[0][1].start == (first - 5) * HOP


def test_rule_and_window_are_validated_with_the_key_named():
    assert EventRules().rule == "k_of_n" and EventRules().window == 4
    for bad, message in [(dict(rule="median"), "rule must be one of 'k_of_n', 'mean', got 'median'"),
                         (dict(rule=1), "rule must be one of"), (dict(window=0), "window must be at least 1"),
                         (dict(window=2.5), "window must be an integer")]:
        with pytest.raises(ValueError, match=message):
            EventRules(**bad)
    with pytest.raises(ValueError, match=r"nv.toml \[audio.events\]: window must be an integer, got '6'"):
        EventRules.from_dict({"rule": "mean", "window": "6"}, "nv.toml [audio.events]")
    assert EventRules.from_dict({"rule": "mean", "window": 6}, "x") == EventRules(rule="mean", window=6)


def test_layered_rules_later_keys_win_and_errors_name_the_table():
    bundle = ({"rule": "mean", "window": 6, "hysteresis": 0.05}, "m.nvm: manifest.json: events")
    assert layered_rules(bundle, ({"cooldown_s": 60}, "[audio.events]")) == EventRules(
        rule="mean", window=6, hysteresis=0.05, cooldown_s=60)
    assert layered_rules(bundle, ({"rule": "k_of_n"}, "--event")).rule == "k_of_n"
    assert layered_rules((None, "defaults"), (None, "m.nvm")) == EventRules()
    with pytest.raises(ValueError, match=r"--event: k \(3\) must not exceed n \(2\)"):
        layered_rules(({"k": 1, "n": 2}, "m.nvm: manifest.json: events"), ({"k": 3}, "--event"))
    with pytest.raises(ValueError, match=r"m.nvm: manifest.json: events: unknown key\(s\) 'span'"):
        layered_rules(({"span": 3}, "m.nvm: manifest.json: events"), ({}, "--event"))


@pytest.mark.parametrize("seed", range(20))
def test_invariants_hold_on_random_sequences(seed):
    rng = random.Random(seed)
    rules = EventRules(rule="mean", window=rng.randint(1, 8), hysteresis=rng.choice([0.0, 0.05, 0.2]),
                       cooldown_s=rng.choice([0.0, 2.0, 10.0]), update_s=rng.choice([0.0, 3.0]),
                       max_gap_s=rng.choice([None, 2.0]))
    t = EventTracker(LABELS, {"excavator": 0.5}, rules)
    events, time, level = [], 0.0, 0.2
    for _ in range(rng.randint(50, 400)):
        time += HOP if rng.random() > 0.03 else rng.uniform(1.0, 6.0)
        level = min(1.0, max(0.0, level + rng.gauss(0, 0.15)))
        events += t.observe(time, time + WINDOW, [1 - level, level])
    events += t.close()
    by_id: dict[str, list[Event]] = {}
    for e in events:
        by_id.setdefault(e.id, []).append(e)
    assert by_id  # the walk does cross the threshold
    previous_end = None
    for phases in by_id.values():
        assert [e.phase for e in phases][0] == "start" and [e.phase for e in phases][-1] == "end"
        end = phases[-1]
        assert end.start <= end.peak_time <= end.end and end.windows >= rules.window
        assert end.hot_windows >= 1 and end.peak_score >= end.threshold  # a mean >= threshold needs one window there
        if previous_end is not None:
            assert end.start >= previous_end + rules.cooldown_s
        previous_end = end.end
