"""The performance verdict: has a model's metric on recent labelled data decayed?

Pure (no Airflow, no MLflow): :class:`~airflow_mlops.sensors.performance.ModelPerformanceSensor`
scores the model and reads the baseline, then calls :func:`performance_verdict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class PerformanceConfigError(ValueError):
    """The settings leave nothing to check (no ``min_value``, and no baseline for ``max_drop``)."""


@dataclass
class PerformanceVerdict:
    degraded: bool
    reasons: list[str]
    relative_change: float | None  # (value - baseline) / |baseline|, positive = larger


def performance_verdict(
    metric: str,
    value: float,
    baseline: float | None,
    *,
    min_value: float | None,
    max_drop: float | None,
    greater_is_better: bool,
) -> PerformanceVerdict:
    """Whether a model's metric on recent labelled data has degraded.

    :param min_value: the worst acceptable value: a floor when greater is better (accuracy ...),
        a ceiling for errors (rmse, mae).
    :param max_drop: the largest acceptable worsening relative to ``baseline`` (0.05 = 5 %).
    :param greater_is_better: the metric's direction.
    :raises PerformanceConfigError: when nothing can be checked (no ``min_value``, and no baseline for
        ``max_drop``), so a monitor can never silently report "fine".
    """
    if min_value is None and (max_drop is None or baseline is None):
        missing = (
            "no max_drop or min_value" if max_drop is None else "no baseline value recorded for max_drop"
        )
        raise PerformanceConfigError(f"{metric}: nothing to check ({missing}, and no min_value)")
    reasons: list[str] = []
    degraded = False
    if min_value is not None:
        below = value < min_value if greater_is_better else value > min_value
        bound = "floor" if greater_is_better else "ceiling"
        if below:
            degraded = True
            reasons.append(f"{metric} {value:.6g} is worse than the {bound} min_value {min_value:.6g}")
        else:
            reasons.append(f"{metric} {value:.6g} is within the {bound} min_value {min_value:.6g}")
    change: float | None = None
    if baseline is not None:
        if baseline != 0:
            change = (value - baseline) / abs(baseline)
        else:
            change = 0.0 if value == baseline else math.copysign(math.inf, value - baseline)
        worsening = -change if greater_is_better else change
        if max_drop is not None:
            if worsening > max_drop:
                degraded = True
                reasons.append(
                    f"{metric} {value:.6g} is {worsening:.2%} worse than the baseline {baseline:.6g} "
                    f"(max_drop {max_drop:.2%})"
                )
            else:
                reasons.append(
                    f"{metric} {value:.6g} vs baseline {baseline:.6g}: "
                    f"{'worse' if worsening > 0 else 'not worse'} by {max(worsening, 0.0):.2%} "
                    f"(max_drop {max_drop:.2%})"
                )
    return PerformanceVerdict(degraded=degraded, reasons=reasons, relative_change=change)
