"""The retraining policy: the one place the reference DAGs, the demo, the bench and the backtest read.

A policy says *when* to retrain (feature drift, target drift, performance decay), *on what*
(all labelled history, or the most recent windows) and *when a retrained model replaces the
champion* (the evaluation rule). Its defaults were chosen by measurement over five seeds on the
demo stream and on a real public drifting stream: ``docs/policy.md`` has the tables.

``RetrainingPolicy.from_env()`` is what the reference DAGs call at the top of their files; every
field can be overridden there (``from_env(max_drop=0.05)``) or by its environment variable
(:data:`ENV`). ``python -m airflow_mlops.backtest`` replays the same policy on your own history.

Standard library only: DAG files import this module at parse time.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRAINING_WINDOW_ALL = "all"
TRAINING_WINDOW_SINCE_DRIFT = "since_drift"
REGIME_SIGNALS = ("feature_drift", "target_drift", "decay")
"""The monitor's signals that can start a new regime (``regime_signals``)."""

ENV: dict[str, str] = {
    "target": "MLOPS_TARGET",
    "metric": "MLOPS_METRIC",
    "drift_share": "MLOPS_DRIFT_SHARE",
    "drift_columns": "MLOPS_DRIFT_COLUMNS",
    "label_drift": "MLOPS_LABEL_DRIFT",
    "max_drop": "MLOPS_MAX_DROP",
    "min_value": "MLOPS_MIN_VALUE",
    "min_improvement": "MLOPS_MIN_IMPROVEMENT",
    "thresholds": "MLOPS_THRESHOLDS",
    "training_windows": "MLOPS_TRAINING_WINDOWS",
    "max_training_windows": "MLOPS_MAX_TRAINING_WINDOWS",
    "refresh_growth": "MLOPS_REFRESH_GROWTH",
    "regime_signals": "MLOPS_REGIME_SIGNALS",
    "eval_fraction": "MLOPS_EVAL_FRACTION",
    "hyperparameters": "MLOPS_HYPERPARAMETERS",
    "calendar_every": "MLOPS_CALENDAR_EVERY",
}
"""The environment variable that overrides each field in :meth:`RetrainingPolicy.from_env`."""


class PolicyError(ValueError):
    """A policy setting is invalid; the message names the field (and its environment variable)."""


def _default_hyperparameters() -> dict[str, Any]:
    return {"model": "random_forest", "n_estimators": 100, "min_samples_leaf": 5, "seed": 42}


def _default_thresholds() -> dict[str, float]:
    return {"accuracy": 0.7}


