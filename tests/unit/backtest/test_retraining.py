"""The backtest's pure decisions: which policy retrains on which signal, and the acceptance bar."""

from __future__ import annotations

import pytest

from airflow_mlops.core.retraining import Signals, compare_to_every, retrain_reasons

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
