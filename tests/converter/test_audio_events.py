"""converter/audio_events.py and the choice in converter/audio_operating.py: event recall, false alarms per
hour of background and delays on scripted clips whose answer is known by hand, through the device's own
EventTracker; then real scripted WAV files through the tiny audio model (tests/build_models.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from audiofiles import scripted, write_wav

from converter.audio_events import ScoredClip, curve, evaluate, rules_of, run_clip, thresholds_of
from converter.audio_operating import how, resolvable_target, select
from converter.audio_scoring import LabelledClip, load_scored, save_scored, score_clips
from converter.operating_points import choose, poisson_upper
from edge.decisions.events import EventTracker
from edge.model.loaded import load_model

LABELS = ("background", "engine", "drilling")
MACHINERY = {"machinery": ("engine", "drilling")}
HOP, WINDOW = 0.5, 0.975  # the device's windows: 0.975 s every 0.5 s
BASE = {"cooldown_s": 30.0}


def clip(levels: list[float], alert: bool, name: str = "clip", cls: str = "x") -> ScoredClip:
    """Window i starts at 0.5 i; its machinery score `levels[i]` is split evenly between engine and drilling,
    so neither label alone says much: only the group's sum does."""
    levels = np.asarray(levels, dtype=np.float64)
    scores = np.stack([1 - levels, levels / 2, levels / 2], axis=1)
    starts = np.arange(len(levels)) * HOP
    return ScoredClip(name, cls, alert, duration_s=len(levels) * HOP + 0.5, starts=starts, ends=starts + WINDOW, scores=scores)


def data() -> list[ScoredClip]:
    machinery = [clip([0.7] * 8, True, f"m{k}", "engine_idling") for k in range(4)]
    spikes = [clip([0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.1, 0.1], False, "one spike", "dog"),
              clip([0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.95, 0.1, 0.1], False, "two spikes", "gun_shot")]
    quiet = [clip([0.1] * 9, False, f"q{k}", "rain") for k in range(2)]
    return machinery + spikes + quiet  # background: 4 clips of 5 s


RULES = ({"rule": "k_of_n", "k": 1, "n": 1}, {"rule": "mean", "window": 3}, {"rule": "k_of_n", "k": 3, "n": 3})


def test_recall_false_alarms_per_hour_and_delays_by_hand():
    clips = data()
    one = evaluate(clips, LABELS, MACHINERY, {"rule": "k_of_n", "k": 1, "n": 1, "threshold": 0.5}, BASE, detail=True)
    assert (one.detected, one.positives, one.false_alarms) == (4, 4, 2), "each spike clip: one event (cooldown 30 s)"
    assert one.exposure == pytest.approx(20 / 3600) and one.rate == pytest.approx(2 / (20 / 3600))
    assert one.extra["false_alarms_by_class"] == {"dog": 1, "gun_shot": 1}
    assert (one.extra["delay_s_median"], one.extra["report_delay_s_median"]) == (0.0, 0.975), "reported as window 0 ends"
    mean = evaluate(clips, LABELS, MACHINERY, {"rule": "mean", "window": 3, "threshold": 0.5}, BASE)
    assert (mean.detected, mean.false_alarms) == (4, 0), "a spike's mean of 3 is 0.38"
    assert (mean.extra["delay_s_median"], mean.delay) == (0.0, 1.975), "dated back to window 0, known once window 2 ends"
    alone = evaluate(clips, LABELS, {"engine": ("engine",), "drilling": ("drilling",)},
                     {"rule": "k_of_n", "k": 1, "n": 1, "threshold": 0.5}, BASE)
    assert alone.detected == 0, "each label alone is 0.35: only the group's sum finds the machinery"


def test_delay_is_measured_from_the_onset():
    late = clip([0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9], True)  # machinery from 2.0 s
    params = {"rule": "k_of_n", "k": 2, "n": 3, "threshold": 0.5}
    outcome = run_clip(late, LABELS, MACHINERY, thresholds_of(params, MACHINERY), rules_of(params, BASE))
    assert (outcome.events, outcome.delay_s, outcome.report_delay_s) == (1, 2.0, 2.5 + WINDOW)


def test_the_choice_on_synthetic_scores_has_a_known_answer():
    points = curve(data(), LABELS, MACHINERY, RULES, (0.5, 0.6, 0.8), BASE)
    assert len(points) == 9
    # no false alarm allowed: the mean of 3 and 3 of 3 at 0.5 and 0.6 all find every machine, 1.975 s after
    # its onset; of those four tied points (in order mean 0.5, mean 0.6, 3/3 0.5, 3/3 0.6) the middle one
    strict = choose(points, 0.0)
    assert strict.tied == 4 and strict.point.params == {"rule": "mean", "window": 3, "threshold": 0.6}
    # two false alarms in the 20 s of background allowed: one window suffices, reported 1 s sooner
    lax = choose(points, 2 / (20 / 3600))
    assert lax.point.params == {"rule": "k_of_n", "k": 1, "n": 1, "threshold": 0.5} and lax.point.delay == 0.975


