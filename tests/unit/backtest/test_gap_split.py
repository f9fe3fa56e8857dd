"""Where the triggered policy gains or loses against ``every`` (``backtest.report.gap_split``)."""

from __future__ import annotations

import math

import pytest

from airflow_mlops.backtest.replay import PolicyRun, SeedRun, WindowRecord
from airflow_mlops.backtest.report import GAP_PARTS, gap_split, gap_text, triggered_gap

BEFORE, SIGNALLED, AFTER = GAP_PARTS


def _run(values: list[float], signalled: set[int] = frozenset(), name: str = "x") -> PolicyRun:
    records = [
        WindowRecord(
            window=f"w{i}",
            rows=10,
            version=1,
            value=v,
            retrain_reasons=["feature_drift"] if i in signalled else [],
        )
        for i, v in enumerate(values)
    ]
    return PolicyRun(name=name, records=records)


def test_the_parts_add_up_to_the_gap_on_the_mean():
    every = _run([0.80, 0.82, 0.40, 0.81, 0.83])
    triggered = _run([0.79, 0.80, 0.42, 0.82, 0.84], signalled={2})
    parts = gap_split(triggered, every)
    assert list(parts) == list(GAP_PARTS)
    # windows 0-1 before the signal: (-0.01 - 0.02) / 5; window 2 signalled: +0.02 / 5; 3-4: +0.02 / 5
    assert parts[BEFORE] == pytest.approx(-0.6)
    assert parts[SIGNALLED] == pytest.approx(0.4)
    assert parts[AFTER] == pytest.approx(0.4)
    assert sum(parts.values()) == pytest.approx((triggered.mean - every.mean) * 100)


def test_later_signals_count_as_signalled_windows():
    parts = gap_split(_run([0.5, 0.6, 0.7, 0.8], signalled={1, 3}), _run([0.5, 0.5, 0.5, 0.5]))
    assert parts[SIGNALLED] == pytest.approx((0.1 + 0.3) / 4 * 100)
    assert parts[AFTER] == pytest.approx(0.2 / 4 * 100)


def test_an_error_metric_counts_a_lower_value_as_a_gain():
    parts = gap_split(_run([1.0, 2.0], signalled={1}), _run([2.0, 2.0]), greater_is_better=False)
    assert parts[BEFORE] == pytest.approx(50.0)
    assert parts[SIGNALLED] == 0.0


def test_no_signal_leaves_every_window_before_it():
    parts = gap_split(_run([0.7, 0.7]), _run([0.6, 0.7]))
    assert parts[BEFORE] == pytest.approx(5.0)
    assert parts[SIGNALLED] == parts[AFTER] == 0.0


def test_a_window_either_policy_could_not_score_is_left_out():
    parts = gap_split(_run([0.6, math.nan, 0.8], signalled={2}), _run([0.5, 0.5, 0.5]))
    assert parts[BEFORE] == pytest.approx(0.1 / 2 * 100)
    assert parts[SIGNALLED] == pytest.approx(0.3 / 2 * 100)


def test_runs_of_different_windows_are_refused():
    with pytest.raises(ValueError, match="3 windows compared with 2"):
        gap_split(_run([0.1, 0.2, 0.3]), _run([0.1, 0.2]))


def _seed(seed: int, triggered: PolicyRun, every: PolicyRun) -> SeedRun:
    return SeedRun(
        seed=seed,
        policies={"every": every, "triggered": triggered},
        initial_version=1,
        initial_seconds=0,
        seconds=0,
    )


def test_the_summary_gives_each_seed_and_their_mean_and_a_sentence():
    runs = [
        _seed(1, _run([0.8, 0.4, 0.9], signalled={1}), _run([0.9, 0.4, 0.8])),
        _seed(2, _run([0.8, 0.4, 0.9], signalled={1}), _run([0.8, 0.5, 0.9])),
    ]
    gap = triggered_gap(runs, "accuracy")
    assert gap["parts"] == list(GAP_PARTS)
    assert [s["seed"] for s in gap["per_seed"]] == [1, 2]
    assert gap["per_seed"][1][SIGNALLED] == pytest.approx(-0.1 / 3 * 100)
    assert gap["mean"][BEFORE] == pytest.approx((-0.1 / 3 * 100 + 0.0) / 2)
    assert gap["mean"][AFTER] == pytest.approx((0.1 / 3 * 100 + 0.0) / 2)
    text = gap_text({"triggered_gap": gap})
    assert text.startswith("where triggered gains (+) or loses (-) against every")
    assert f"{BEFORE} -1.67" in text and f"{SIGNALLED} -1.67" in text and f"{AFTER} +1.67" in text


def test_no_split_without_both_policies():
    runs = [SeedRun(seed=1, policies={"every": _run([0.5])}, initial_version=1, initial_seconds=0, seconds=0)]
    assert triggered_gap(runs, "accuracy") is None
    assert gap_text({"triggered_gap": None}) is None
