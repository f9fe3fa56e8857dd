"""The performance verdict (airflow_mlops.core.performance)."""

from __future__ import annotations

import pytest

from airflow_mlops.core.performance import PerformanceConfigError, performance_verdict


@pytest.mark.parametrize(
    ("value", "baseline", "min_value", "max_drop", "greater", "degraded"),
    [
        pytest.param(0.90, 0.92, None, 0.05, True, False, id="small-drop"),
        pytest.param(0.80, 0.92, None, 0.05, True, True, id="drop-beyond-max_drop"),
        pytest.param(0.95, 0.92, 0.9, 0.05, True, False, id="better-than-baseline"),
        pytest.param(0.85, None, 0.9, 0.05, True, True, id="no-baseline-floor-applies"),
        pytest.param(0.95, None, 0.9, None, True, False, id="above-floor"),
        pytest.param(12.0, 10.0, None, 0.1, False, True, id="error-grew-20pct"),
        pytest.param(10.5, 10.0, 11.0, 0.1, False, False, id="error-within-ceiling-and-drop"),
        pytest.param(11.5, 10.0, 11.0, 0.5, False, True, id="error-above-ceiling"),
    ],
)
def test_performance_verdict(value, baseline, min_value, max_drop, greater, degraded):
    verdict = performance_verdict(
        "m", value, baseline, min_value=min_value, max_drop=max_drop, greater_is_better=greater
    )
    assert verdict.degraded is degraded
    assert verdict.reasons  # every verdict explains itself
    if baseline is not None:
        assert verdict.relative_change == pytest.approx((value - baseline) / baseline)


def test_performance_verdict_refuses_to_check_nothing():
    with pytest.raises(
        PerformanceConfigError, match="no baseline value recorded for max_drop, and no min_value"
    ):
        performance_verdict("accuracy", 0.5, None, min_value=None, max_drop=0.1, greater_is_better=True)