def test_a_target_below_what_the_background_can_show_is_raised_and_said():
    assert resolvable_target(1.0, 24.0) == 1.0, "a day of background resolves 1 an hour"
    assert resolvable_target(1.0, 0.1) == pytest.approx(30.0), "0.1 h: 3 false alarms in it"
    selection = select(data(), LABELS, MACHINERY, BASE, 1.0, rules=RULES, thresholds=(0.5, 0.6, 0.8))
    assert selection.used == pytest.approx(3 / (20 / 3600)) and selection.by_recall
    assert selection.choice.point.params["rule"] == "k_of_n" and selection.choice.point.params["k"] == 1


def release_data() -> list[ScoredClip]:
    """Where allowing 2 or 3 false alarms decides: 4 steady machines every rule finds, 2 brief ones only a
    single window finds, and 3 background clips with one spike each (20 s of background)."""
    steady = [clip([0.7] * 8, True, f"m{k}", "engine_idling") for k in range(4)]
    brief = [clip([0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1], True, f"b{k}", "drilling") for k in range(2)]
    spikes = [clip([0.1] * 3 + [0.95] + [0.1] * 5, False, f"s{k}", "rain") for k in range(3)]
    return steady + brief + spikes + [clip([0.1] * 9, False, "quiet", "rain")]


def test_a_fixed_number_of_false_alarms_replaces_the_rule_of_three():
    clips = release_data()
    assert resolvable_target(1.0, 0.1, max_false_alarms=2) == pytest.approx(20.0), "2 in 0.1 h, whatever was asked"
    assert resolvable_target(1000.0, 0.1, max_false_alarms=0) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        resolvable_target(1.0, 0.1, max_false_alarms=-1)
    three = select(clips, LABELS, MACHINERY, BASE, 1.0, rules=RULES, thresholds=(0.5, 0.6, 0.8))
    assert three.choice.point.params == {"rule": "k_of_n", "k": 1, "n": 1, "threshold": 0.5}
    assert (three.choice.point.detected, three.choice.point.false_alarms) == (6, 3), "rule of three: the spikes admitted"
    two = select(clips, LABELS, MACHINERY, BASE, 1.0, rules=RULES, thresholds=(0.5, 0.6, 0.8), max_false_alarms=2)
    assert two.used == pytest.approx(2 / (20 / 3600)) and two.max_false_alarms == 2 and two.choice.reached
    assert (two.choice.point.detected, two.choice.point.false_alarms) == (4, 0), "1 of 1 has 3: out"
    assert two.choice.point.params == {"rule": "mean", "window": 3, "threshold": 0.6}, "the middle of the 4 tied"
    exact = choose(two.points, poisson_upper(0) / (20 / 3600))
    assert exact.point == two.choice.point, "2 false alarms = the exact 95 % bound for zero (2.996) rounded down"
    assert "at most 2 false alarms in its 0.00556 h of background (360 per hour)" in how(two, MACHINERY, "x", "y", "d")
    none = select(clips, LABELS, MACHINERY, BASE, 1e6, rules=({"rule": "k_of_n", "k": 1, "n": 1},), thresholds=(0.5, 0.8),
                  max_false_alarms=2)
    assert not none.choice.reached and none.choice.point.false_alarms == 3, "nothing within 2: the fewest, said so"


def test_background_only_keeps_the_rule_and_only_raises_thresholds():
    spike = [0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.1, 0.1]
    hour = 3600.0  # each clip stands for an hour (a score log's), so the target is not raised by much
    background = [replace(clip(spike, False, f"s{k}"), duration_s=hour) for k in range(5)]
    background += [replace(clip([0.1] * 9, False, f"q{k}"), duration_s=hour) for k in range(2)]
    before = {"rule": "k_of_n", "k": 1, "n": 1, "threshold": {"machinery": 0.5}}
    selection = select(background, LABELS, MACHINERY, BASE, 0.0, before=before, thresholds=(0.3, 0.6, 0.9, 0.96, 0.99))
    assert not selection.by_recall and selection.used == pytest.approx(3 / 7), "3 false alarms in 7 h"
    assert [p.params["threshold"]["machinery"] for p in selection.points] == [0.5, 0.6, 0.9, 0.96, 0.99], "never below 0.5"
    assert [p.false_alarms for p in selection.points] == [5, 5, 5, 0, 0]
    assert selection.choice.point.params == {"rule": "k_of_n", "k": 1, "n": 1, "threshold": {"machinery": 0.96}}
    with pytest.raises(ValueError, match="setting in use"):
        select(background, LABELS, MACHINERY, BASE, 0.0)


