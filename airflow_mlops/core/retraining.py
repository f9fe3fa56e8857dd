"""The backtest's decisions: does a policy retrain after this window, and how do policies compare?

Pure (no Airflow, no data): the signals come from :func:`airflow_mlops.core.drift.compare` and
:func:`airflow_mlops.core.performance.performance_verdict`, as the monitor DAG's sensors compute
them; this module only says which policy acts on which signal.

Policies:

* ``never``     -- the first model serves for ever;
* ``every``     -- retrain after every window;
* ``calendar``  -- retrain after every ``calendar_every``-th window, whatever the data says;
* ``triggered`` -- retrain when the monitor would start ``mlops_continuous_training``: feature
  drift, performance decay, and (when the policy makes it a trigger) target drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NEVER = "never"
EVERY = "every"
CALENDAR = "calendar"
TRIGGERED = "triggered"
POLICIES: tuple[str, ...] = (NEVER, EVERY, CALENDAR, TRIGGERED)


@dataclass
class Signals:
    """What the monitor found on one window for the model serving it."""

    feature_drift: bool
    feature_drift_share: float
    drifted_columns: list[str] = field(default_factory=list)
    label_drift: bool | None = None
    degraded: bool = False
    performance_reasons: list[str] = field(default_factory=list)
    refresh: str | None = None  # why the training window grew enough to refresh (refresh_due)


def retrain_reasons(
    policy: str,
    signals: Signals | None,
    *,
    windows_served: int,
    calendar_every: int,
    label_drift_trigger: bool,
) -> list[str]:
    """Why ``policy`` retrains after this window; an empty list: it does not.

    :param windows_served: windows the current policy has served since its start (this one included).
    :param calendar_every: the calendar policy's period in windows.
    :param label_drift_trigger: whether target drift alone starts a retraining (triggered policy).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    if policy == NEVER:
        return []
    if policy == EVERY:
        return ["every window"]
    if policy == CALENDAR:
        if calendar_every < 1:
            raise ValueError(f"calendar_every must be at least 1, got {calendar_every}")
        return [f"every {calendar_every} windows"] if windows_served % calendar_every == 0 else []
    if signals is None:
        raise ValueError("the triggered policy needs the window's signals")
    reasons = []
    if signals.feature_drift:
        shown = ", ".join(signals.drifted_columns[:4]) + (" ..." if len(signals.drifted_columns) > 4 else "")
        reasons.append(f"feature drift {signals.feature_drift_share:.0%} ({shown})")
    if signals.label_drift and label_drift_trigger:
        reasons.append("target drift")
    if signals.degraded:
        reasons.append("performance decay")
    if signals.refresh:
        reasons.append(signals.refresh)
    return reasons


# ------------------------------------------------------------------------------------ training window

SINCE_DRIFT = "since_drift"
ALL = "all"


def training_start(setting: int | str, t: int, *, regime_start: int = 0, cap: int | None = None) -> int:
    """The first window a retraining after window ``t`` trains on (windows are numbered from 0).

    :param setting: ``N`` (the ``N`` most recent windows), ``"all"`` (every window so far) or
        ``"since_drift"`` (the windows since the last detected change, ``regime_start``).
    :param cap: at most this many windows (``"all"`` and ``"since_drift"``; ``None``: no cap).
    """
    if setting == ALL:
        first = 0
    elif setting == SINCE_DRIFT:
        if not 0 <= regime_start <= t:
            raise ValueError(f"regime_start must be between 0 and {t}, got {regime_start}")
        first = regime_start
    elif isinstance(setting, int) and not isinstance(setting, bool) and setting >= 1:
        return max(0, t - setting + 1)
    else:
        raise ValueError(
            f"training window must be 'all', 'since_drift' or a positive number, got {setting!r}"
        )
    if cap is not None:
        first = max(first, t - cap + 1)
    return first


def regime_changed(signals: Signals, on: Sequence[str]) -> bool:
    """Whether the window's signals start a new regime: any of ``on`` (``feature_drift``,
    ``target_drift``, ``decay``) fired."""
    fired = {
        "feature_drift": signals.feature_drift,
        "target_drift": bool(signals.label_drift),
        "decay": signals.degraded,
    }
    unknown = [name for name in on if name not in fired]
    if unknown:
        raise ValueError(f"unknown regime signals {unknown}; known: {', '.join(fired)}")
    return any(fired[name] for name in on)


def regime_start_after(regime_start: int, t: int, *, changed: bool, champion_start: int) -> int:
    """Where the current regime (the data a ``since_drift`` window trains on) starts after window ``t``.

    A detected change (``changed``: the monitor's drift, or decay when the policy counts it) starts
    a new regime at window ``t``, the first window that showed it -- unless the champion predates the
    current regime (``champion_start < regime_start``): then the change is the one that already
    started it, seen again because no model of the new regime was promoted yet.
    """
    if changed and champion_start >= regime_start:
        return t
    return regime_start


def refresh_due(t: int, *, trained_start: int, trained_end: int, growth: float | None) -> str | None:
    """A refresh retraining is due after window ``t`` when the windows since the last retraining
    (which trained on windows ``trained_start`` to ``trained_end``) reach ``growth - 1`` times the
    windows it trained on: with a growing window (``since_drift``, ``all``) the data has grown by
    ``growth`` since, so stable periods cost logarithmically few retrainings. The reason, or None."""
    if growth is None:
        return None
    trained = trained_end - trained_start + 1
    new = t - trained_end
    if trained < 1 or new < 1:
        return None
    if new >= (growth - 1) * trained - 1e-9:
        return f"refresh: {new} new window(s) since the last training on {trained}"
    return None


