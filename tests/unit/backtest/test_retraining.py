"""The backtest's pure decisions: which policy retrains on which signal, and the acceptance bar."""

from __future__ import annotations

import itertools
import random

import pytest

from airflow_mlops.core.retraining import (
    Signals,
    compare_to_every,
    hindsight_bound,
    pooled_bound,
    refresh_due,
    regime_changed,
    regime_start_after,
    retrain_reasons,
    training_start,
)

QUIET = Signals(feature_drift=False, feature_drift_share=0.1, label_drift=False, degraded=False)


def _reasons(policy, signals=QUIET, served=1, every=4, label=False):
    return retrain_reasons(
        policy, signals, windows_served=served, calendar_every=every, label_drift_trigger=label
    )


def test_never_and_every_ignore_the_signals():
    loud = Signals(feature_drift=True, feature_drift_share=0.9, drifted_columns=["a"], degraded=True)
    assert _reasons("never", loud) == []
    assert _reasons("every", QUIET) == ["every window"]


def test_calendar_retrains_every_nth_window_served():
    assert [bool(_reasons("calendar", served=n, every=3)) for n in range(1, 8)] == [
        False, False, True, False, False, True, False,
    ]  # fmt: skip


def test_triggered_follows_feature_drift_and_decay():
    assert _reasons("triggered") == []
    drift = Signals(feature_drift=True, feature_drift_share=0.6, drifted_columns=["a", "b"])
    assert _reasons("triggered", drift) == ["feature drift 60% (a, b)"]
    decay = Signals(feature_drift=False, feature_drift_share=0.0, degraded=True)
    assert _reasons("triggered", decay) == ["performance decay"]


def test_target_drift_triggers_only_when_the_policy_says_so():
    target = Signals(feature_drift=False, feature_drift_share=0.0, label_drift=True)
    assert _reasons("triggered", target, label=False) == []
    assert _reasons("triggered", target, label=True) == ["target drift"]


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match="unknown policy 'sometimes'"):
        _reasons("sometimes")


def _seed(every_mean, every_n, trig_mean, trig_n):
    return {
        "every": {"mean": every_mean, "retrainings": every_n},
        "triggered": {"mean": trig_mean, "retrainings": trig_n},
    }


def test_verdict_passes_at_equal_mean_with_a_quarter_of_the_retrainings():
    verdict = compare_to_every([_seed(0.80, 8, 0.80, 2), _seed(0.70, 8, 0.71, 2)])
    assert verdict.passed
    assert verdict.retrain_ratio == 0.25


@pytest.mark.parametrize(
    ("seeds", "why"),
    [
        ([_seed(0.80, 8, 0.79, 2)], "behind every window on the mean"),
        ([_seed(0.80, 8, 0.794, 2), _seed(0.70, 8, 0.710, 2)], "worst seed"),
        ([_seed(0.80, 8, 0.81, 3)], "retrainings: 3/8"),
    ],
)
def test_verdict_misses_when_behind_on_the_mean_a_seed_or_the_budget(seeds, why):
    verdict = compare_to_every(seeds)
    assert not verdict.passed
    assert any(why in r for r in verdict.reasons)


def test_verdict_for_an_error_metric_prefers_lower_values():
    assert compare_to_every([_seed(2.0, 8, 1.9, 2)], greater_is_better=False).passed


# ------------------------------------------------------------------------------ the hindsight bound


def _scores(n, seed):
    """``scores[s][t]`` for the first model (s=0) and a candidate after each window but the last."""
    rng = random.Random(seed)
    return {s: {t: rng.random() for t in range(s + 1, n)} for s in range(n - 1)}


def _served_mean(scores, n, promotions):
    serving, total = 0, 0.0
    for t in range(1, n):
        total += scores[serving][t]
        if t in promotions:
            serving = t
    return total / (n - 1)


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_is_the_best_choice_of_promotions_by_enumeration(seed):
    n = 8  # windows 0..7: the first model trains on 0, serves 1..7; candidates after 1..6
    scores = _scores(n, seed)
    curve = hindsight_bound(scores, range(1, n), 6)
    for k in range(7):
        best = max(
            _served_mean(scores, n, set(chosen))
            for size in range(k + 1)
            for chosen in itertools.combinations(range(1, n - 1), size)
        )
        assert curve[k] == pytest.approx(best)
    assert curve[0] == pytest.approx(_served_mean(scores, n, set()))  # never
    assert curve == sorted(curve)  # a larger budget never hurts