def reference(c: ScoredClip, thresholds: dict, rules) -> tuple[int, float | None]:
    """The tracker fed every window, as the unit is."""
    tracker = EventTracker(LABELS, thresholds, rules, groups=MACHINERY)
    starts = [e.start for s, t, v in zip(c.starts, c.ends, c.scores) for e in tracker.observe(float(s), float(t), v)
              if e.phase == "start"]
    return len(starts), (starts[0] if starts else None)


@pytest.mark.parametrize("rule", [{"rule": "k_of_n", "k": 2, "n": 3}, {"rule": "k_of_n", "k": 1, "n": 1},
                                  {"rule": "mean", "window": 4}, {"rule": "mean", "window": 2}])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_long_stream_skips_cold_stretches_without_changing_a_single_event(rule, seed):
    """A day's score log is swept quickly by skipping cold windows (run_clip); the events must be exactly
    those of the tracker fed every window: bursts, isolated spikes, gaps longer than max_gap_s."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0, 0.2, 3000)
    for start in rng.integers(0, 2950, 25):
        levels[start:start + rng.integers(1, 12)] = rng.uniform(0.3, 1.0)
    c = clip(levels, False)
    times = c.starts + np.where(np.arange(3000) > 1500, 40.0, 0.0) + np.where(np.arange(3000) > 2200, 7.0, 0.0)
    c = ScoredClip("log", "score log", False, 1500.0, times, times + WINDOW, c.scores)
    for threshold in (0.35, 0.5, 0.8):
        for base in ({"cooldown_s": 0.0, "hysteresis": 0.1}, {"cooldown_s": 30.0, "hysteresis": 0.0}):
            rules = rules_of(rule, base)
            got = run_clip(c, LABELS, MACHINERY, {"machinery": threshold}, rules)
            assert (got.events, got.delay_s) == reference(c, {"machinery": threshold}, rules), (threshold, base)


def test_a_false_event_that_goes_on_counts_at_each_update_and_the_budget_stops_counting_early():
    hum_of_a_pump = clip([0.7] * 14400, False, "pump", "score log")  # 2 h just over the threshold
    params = {"rule": "k_of_n", "k": 2, "n": 3, "threshold": 0.6}
    p = evaluate([hum_of_a_pump], LABELS, MACHINERY, params, {"update_s": 600.0})
    assert p.false_alarms == 1 + 11, "one start, then an update every 10 min: 7200 s / 600 s - 1 more"
    quick = evaluate([hum_of_a_pump], LABELS, MACHINERY, params, {"update_s": 600.0}, budget=3)
    assert quick.extra["over_budget"] and 3 < quick.false_alarms < 12
    clips = data() + [replace(hum_of_a_pump, duration_s=7200.0)]
    full = select(clips, LABELS, MACHINERY, BASE, 1.0, rules=RULES, thresholds=(0.5, 0.6, 0.8))
    fast = select(clips, LABELS, MACHINERY, BASE, 1.0, rules=RULES, thresholds=(0.5, 0.6, 0.8), quick=True)
    assert fast.choice.point.params == full.choice.point.params and fast.choice.point == full.choice.point


@pytest.fixture(scope="module")
def scripted_clips(tiny_audio_models, tmp_path_factory):
    """hum = engine, hiss = background for the tiny model; scored as the unit scores them (LiteRT)."""
    folder = tmp_path_factory.mktemp("scripted")
    clips = [LabelledClip(write_wav(folder / "hum.wav", scripted(("hum", 4))), "engine", True),
             LabelledClip(write_wav(folder / "late.wav", scripted(("hiss", 3), ("hum", 4))), "engine", True),
             LabelledClip(write_wav(folder / "hiss.wav", scripted(("hiss", 6))), "background", False),
             LabelledClip(write_wav(folder / "quiet.wav", scripted(("silence", 2))), "background", False)]
    scored = score_clips(load_model(tiny_audio_models["int8"], backend="litert"), clips)
    save_scored(folder / "scores.npz", scored)
    return load_scored(folder / "scores.npz")


def test_scripted_wav_files_through_the_tiny_model(scripted_clips):
    hum, late, hiss, quiet = scripted_clips
    assert len(quiet.starts) == 0 and quiet.duration_s == 2.0, "digital silence is under the RMS gate: no window"
    assert hiss.duration_s == 6.0 and len(hiss.starts) == 12
    params = {"rule": "k_of_n", "k": 2, "n": 3, "threshold": 0.6}
    p = evaluate(scripted_clips, ("background", "engine"), {"engine": ("engine",)}, params, detail=True)
    assert (p.detected, p.positives, p.false_alarms) == (2, 2, 0)
    assert p.exposure == pytest.approx(8 / 3600), "hours of background: the hiss and the silent clip"
    out = run_clip(late, ("background", "engine"), {"engine": ("engine",)}, {"engine": 0.6}, rules_of(params))
    assert 2.0 <= out.delay_s <= 3.0 and out.report_delay_s == pytest.approx(out.delay_s + HOP + WINDOW), \
        "the hum starts at 3 s: the first window that hears enough of it starts the event"
