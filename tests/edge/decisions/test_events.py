"""Event logic on scripted score sequences: audio windows 1 s long every 0.5 s, as the audio path makes them."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edge.decisions.events import Event, EventRules, EventTracker

LABELS = ("background", "excavator", "chainsaw")
THRESHOLDS = {"excavator": 0.5, "chainsaw": 0.6}
HOP, WINDOW = 0.5, 1.0
PLAIN = dict(k=2, n=3, hysteresis=0.1, cooldown_s=0.0, update_s=0.0, max_gap_s=None)


def tracker(**rules) -> EventTracker:
    return EventTracker(LABELS, THRESHOLDS, EventRules(**(PLAIN | rules)))


def scores(excavator: float, chainsaw: float = 0.0) -> np.ndarray:
    return np.array([max(0.0, 1 - excavator - chainsaw), excavator, chainsaw])


def feed(t: EventTracker, excavator: list[float], chainsaw: list[float] | None = None, *, first: int = 0) -> list[tuple[int, Event]]:
    """Window i covers [0.5 i, 0.5 i + 1]; returns (window index, event) for every phase produced."""
    chainsaw = chainsaw or [0.0] * len(excavator)
    out = []
    for i, (e, c) in enumerate(zip(excavator, chainsaw), start=first):
        out += [(i, ev) for ev in t.observe(i * HOP, i * HOP + WINDOW, scores(e, c))]
    return out


def test_starts_exactly_when_k_of_the_last_n_are_hot():
    t = tracker()
    #            0    1    2    3    4    5    6
    sequence = [0.2, 0.9, 0.2, 0.2, 0.9, 0.3, 0.9]
    events = feed(t, sequence)
    assert [(i, e.phase) for i, e in events] == [(6, "start")]  # window 1 alone, or 4 alone, starts nothing
    (_, start), = events
    assert (start.label, start.start, start.end, start.until) == ("excavator", 2.0, None, 4.0)
    assert (start.windows, start.hot_windows, start.peak_score, start.peak_time) == (3, 2, 0.9, 2.0)
    assert start.mean_score == pytest.approx((0.9 + 0.3 + 0.9) / 3)
    assert start.threshold == 0.5 and start.suppressed == 0


def test_an_active_event_continues_and_ends_after_n_quiet_windows_at_the_last_held_one():
    t = tracker()
    #            0    1    2    3    4     5    6    7    8
    sequence = [0.8, 0.9, 0.7, 0.6, 0.45, 0.1, 0.1, 0.1, 0.1]
    events = feed(t, sequence)
    assert [(i, e.phase) for i, e in events] == [(1, "start"), (7, "end")]
    end = events[-1][1]
    assert end.id == events[0][1].id
    assert (end.start, end.end, end.until, end.duration_s) == (0.0, 3.0, 3.0, 3.0)  # window 4 (0.45 >= 0.5 - 0.1) held it
    assert (end.windows, end.hot_windows, end.peak_score, end.peak_time) == (5, 4, 0.9, 0.5)
    assert end.mean_score == pytest.approx((0.8 + 0.9 + 0.7 + 0.6 + 0.45) / 5)
    assert t.active() == {}


def test_quiet_windows_between_held_ones_count_but_a_quiet_tail_does_not():
    t = tracker()
    events = feed(t, [0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1])
    end = events[-1][1]
    assert end.phase == "end" and end.end == 4 * HOP + WINDOW
    assert (end.windows, end.hot_windows) == (5, 3)
    assert end.mean_score == pytest.approx((0.9 * 3 + 0.1 * 2) / 5)


def test_hysteresis_holds_an_event_while_scores_dip_below_the_threshold():
    dip = [0.9, 0.9] + [0.42] * 20 + [0.9, 0.9]
    held = feed(tracker(hysteresis=0.1), dip)
    assert [e.phase for _, e in held] == ["start"]
    dropped = feed(tracker(hysteresis=0.0), dip)  # the same dip without hysteresis: two events
    assert [e.phase for _, e in dropped] == ["start", "end", "start"]
    assert dropped[0][1].id != dropped[2][1].id


@pytest.mark.parametrize("high, low, hysteresis, windows", [
    (0.51, 0.49, 0.1, 400),  # every low window holds the event, the last one too
    (0.55, 0.35, 0.1, 399),  # low windows are quiet, but never n in a row: held to the last high one
    (0.51, 0.49, 0.0, 399),
])
def test_a_score_flapping_around_the_threshold_gives_one_event(high, low, hysteresis, windows):
    t = tracker(hysteresis=hysteresis)
    events = feed(t, [high, low] * 200)
    events += [(400, e) for e in t.close()]
    assert [e.phase for _, e in events] == ["start", "end"]
    end = events[-1][1]
    assert (end.start, end.windows, end.hot_windows) == (0.0, windows, 200)


def test_cooldown_suppresses_and_counts_retriggers_then_a_new_event_gets_a_new_id():
    t = tracker(cooldown_s=30.0)
    first = feed(t, [0.9] * 4 + [0.1] * 3)
    assert [e.phase for _, e in first] == ["start", "end"]
    end = first[-1][1]
    assert end.end == 2.5  # cooldown until 32.5
    retrigger = feed(t, [0.9] * 10 + [0.1] * 3, first=7)
    assert retrigger == []  # windows 7..16, all inside the cooldown
    # hot from window 60 (30.0 s) on: windows starting before 32.5 s may not start an event
    later = feed(t, [0.1] * 40 + [0.9] * 10, first=20)
    (i, start), = later
    assert start.phase == "start" and start.id != end.id
    assert start.start == 32.5 and i == 66  # windows 65 (32.5 s) and 66 are the first eligible two
    assert start.suppressed == 9 + 5  # 10 hot windows make 9 would-be starts; windows 61..65 make 5 more
    assert (start.windows, start.hot_windows) == (2, 2)


def test_updates_are_heartbeats_of_the_same_event():
    t = tracker(update_s=10.0)
    events = feed(t, [0.9] * 60)
    assert [(i, e.phase) for i, e in events] == [(1, "start"), (21, "update"), (41, "update")]
    start, first, second = (e for _, e in events)
    assert start.id == first.id == second.id
    assert (start.until, first.until, second.until) == (1.5, 11.5, 21.5)  # every 10 s of held windows
    assert first.end is None and first.windows == 22 and second.windows == 42
    assert [e.phase for _, e in feed(tracker(update_s=0.0), [0.9] * 60)] == ["start"]


def test_a_gap_longer_than_max_gap_ends_active_events_at_the_last_window():
    t = tracker(max_gap_s=5.0)
    feed(t, [0.9] * 6)  # windows 0..5, the last ends at 3.5 s
    assert t.observe(8.5, 9.5, scores(0.9)) == []  # a gap of exactly 5 s is not too long
    ended = t.observe(15.0, 16.0, scores(0.9))  # 5.5 s of nothing
    assert [(e.phase, e.end, e.windows) for e in ended] == [("end", 9.5, 7)]
    # k-of-n starts afresh after a gap: window at 15.0 s alone starts nothing, the next one does
    (start,) = t.observe(15.5, 16.5, scores(0.9))
    assert (start.phase, start.start) == ("start", 15.0) and start.id != ended[0].id


def test_two_labels_are_tracked_independently():
    t = tracker()
    excavator = [0.9] * 10 + [0.1] * 10
    chainsaw = [0.0] * 5 + [0.7] * 10 + [0.0] * 5
    events = feed(t, excavator, chainsaw)
    assert [(i, e.label, e.phase) for i, e in events] == [
        (1, "excavator", "start"), (6, "chainsaw", "start"), (12, "excavator", "end"), (17, "chainsaw", "end")]
    by_label = {e.label: e for _, e in events if e.phase == "end"}
    assert (by_label["excavator"].start, by_label["excavator"].end) == (0.0, 5.5)
    assert (by_label["chainsaw"].start, by_label["chainsaw"].end, by_label["chainsaw"].threshold) == (2.5, 8.0, 0.6)
    assert by_label["excavator"].id != by_label["chainsaw"].id


def test_a_label_without_a_threshold_is_not_tracked():
    t = tracker()
    for i in range(10):
        assert t.observe(i * HOP, i * HOP + WINDOW, [1.0, 0.0, 0.0]) == []


def test_close_ends_active_events_and_starts_afresh():
    t = tracker()
    feed(t, [0.9] * 6 + [0.2])  # the last window is quiet: the event is held to window 5
    assert set(t.active()) == {"excavator"}
    (end,) = t.close()
    assert (end.phase, end.end, end.windows) == ("end", 3.5, 6)
    assert t.close() == [] and t.active() == {}
    # a new clip, its times from 0 again
    again = feed(t, [0.9] * 2)
    assert [e.phase for _, e in again] == ["start"] and again[0][1].id != end.id
    (clipped,) = t.close(time=1.2)  # the clip stopped at 1.2 s: nothing ends after it
    assert clipped.end == 1.2 and clipped.start <= clipped.peak_time <= clipped.end
    feed(t, [0.9] * 3)
    with pytest.raises(ValueError, match="before the latest observation"):
        t.close(time=0.5)


def test_k_n_1_is_plain_thresholding():
    t = tracker(k=1, n=1, hysteresis=0.0)
    sequence = [0.6, 0.4, 0.6, 0.6, 0.4, 0.4, 0.7]
    events = feed(t, sequence) + [(7, e) for e in t.close()]
    runs = [(e.start, e.end) for _, e in events if e.phase == "end"]
    assert runs == [(0.0, 1.0), (1.0, 2.5), (3.0, 4.0)]  # each run of windows >= 0.5, from its start to its end
    assert [(i, e.phase) for i, e in events][:4] == [(0, "start"), (1, "end"), (2, "start"), (4, "end")]


def test_rules_are_validated_with_the_key_named():
    assert EventRules() == EventRules(k=2, n=3, hysteresis=0.1, cooldown_s=30.0, update_s=600.0, max_gap_s=5.0)
    for bad, message in [(dict(k=4, n=3), r"k \(4\) must not exceed n \(3\)"), (dict(k=0), "k must be at least 1"),
                         (dict(hysteresis=-0.1), "hysteresis must be in"), (dict(cooldown_s=-1), "cooldown_s must be >= 0"),
                         (dict(update_s=-5), "update_s must be >= 0"), (dict(max_gap_s=0), "max_gap_s must be > 0"),
                         (dict(k=2.0), "k must be an integer")]:
        with pytest.raises(ValueError, match=message):
            EventRules(**bad)
    assert EventRules(max_gap_s=None).max_gap_s is None


def test_rules_from_a_config_table():
    where = "nv.toml [audio.events]"
    assert EventRules.from_dict({"k": 3, "n": 5, "max_gap_s": None}, where) == EventRules(k=3, n=5, max_gap_s=None)
    assert EventRules.from_dict({}, where) == EventRules()
    for table, message in [({"k": 2, "windows": 3}, r"nv.toml \[audio.events\]: unknown key\(s\) 'windows'; known keys: k, n, "),
                           ({"k": "2"}, r"nv.toml \[audio.events\]: k must be an integer, got '2'"),
                           ({"hysteresis": True}, "hysteresis must be a number, got True"),
                           ({"cooldown_s": float("nan")}, "cooldown_s must be finite"),
                           ({"k": 5}, r"k \(5\) must not exceed n \(3\)"),
                           ([1, 2], "expected a table of event rules, got list")]:
        with pytest.raises(ValueError, match=message):
            EventRules.from_dict(table, where)


def test_bad_observations_are_refused():
    with pytest.raises(ValueError, match="'drill', which is not a label of this model"):
        EventTracker(LABELS, {"drill": 0.5})
    with pytest.raises(ValueError, match="threshold for 'excavator' must be in"):
        EventTracker(LABELS, {"excavator": 1.5})
    t = tracker()
    with pytest.raises(ValueError, match="got 2 scores for 3 labels"):
        t.observe(0.0, 1.0, [0.1, 0.9])
    with pytest.raises(ValueError, match="end >= start"):
        t.observe(1.0, 0.5, scores(0.9))
    t.observe(5.0, 6.0, scores(0.9))
    with pytest.raises(ValueError, match="must come in time order"):
        t.observe(4.5, 5.5, scores(0.9))
    with pytest.raises(ValueError, match="non-finite score"):
        t.observe(5.5, 6.5, scores(float("nan")))


@pytest.mark.parametrize("seed", range(40))
def test_invariants_hold_on_random_sequences(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 5)
    rules = EventRules(k=rng.randint(1, n), n=n, hysteresis=rng.choice([0.0, 0.05, 0.2]),
                       cooldown_s=rng.choice([0.0, 2.0, 10.0]), update_s=rng.choice([0.0, 3.0]),
                       max_gap_s=rng.choice([None, 2.0]))
    t = EventTracker(LABELS, THRESHOLDS, rules)
    events, time = [], 0.0
    level = {"excavator": 0.2, "chainsaw": 0.2}
    for _ in range(rng.randint(50, 400)):
        time += HOP if rng.random() > 0.03 else rng.uniform(1.0, 6.0)  # now and then a gap
        for label in level:  # a random walk: runs of hot and quiet, and flapping near the threshold
            level[label] = min(1.0, max(0.0, level[label] + rng.gauss(0, 0.15)))
        events += t.observe(time, time + WINDOW, [0.0, level["excavator"], level["chainsaw"]])
    events += t.close()
    by_id: dict[str, list[Event]] = {}
    for e in events:
        by_id.setdefault(e.id, []).append(e)
    assert by_id  # the walk does cross the thresholds
    previous_end: dict[str, float] = {}
    for phases in by_id.values():
        names = [e.phase for e in phases]
        assert names[0] == "start" and names[-1] == "end" and names.count("end") == 1 and names.count("start") == 1
        end = phases[-1]
        assert end.start <= end.peak_time <= end.end
        assert end.windows >= end.hot_windows >= rules.k
        assert end.peak_score >= end.threshold and 0.0 <= end.mean_score <= end.peak_score + 1e-9
        assert all(e.start == end.start and e.label == end.label for e in phases)
        assert [e.windows for e in phases] == sorted(e.windows for e in phases)  # figures only grow
        if end.label in previous_end:  # by_id keeps the order events started in
            assert end.start >= previous_end[end.label] + rules.cooldown_s
        previous_end[end.label] = end.end
    assert t.active() == {}
