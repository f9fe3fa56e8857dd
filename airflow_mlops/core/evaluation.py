"""The promote-or-reject rule for a candidate model version against the current champion.

No Airflow, no MLflow: metrics in, decision record out, so the rule can be read and tested in
one place. ``EvaluateModelOperator`` only computes the metrics and stores the record.

The record (DESIGN.md)::

    {"decision": "promote" | "reject",
     "reasons": ["...", ...],                       # every check, in words, in order
     "candidate": {"version": "7", "metrics": {...}},
     "champion": {"version": "5", "metrics": {...}} | None}

Rules, in order:

1. every absolute threshold must hold for the candidate (``{"accuracy": 0.8}`` means accuracy
   >= 0.8; for an error metric such as ``rmse`` the threshold is a ceiling: rmse <= value);
2. with a champion: the candidate's ``improvement`` on ``metric`` (candidate minus champion, sign
   flipped when lower is better) must be greater than ``min_improvement``; a tie keeps the
   champion. A negative ``min_improvement`` tolerates a small regression;
3. without a champion: ``bootstrap="promote"`` promotes the first candidate (thresholds still
   apply); ``bootstrap="fail"`` rejects it.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_mlops.core.metrics import check_metric
from airflow_mlops.core.metrics import greater_is_better as default_direction

PROMOTE = "promote"
REJECT = "reject"
BOOTSTRAP_CHOICES = ("promote", "fail")


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def check_thresholds(thresholds: dict[str, float] | None) -> dict[str, float]:
    """Validate ``{metric: bound}``; ValueError names the bad entry."""
    out: dict[str, float] = {}
    for metric, bound in (thresholds or {}).items():
        check_metric(metric)
        try:
            out[metric] = float(bound)
        except (TypeError, ValueError) as err:
            raise ValueError(f"threshold for {metric!r} must be a number, got {bound!r}") from err
        low, high = _RANGE.get(metric, (0.0, 1.0))
        if not (math.isfinite(out[metric]) and low <= out[metric] <= high):
            raise ValueError(
                f"threshold for {metric!r} must be a finite number in [{low:g}, {high:g}], got {bound!r}"
            )
    return out


# the values a regression metric can take (classification scores are all in [0, 1])
_RANGE = {"rmse": (0.0, math.inf), "mae": (0.0, math.inf), "r2": (-math.inf, 1.0)}


def decide(
    *,
    metric: str,
    candidate_version: str,
    candidate_metrics: dict[str, float],
    champion_version: str | None,
    champion_metrics: dict[str, float] | None,
    greater_is_better: bool | None = None,
    min_improvement: float = 0.0,
    thresholds: dict[str, float] | None = None,
    bootstrap: str = "promote",
    alias: str = "champion",
    champion_error: str | None = None,
) -> dict[str, Any]:
    """Decide whether ``candidate`` should replace the current holder of ``alias``.

    :param metric: the deciding metric.
    :param candidate_metrics: the candidate's scores; must include ``metric`` and every threshold.
    :param champion_version: version holding ``alias`` now, or None when there is none.
    :param champion_metrics: the champion's scores on the same data (with a champion).
    :param greater_is_better: direction of ``metric`` (None: the metric's natural direction).
    :param min_improvement: margin the candidate must beat the champion by (in metric units).
    :param thresholds: absolute bounds ``{metric: value}`` in each metric's own direction.
    :param bootstrap: ``"promote"`` or ``"fail"`` when there is no champion.
    :param alias: name of the alias, for the wording of the reasons.
    :param champion_error: why the champion could not be scored (it then sets no benchmark).
    :return: the decision record.
    """
    check_metric(metric)
    if bootstrap not in BOOTSTRAP_CHOICES:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAP_CHOICES}, got {bootstrap!r}")
    bounds = check_thresholds(thresholds)
    gib = default_direction(metric) if greater_is_better is None else bool(greater_is_better)
    for name in [metric, *bounds]:
        if name not in candidate_metrics:
            raise ValueError(f"candidate metrics lack {name!r}: {sorted(candidate_metrics)}")

    reasons: list[str] = []
    ok = True
    for name, bound in bounds.items():
        value = candidate_metrics[name]
        higher = default_direction(name) if name != metric else gib
        passed = _finite(value) and (value >= bound if higher else value <= bound)
        if passed:
            reasons.append(
                f"candidate {name} {_fmt(value)} meets the {'floor' if higher else 'ceiling'} {_fmt(bound)}"
            )
        else:
            ok = False
            reasons.append(
                f"candidate {name} {_fmt(value)} is {'below the floor' if higher else 'above the ceiling'} "
                f"{_fmt(bound)}"
            )

    cand = candidate_metrics[metric]
    if not _finite(cand):
        ok = False
        reasons.append(f"candidate {metric} is {cand}: not a number, cannot be compared")

    if champion_version is None:
        if bootstrap == "promote":
            reasons.append(f"no model holds @{alias}: bootstrap='promote' lets the first candidate through")
        else:
            ok = False
            reasons.append(f"no model holds @{alias} and bootstrap='fail': set a champion first")
    elif _finite(cand):
        champ = (champion_metrics or {}).get(metric)
        if champ is None or not _finite(champ):
            # a champion that cannot be scored on today's data is no benchmark: a valid candidate wins
            why = champion_error or f"its {metric} is {champ}"
            reasons.append(
                f"champion v{champion_version} cannot be scored on this data ({why}); the candidate replaces it"
            )
        else:
            improvement = (cand - champ) if gib else (champ - cand)
            direction = "higher" if gib else "lower"
            if improvement > min_improvement:
                reasons.append(
                    f"candidate {metric} {_fmt(cand)} beats champion v{champion_version} {_fmt(champ)} "
                    f"by {_fmt(improvement)} ({direction} is better; required more than {_fmt(min_improvement)})"
                )
            else:
                ok = False
                reasons.append(
                    f"candidate {metric} {_fmt(cand)} does not beat champion v{champion_version} {_fmt(champ)} "
                    f"by more than {_fmt(min_improvement)} (improvement {_fmt(improvement)}, {direction} is better)"
                )

    return {
        "decision": PROMOTE if ok else REJECT,
        "reasons": reasons,
        "candidate": {"version": str(candidate_version), "metrics": _json_safe(candidate_metrics)},
        "champion": (
            None
            if champion_version is None
            else {"version": str(champion_version), "metrics": _json_safe(champion_metrics or {})}
        ),
    }


def _json_safe(metrics: dict[str, Any]) -> dict[str, float | None]:
    """NaN/inf are not JSON: the record (XCom, tags) carries None for them."""
    return {k: (float(v) if _finite(v) else None) for k, v in metrics.items()}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
