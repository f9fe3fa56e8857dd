"""The bench's split of the triggered policy's gap to ``every`` (``bench/continuous_training.py``)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from airflow_mlops.backtest.replay import PolicyRun, WindowRecord

BENCH = Path(__file__).resolve().parents[3] / "bench" / "continuous_training.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_continuous_training", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(values: list[float], signalled: set[int] = frozenset()) -> PolicyRun:
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
    return PolicyRun(name="x", records=records)


def test_the_parts_add_up_to_the_gap_on_the_mean(bench):
    every = _run([0.80, 0.82, 0.40, 0.81, 0.83])
    triggered = _run([0.79, 0.80, 0.42, 0.82, 0.84], signalled={2})
    parts = bench.gap_split(triggered, every)
    assert list(parts) == list(bench.GAP_PARTS)
    # windows 0-1 before the signal: (-0.01 - 0.02) / 5; window 2 signalled: +0.02 / 5; 3-4: +0.02 / 5
    assert parts["before the first signal"] == pytest.approx(-0.6)
    assert parts["windows that signalled"] == pytest.approx(0.4)
    assert parts["after the first signal"] == pytest.approx(0.4)
    assert sum(parts.values()) == pytest.approx((triggered.mean - every.mean) * 100)


def test_an_error_metric_counts_a_lower_value_as_a_gain(bench):
    parts = bench.gap_split(_run([1.0, 2.0], signalled={1}), _run([2.0, 2.0]), sign=-1.0)
    assert parts["before the first signal"] == pytest.approx(50.0)
    assert parts["windows that signalled"] == 0.0


def test_no_signal_leaves_every_window_before_it(bench):
    parts = bench.gap_split(_run([0.7, 0.7]), _run([0.6, 0.7]))
    assert parts["before the first signal"] == pytest.approx(5.0)
    assert parts["windows that signalled"] == parts["after the first signal"] == 0.0


def test_runs_of_different_windows_or_without_a_metric_are_refused(bench):
    with pytest.raises(ValueError, match="3 windows compared with 2"):
        bench.gap_split(_run([0.1, 0.2, 0.3]), _run([0.1, 0.2]))
    with pytest.raises(ValueError, match="window w1: no metric"):
        bench.gap_split(_run([0.1, math.nan]), _run([0.1, 0.2]))