@dataclass(frozen=True)
class RetrainingPolicy:
    """When to retrain, on what, and when the new model replaces the champion.

    Triggers (any one retrains):

    :param drift_share: the window counts as drifted when at least this share of the tested
        feature columns drifted (``DataDriftSensor``'s ``drift_share``; 0.7, not Evidently's 0.5:
        natural year-to-year variation moves half of the columns of a real stream too often).
    :param drift_columns: the columns tested for feature drift; ``None``: the model's input
        columns (every column but ``target``). The target is never part of the feature-drift share.
    :param label_drift: also retrain when the target column alone drifted (its drift is always
        computed and reported; this makes it a trigger).
    :param max_drop: retrain when the champion's ``metric`` on a fresh labelled window is worse
        than at its evaluation by more than this fraction (``ModelPerformanceSensor``).
    :param min_value: retrain when the champion's metric is worse than this absolute bound.

    Training and evaluation:

    :param training_windows: ``N``: the candidate trains on the ``N`` most recent windows (default
        1: the window that showed the drift or decay, as the demo retrains); ``"all"``: on every
        labelled window so far; ``"since_drift"`` (backtest only): on the windows since the last
        detected change (``regime_signals``), at most ``max_training_windows``.
    :param max_training_windows: caps a growing window (``"all"``, ``"since_drift"``); backtest only.
    :param refresh_growth: backtest only: also retrain when the windows since the last retraining
        reach ``refresh_growth - 1`` times those it trained on (a growing window's refresh).
    :param regime_signals: which monitor signals start a new regime for ``"since_drift"``.
    :param eval_fraction: share of the most recent window held out (not trained on) to score the
        candidate against the champion.
    :param min_improvement: ``EvaluateModelOperator``'s margin: the candidate must beat the
        champion on ``metric`` by more than this.
    :param thresholds: absolute floors (ceilings for errors) every promoted model must meet.
    :param hyperparameters: passed to the training entrypoint as ``--params`` (with ``target``).

    :param calendar_every: the calendar policy the backtest compares with retrains every this many
        windows (the default, 4, is the budget the triggered policy is held to: a quarter of
        retrain-every-window's retrainings).
    """

    target: str = "label"
    metric: str = "accuracy"
    drift_share: float = 0.7
    drift_columns: tuple[str, ...] | None = None
    label_drift: bool = False
    max_drop: float | None = 0.1
    min_value: float | None = None
    training_windows: int | str = 1
    max_training_windows: int | None = None
    refresh_growth: float | None = None
    regime_signals: tuple[str, ...] = ("feature_drift",)
    eval_fraction: float = 0.3
    min_improvement: float = 0.0
    thresholds: Mapping[str, float] = field(default_factory=_default_thresholds)
    hyperparameters: Mapping[str, Any] = field(default_factory=_default_hyperparameters)
    calendar_every: int = 4

    def __post_init__(self) -> None:
        if self.drift_columns is not None:
            object.__setattr__(self, "drift_columns", tuple(self.drift_columns))
        if isinstance(self.regime_signals, str):
            object.__setattr__(self, "regime_signals", (self.regime_signals,))
        object.__setattr__(self, "regime_signals", tuple(self.regime_signals))
        object.__setattr__(self, "thresholds", dict(self.thresholds))
        object.__setattr__(self, "hyperparameters", dict(self.hyperparameters))
        self.validate()

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        """Raise :class:`PolicyError` naming the first invalid field."""
        if not isinstance(self.target, str) or not self.target:
            raise PolicyError(f"target must be a column name, got {self.target!r}")
        if not isinstance(self.metric, str) or not self.metric:
            raise PolicyError(f"metric must be a metric name, got {self.metric!r}")
        _number(self.drift_share, "drift_share", low=0.0, high=1.0, low_open=True)
        if self.drift_columns is not None:
            if not self.drift_columns or not all(isinstance(c, str) and c for c in self.drift_columns):
                raise PolicyError(
                    f"drift_columns must be None or a non-empty list of column names, got {self.drift_columns!r}"
                )
            if self.target in self.drift_columns:
                raise PolicyError(
                    f"drift_columns lists the target {self.target!r}: target drift is its own "
                    "signal (label_drift), not part of the feature-drift share"
                )
        if not isinstance(self.label_drift, bool):
            raise PolicyError(f"label_drift must be true or false, got {self.label_drift!r}")
        if self.max_drop is not None:
            _number(self.max_drop, "max_drop", low=0.0)
        if self.min_value is not None:
            _number(self.min_value, "min_value")
        if self.max_drop is None and self.min_value is None:
            raise PolicyError("max_drop and min_value are both None: the decay trigger checks nothing")
        tw = self.training_windows
        if tw not in (TRAINING_WINDOW_ALL, TRAINING_WINDOW_SINCE_DRIFT) and (
            isinstance(tw, bool) or not isinstance(tw, int) or tw < 1
        ):
            raise PolicyError(
                f"training_windows must be 'since_drift', 'all' or a positive number of windows, got {tw!r}"
            )
        cap = self.max_training_windows
        if cap is not None:
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise PolicyError(f"max_training_windows must be None or a positive number, got {cap!r}")
            if isinstance(tw, int):
                raise PolicyError(
                    f"max_training_windows caps a growing training window ('since_drift' or 'all'); "
                    f"training_windows is already a fixed {tw}"
                )
        if self.refresh_growth is not None:
            _number(self.refresh_growth, "refresh_growth", low=1.0, low_open=True)
        unknown = [s for s in self.regime_signals if s not in REGIME_SIGNALS]
        if not self.regime_signals or unknown:
            raise PolicyError(
                f"regime_signals must name one or more of {', '.join(REGIME_SIGNALS)}, got {list(self.regime_signals)!r}"
            )
        _number(self.eval_fraction, "eval_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
        _number(self.min_improvement, "min_improvement")
        for name, bound in self.thresholds.items():
            _number(bound, f"thresholds[{name!r}]")
        if "target" in self.hyperparameters and self.hyperparameters["target"] != self.target:
            raise PolicyError(
                f"hyperparameters['target'] is {self.hyperparameters['target']!r} but target is {self.target!r}"
            )
        if isinstance(self.calendar_every, bool) or not isinstance(self.calendar_every, int):
            raise PolicyError(
                f"calendar_every must be a whole number of windows, got {self.calendar_every!r}"
            )
        if self.calendar_every < 1:
            raise PolicyError(f"calendar_every must be at least 1, got {self.calendar_every}")

    # ------------------------------------------------------------------ derived settings

    def training_params(self) -> dict[str, Any]:
        """The training entrypoint's ``--params``: the hyper-parameters with the target."""
        return {"target": self.target, **self.hyperparameters}

    def feature_columns(self, columns: list[str]) -> list[str]:
        """The columns tested for feature drift among ``columns`` (the model's inputs by default)."""
        if self.drift_columns is not None:
            return list(self.drift_columns)
        return [c for c in columns if c != self.target]

    def backtest_only(self) -> list[str]:
        """The settings of this policy that the backtest replays but the reference DAGs do not
        implement (an adaptive training window, a refresh trigger): measured alternatives
        (docs/policy.md), not deployable yet. Empty for every deployable policy."""
        found = []
        if self.training_windows == TRAINING_WINDOW_SINCE_DRIFT:
            found.append(f"training_windows={self.training_windows!r} ({ENV['training_windows']})")
        if self.max_training_windows is not None:
            found.append(f"max_training_windows={self.max_training_windows} ({ENV['max_training_windows']})")
        if self.refresh_growth is not None:
            found.append(f"refresh_growth={self.refresh_growth} ({ENV['refresh_growth']})")
        return found

    def for_dags(self) -> RetrainingPolicy:
        """This policy, checked for the reference DAGs: a backtest-only setting is an error naming it
        (the DAGs would silently not do what the backtest replayed)."""
        found = self.backtest_only()
        if found:
            raise PolicyError(
                f"{'; '.join(found)}: backtest only, the reference DAGs do not implement "
                "it (docs/policy.md, 'What was tried')"
            )
        return self

    def replace(self, **changes: Any) -> RetrainingPolicy:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["drift_columns"] = None if self.drift_columns is None else list(self.drift_columns)
        out["regime_signals"] = list(self.regime_signals)
        return out

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RetrainingPolicy:
        """The defaults, then the ``MLOPS_*`` environment variables of :data:`ENV`, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[name] = _parse(name, var, raw.strip())
        values.update(overrides)
        try:
            return cls(**values)
        except PolicyError as err:
            from_env = sorted(ENV[n] for n in values if n not in overrides and n in ENV)
            raise PolicyError(
                f"{err} (environment: {', '.join(from_env)})" if from_env else str(err)
            ) from None


def _number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{name} must be a number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise PolicyError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise PolicyError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")


def _parse(name: str, var: str, raw: str) -> Any:
    try:
        if name in ("target", "metric"):
            return raw
        if name == "drift_columns":
            return (
                None
                if raw.lower() in ("none", "inputs")
                else tuple(c.strip() for c in raw.split(",") if c.strip())
            )
        if name == "regime_signals":
            return tuple(c.strip() for c in raw.split(",") if c.strip())
        if name == "label_drift":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError("expected true or false")
            return raw.lower() in ("1", "true", "yes")
        if name in ("max_drop", "min_value", "refresh_growth"):
            return None if raw.lower() == "none" else float(raw)
        if name == "training_windows":
            if raw.lower() in (TRAINING_WINDOW_ALL, TRAINING_WINDOW_SINCE_DRIFT):
                return raw.lower()
            return int(raw)
        if name == "max_training_windows":
            return None if raw.lower() == "none" else int(raw)
        if name == "calendar_every":
            return int(raw)
        if name in ("thresholds", "hyperparameters"):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
        return float(raw)
    except ValueError as err:
        raise PolicyError(f"environment variable {var} (policy field {name}) = {raw!r}: {err}") from None


DEFAULT_POLICY = RetrainingPolicy()
"""The measured defaults (docs/policy.md), without environment overrides."""