# ------------------------------------------------------------------------------------------ comparison


@dataclass
class Verdict:
    """Triggered vs retrain-every-window over seeds, against the issue's acceptance bar."""

    passed: bool
    mean_gap: float  # every - triggered, in metric points (x100); positive: triggered is behind
    worst_seed_gap: float
    retrain_ratio: float  # triggered retrainings / every's
    reasons: list[str]


MAX_RETRAIN_RATIO = 0.25  # the bar: at most this share of retrain-every-window's retrainings


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def compare_to_every(
    per_seed: Sequence[Mapping[str, Mapping[str, Any]]],
    *,
    greater_is_better: bool = True,
    max_seed_gap: float = 0.5,
    max_ratio: float = MAX_RETRAIN_RATIO,
) -> Verdict:
    """Judge the triggered policy against retrain-every-window over several seeds.

    :param per_seed: one ``{policy: {"mean": metric, "retrainings": n}}`` per seed.
    :param max_seed_gap: how far (in points, metric x 100) triggered may trail on any one seed.
    :param max_ratio: the largest share of every-window's retrainings triggered may use.
    """
    if not per_seed:
        raise ValueError("no seeds to compare")
    sign = 1.0 if greater_is_better else -1.0
    gaps = [sign * (s[EVERY]["mean"] - s[TRIGGERED]["mean"]) * 100 for s in per_seed]
    every = sum(s[EVERY]["retrainings"] for s in per_seed)
    triggered = sum(s[TRIGGERED]["retrainings"] for s in per_seed)
    ratio = triggered / every if every else float("nan")
    mean_gap, worst = mean(gaps), max(gaps)
    reasons = [
        f"triggered is {abs(mean_gap):.2f} points {'behind' if mean_gap > 0 else 'ahead of'} every window "
        "on the mean (required: not behind)",
        f"worst seed: {worst:+.2f} points behind (required: at most {max_seed_gap:.2f})",
        f"retrainings: {triggered}/{every} = {ratio:.2f} of every window's (required: at most {max_ratio:.2f})",
    ]
    passed = mean_gap <= 1e-9 and worst <= max_seed_gap and ratio <= max_ratio
    return Verdict(
        passed=passed, mean_gap=mean_gap, worst_seed_gap=worst, retrain_ratio=ratio, reasons=reasons
    )


# ------------------------------------------------------------------------------------------ hindsight


def hindsight_bound(
    scores: Mapping[int, Mapping[int, float]],
    windows: Sequence[int],
    max_retrainings: int,
    *,
    greater_is_better: bool = True,
) -> list[float]:
    """The best mean metric any policy can reach over ``windows`` with at most ``k`` promotions,
    for each ``k`` from 0 to ``max_retrainings``: a ceiling, not a policy.

    It chooses with hindsight (it sees every window's labels) and needs no evaluation rule: it
    promotes exactly the candidates that pay off. It holds for any policy whose candidate after
    window ``s`` does not depend on earlier decisions (a fixed training window: ``N`` recent
    windows or all history), since such a policy serves, window after window, the same sequence of
    candidates as some choice of at most ``k`` promotion windows.

    :param scores: ``scores[s][t]``: the metric on window ``t`` of the candidate trained after window
        ``s`` (it can serve from ``s + 1``); ``s = windows[0] - 1`` is the first model, serving
        ``windows[0]``. A candidate is trained only after a window that has a next one to serve.
    :param windows: the served windows, consecutive, in order.
    """
    if not windows:
        raise ValueError("no windows to serve")
    if max_retrainings < 0:
        raise ValueError(f"max_retrainings must be 0 or more, got {max_retrainings}")
    if list(windows) != list(range(windows[0], windows[0] + len(windows))):
        raise ValueError(f"windows must be consecutive, got {list(windows)}")
    sign = 1.0 if greater_is_better else -1.0
    first = windows[0] - 1
    # best[(s, k)]: the best total so far with the candidate of window s serving, k promotions made
    best: dict[tuple[int, int], float] = {(first, 0): 0.0}
    for t in windows:
        served: dict[tuple[int, int], float] = {}
        for (s, k), total in best.items():
            try:
                value = total + sign * scores[s][t]
            except KeyError:
                raise ValueError(f"no score of the candidate of window {s} on window {t}") from None
            served[(s, k)] = value
        best = dict(served)
        if t != windows[-1]:  # promote the candidate trained after t: it serves from t + 1
            for (_, k), total in served.items():
                if k < max_retrainings and best.get((t, k + 1), -math.inf) < total:
                    best[(t, k + 1)] = total
    curve = []
    for budget in range(max_retrainings + 1):
        top = max(total for (_, k), total in best.items() if k <= budget)
        curve.append(sign * top / len(windows))
    return curve


def pooled_bound(curves: Sequence[Sequence[float]], budget: int, *, greater_is_better: bool = True) -> float:
    """The best mean over seeds when ``budget`` promotions are shared out among the seeds as
    hindsight would (``curves[i][k]``: seed ``i``'s :func:`hindsight_bound` at ``k``), the way the
    acceptance bar counts retrainings: over all seeds together."""
    if not curves:
        raise ValueError("no seeds")
    sign = 1.0 if greater_is_better else -1.0
    # best[b]: the best sum over the seeds so far using at most b promotions
    best = [0.0] * (budget + 1)
    for curve in curves:
        best = [
            max(best[b - k] + sign * curve[k] for k in range(min(b, len(curve) - 1) + 1))
            for b in range(budget + 1)
        ]
    return sign * best[budget] / len(curves)