def test_the_bound_for_an_error_metric_minimises():
    scores = {0: {1: 5.0, 2: 5.0, 3: 5.0}, 1: {2: 1.0, 3: 9.0}, 2: {3: 2.0}}
    assert hindsight_bound(scores, [1, 2, 3], 2, greater_is_better=False) == pytest.approx(
        [5.0, 4.0, 8 / 3]  # never; after 2 (5+5+2; after 1 alone: 5+1+9); after 1 and 2 (5+1+2)
    )


def test_the_bound_names_a_missing_score_and_refuses_gaps():
    with pytest.raises(ValueError, match="candidate of window 1 on window 3"):
        hindsight_bound({0: {1: 0.5, 2: 0.5, 3: 0.5}, 1: {2: 0.6}}, [1, 2, 3], 1)
    with pytest.raises(ValueError, match="consecutive"):
        hindsight_bound(_scores(5, 0), [1, 3], 1)
    with pytest.raises(ValueError, match="0 or more"):
        hindsight_bound(_scores(5, 0), [1, 2], -1)


def test_the_pooled_bound_shares_the_budget_out_among_seeds_as_hindsight_would():
    curves = [hindsight_bound(_scores(7, seed), range(1, 7), 5) for seed in range(3)]
    for budget in range(8):
        best = max(
            sum(curve[k] for curve, k in zip(curves, split, strict=True)) / 3
            for split in itertools.product(range(6), repeat=3)
            if sum(split) <= budget
        )
        assert pooled_bound(curves, budget) == pytest.approx(best)
    lower = [[-v for v in curve] for curve in curves]
    assert pooled_bound(lower, 4, greater_is_better=False) == pytest.approx(-pooled_bound(curves, 4))


# ------------------------------------------------------------------------------ the training window


def test_fixed_windows_and_all_history():
    assert training_start(1, 7) == 7
    assert training_start(3, 7) == 5
    assert training_start(3, 1) == 0  # fewer windows than asked: all there are
    assert training_start("all", 7) == 0
    assert training_start("all", 7, cap=4) == 4


def test_since_drift_trains_on_the_current_regime_up_to_the_cap():
    assert training_start("since_drift", 9, regime_start=6) == 6
    assert training_start("since_drift", 9, regime_start=0, cap=4) == 6
    assert training_start("since_drift", 6, regime_start=6, cap=4) == 6
    with pytest.raises(ValueError, match="regime_start"):
        training_start("since_drift", 3, regime_start=5)
    with pytest.raises(ValueError, match="training window"):
        training_start(0, 3)


def test_a_detected_change_starts_a_regime_once():
    assert regime_start_after(0, 6, changed=True, champion_start=0) == 6
    assert regime_start_after(0, 6, changed=False, champion_start=0) == 0
    # the champion predates the regime (its successor was rejected): the same change, seen again
    assert regime_start_after(6, 7, changed=True, champion_start=0) == 6
    # a champion of the current regime, and a new change: a new regime
    assert regime_start_after(6, 9, changed=True, champion_start=6) == 9


def test_which_signals_start_a_regime():
    drift = Signals(feature_drift=True, feature_drift_share=0.8)
    decay = Signals(feature_drift=False, feature_drift_share=0.1, degraded=True)
    target = Signals(feature_drift=False, feature_drift_share=0.1, label_drift=True)
    assert regime_changed(drift, ["feature_drift"]) and not regime_changed(decay, ["feature_drift"])
    assert regime_changed(decay, ["decay"]) and not regime_changed(drift, ["decay"])
    assert regime_changed(target, ["feature_drift", "target_drift"])
    with pytest.raises(ValueError, match="unknown regime signals"):
        regime_changed(drift, ["moon"])


def test_refresh_when_the_window_has_grown_by_the_factor():
    # trained on window 0 alone: x2 is due after one new window, then after 2 more, 4 more ...
    assert refresh_due(1, trained_start=0, trained_end=0, growth=2.0)
    assert not refresh_due(2, trained_start=0, trained_end=1, growth=2.0)
    assert refresh_due(3, trained_start=0, trained_end=1, growth=2.0)
    assert not refresh_due(4, trained_start=0, trained_end=1, growth=3.0)
    assert refresh_due(5, trained_start=0, trained_end=1, growth=3.0) == (
        "refresh: 4 new window(s) since the last training on 2"
    )
    assert refresh_due(9, trained_start=0, trained_end=0, growth=None) is None


def test_a_refresh_is_a_trigger():
    grown = Signals(feature_drift=False, feature_drift_share=0.0, refresh="refresh: 1 new window(s)")
    assert _reasons("triggered", grown) == ["refresh: 1 new window(s)"]
