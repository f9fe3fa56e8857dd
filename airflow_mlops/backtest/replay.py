"""Replay retraining policies over a labelled history, window by window.

For each window ``t`` after the first model's windows, and for each policy:

1. the model the policy serves is scored on window ``t``'s labels: the metric the business got;
2. the monitor's signals are computed as ``mlops_drift_monitor`` computes them: feature drift of
   the window against the serving model's training data (:func:`airflow_mlops.core.drift.compare`
   on the model's input columns, with the policy's ``drift_share``), target drift of the same pair
   (reported; a trigger when ``label_drift`` is set), and performance decay
   (:func:`airflow_mlops.core.performance.performance_verdict` against the metric recorded at the
   model's evaluation);
3. the policy decides (:func:`airflow_mlops.core.retraining.retrain_reasons`); a retraining runs
   the training entrypoint on the policy's training window, scores the candidate and the champion
   on the held-out part of window ``t`` and applies the evaluation rule
   (:func:`airflow_mlops.core.evaluation.decide`, with the policy's ``min_improvement`` and
   ``thresholds``); a promoted candidate serves from window ``t + 1``.

Nothing is retrained after the last window: no window is left to serve.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.backtest.history import BacktestInputError, History
from airflow_mlops.backtest.training import Candidate, CandidateCache
from airflow_mlops.core import retraining
from airflow_mlops.policy import RetrainingPolicy


@dataclass
class WindowRecord:
    window: str
    rows: int
    version: int  # the model that served this window
    value: float  # its metric on the window
    feature_drift_share: float | None = None
    drifted_columns: list[str] = field(default_factory=list)
    feature_drift: bool | None = None
    label_drift: bool | None = None
    degraded: bool | None = None
    retrain_reasons: list[str] = field(default_factory=list)
    retrained: bool = False
    promoted: bool | None = None
    evaluation: list[str] = field(default_factory=list)
    training_start: str | None = None  # the first window the retraining trained on
    training_seconds: float = 0.0


@dataclass
class PolicyRun:
    name: str
    records: list[WindowRecord] = field(default_factory=list)

    @property
    def retrainings(self) -> int:
        return sum(r.retrained for r in self.records)

    @property
    def promotions(self) -> int:
        return sum(bool(r.promoted) for r in self.records)

    @property
    def training_seconds(self) -> float:
        return sum(r.training_seconds for r in self.records)

    @property
    def mean(self) -> float:
        return retraining.mean([r.value for r in self.records])

    def totals(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "retrainings": self.retrainings,
            "promotions": self.promotions,
            "training_seconds": round(self.training_seconds, 2),
            "feature_drift_windows": sum(bool(r.feature_drift) for r in self.records),
            "label_drift_windows": sum(bool(r.label_drift) for r in self.records),
            "decay_windows": sum(bool(r.degraded) for r in self.records),
        }


@dataclass
class SeedRun:
    seed: int
    policies: dict[str, PolicyRun]
    initial_version: int
    initial_seconds: float
    seconds: float
    # with ``ceiling``: hindsight[s][t], the metric on window t of the candidate trained after
    # window s (the first model: s = initial_windows - 1), for retraining.hindsight_bound
    hindsight: dict[int, dict[int, float]] | None = None


@dataclass
class _State:
    champion: Candidate
    baseline: dict[str, float]  # the champion's metrics at its evaluation (the decay baseline)
    served: int = 0
    regime_start: int = 0  # the window the current regime starts at (the last detected change)
    trained: tuple[int, int] = (0, 0)  # the span the last retraining (promoted or not) trained on


Progress = Callable[[str], None]


def replay_seed(
    history: History,
    policy: RetrainingPolicy,
    *,
    entrypoint: str,
    seed: int,
    policies: Sequence[str] = retraining.POLICIES,
    initial_windows: int = 1,
    workdir: str | None = None,
    isolation: str = "inprocess",
    progress: Progress | None = None,
    cache: CandidateCache | None = None,
    ceiling: bool = False,
) -> SeedRun:
    """Replay ``policies`` over ``history`` with one seed (the held-out split and the model's seed).

    :param cache: candidates to reuse (from an earlier replay of the same history, seed and training
        settings, e.g. to compare trigger settings); kept whole. Default: a new one in a temporary folder.
    :param ceiling: also score every candidate the training window gives (one after each window
        but the last: those ``every`` trains) on every later window (``SeedRun.hindsight``), for the
        ceiling with hindsight. Needs a fixed training window (a number or ``all``).
    """
    from airflow_mlops.core.metrics import check_metric, greater_is_better

    try:
        check_metric(policy.metric)
    except ValueError as err:
        raise BacktestInputError(f"policy metric: {err}") from None
    unknown = [p for p in policies if p not in retraining.POLICIES]
    if unknown:
        raise BacktestInputError(f"unknown policies {unknown}; known: {', '.join(retraining.POLICIES)}")
    if not 1 <= initial_windows < len(history.windows):
        raise BacktestInputError(
            f"initial_windows must be between 1 and {len(history.windows) - 1} "
            f"(the history has {len(history.windows)} windows), got {initial_windows}"
        )
    if policy.target != history.target:
        raise BacktestInputError(
            f"the policy's target {policy.target!r} is not the history's {history.target!r}"
        )
    features = policy.feature_columns([c for c in history.columns if c != policy.target])
    missing = [c for c in features if c not in history.columns]
    if missing:
        raise BacktestInputError(
            f"drift_columns {missing} are not columns of the history ({history.columns})"
        )
    if ceiling and policy.training_windows == retraining.SINCE_DRIFT:
        raise BacktestInputError(
            "the ceiling with hindsight needs a fixed training window (a number of recent windows or "
            "'all'): with training_windows='since_drift' a candidate depends on what was decided before"
        )
    greater = greater_is_better(policy.metric)
    began = time.perf_counter()
    shared = cache is not None
    if shared and (cache.seed != seed or cache.history is not history or not cache.trains_like(policy)):
        raise ValueError(
            "the shared candidate cache was built for another history, seed or training settings"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-backtest-", dir=workdir) as tmp:
        if cache is None:
            cache = CandidateCache(
                history, policy, entrypoint=entrypoint, seed=seed, workdir=tmp, isolation=isolation
            )
        first = cache.get(initial_windows - 1, 0)
        initial = _evaluate(first, None, policy, cache)
        if initial["decision"] != "promote":
            raise BacktestInputError(
                "the first model, trained on window(s) "
                f"{', '.join(w.label for w in history.windows[:initial_windows])}, is rejected by the "
                f"evaluation rule: {'; '.join(initial['reasons'])}"
            )
        states = {
            name: _State(first, initial["candidate"]["metrics"], trained=first.key) for name in policies
        }
        runs = {name: PolicyRun(name) for name in policies}
        last = len(history.windows) - 1
        hindsight = None
        if ceiling:
            hindsight = {initial_windows - 1: _later_values(cache, first, last, policy.metric)}
        for t in range(initial_windows, len(history.windows)):
            window = history.windows[t]
            for name in policies:
                state, run = states[name], runs[name]
                record = _serve(state, t, window, features, policy, greater, cache)
                state.served += 1
                signals = _signals_of(record)
                state.regime_start = retraining.regime_start_after(
                    state.regime_start,
                    t,
                    changed=retraining.regime_changed(signals, policy.regime_signals),
                    champion_start=state.champion.start,
                )
                start = retraining.training_start(
                    policy.training_windows,
                    t,
                    regime_start=state.regime_start,
                    cap=policy.max_training_windows,
                )
                signals.refresh = retraining.refresh_due(
                    t,
                    trained_start=state.trained[0],
                    trained_end=state.trained[1],
                    growth=policy.refresh_growth,
                )
                reasons = retraining.retrain_reasons(
                    name,
                    signals,
                    windows_served=state.served,
                    calendar_every=policy.calendar_every,
                    label_drift_trigger=policy.label_drift,
                )
                record.retrain_reasons = reasons
                if reasons and t < last:
                    candidate = cache.get(t, start)
                    decision = _evaluate(candidate, state.champion, policy, cache)
                    record.retrained = True
                    record.training_start = history.windows[start].label
                    record.training_seconds = candidate.seconds
                    record.promoted = decision["decision"] == "promote"
                    record.evaluation = decision["reasons"]
                    state.trained = candidate.key
                    if record.promoted:
                        state.champion = candidate
                        state.baseline = decision["candidate"]["metrics"]
                run.records.append(record)
            if hindsight is not None and t < last:
                start = retraining.training_start(policy.training_windows, t, cap=policy.max_training_windows)
                hindsight[t] = _later_values(cache, cache.get(t, start), last, policy.metric)
            if not shared:
                cache.keep_only({s.champion.key for s in states.values()})
            if progress is not None:
                progress(
                    _progress_line(
                        seed,
                        t - initial_windows + 1,
                        len(history.windows) - initial_windows,
                        window.label,
                        runs,
                    )
                )
    return SeedRun(
        seed=seed,
        policies=runs,
        initial_version=first.version,
        initial_seconds=first.seconds,
        seconds=time.perf_counter() - began,
        hindsight=hindsight,
    )


def _later_values(cache: CandidateCache, candidate: Candidate, last: int, metric: str) -> dict[int, float]:
    return {u: served_value(cache, candidate, u, metric) for u in range(candidate.window + 1, last + 1)}


def _serve(
    state: _State,
    t: int,
    window: Any,
    features: list[str],
    policy: RetrainingPolicy,
    greater: bool,
    cache: CandidateCache,
) -> WindowRecord:
    from airflow_mlops.core.drift import DriftInputError, compare
    from airflow_mlops.core.performance import performance_verdict

    frame, target, champion = window.frame, policy.target, state.champion
    value = served_value(cache, champion, t, policy.metric)
    record = WindowRecord(window=window.label, rows=len(frame), version=champion.version, value=value)
    reference = champion.reference
    try:
        drift = cache.memo(
            ("drift", champion.key, t, tuple(features), policy.drift_share),
            lambda: compare(
                reference[features], frame[features], columns=features, drift_share=policy.drift_share
            ),
        )
        record.feature_drift = drift.drift_detected
        record.feature_drift_share = drift.share
        record.drifted_columns = drift.drifted_columns
    except DriftInputError as err:
        raise BacktestInputError(f"window {window.label}: feature drift cannot be computed: {err}") from err
    try:
        label = cache.memo(
            ("label drift", champion.key, t),
            lambda: compare(reference[[target]], frame[[target]], columns=[target], drift_share=1.0),
        )
        record.label_drift = label.drift_detected
    except DriftInputError:
        record.label_drift = None  # a constant target on both sides: nothing to test
    baseline = state.baseline.get(policy.metric)
    verdict = performance_verdict(
        policy.metric,
        value,
        baseline,
        min_value=policy.min_value,
        max_drop=policy.max_drop,
        greater_is_better=greater,
    )
    record.degraded = verdict.degraded
    return record


def served_value(cache: CandidateCache, candidate: Candidate, t: int, metric: str) -> float:
    """``candidate``'s metric on all of window ``t``'s labels, computed once per cache."""
    window = cache.history.windows[t]
    frame, target = window.frame, cache.history.target
    return cache.memo(
        ("serve", candidate.key, t, metric),
        lambda: _score(candidate.model, frame.drop(columns=[target]), frame[target], metric, window.label),
    )


def _signals_of(record: WindowRecord) -> retraining.Signals:
    return retraining.Signals(
        feature_drift=bool(record.feature_drift),
        feature_drift_share=record.feature_drift_share or 0.0,
        drifted_columns=record.drifted_columns,
        label_drift=record.label_drift,
        degraded=bool(record.degraded),
    )


def _score(model: Any, X: Any, y: Any, metric: str, where: str) -> float:
    from airflow_mlops.core.metrics import score

    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        X = X[list(names)]
    try:
        return float(score(model, X, y, [metric])[metric])
    except ValueError as err:
        raise BacktestInputError(f"window {where}: cannot score {metric}: {err}") from err


def _evaluate(
    candidate: Candidate,
    champion: Candidate | None,
    policy: RetrainingPolicy,
    cache: CandidateCache | None = None,
) -> dict[str, Any]:
    """``EvaluateModelOperator``'s rule: both models on the held-out rows, then ``decide``."""
    from airflow_mlops.core.evaluation import decide
    from airflow_mlops.core.metrics import score

    required = list(dict.fromkeys([policy.metric, *policy.thresholds]))

    def metrics_of(model: Candidate) -> dict[str, float]:
        def compute() -> dict[str, float]:
            X = candidate.eval_X
            names = getattr(model.model, "feature_names_in_", None)
            if names is not None:
                X = X[list(names)]
            try:
                return score(model.model, X, candidate.eval_y, required)
            except ValueError as err:
                raise BacktestInputError(
                    f"window {candidate.window}: cannot score the held-out rows with {required}: {err}"
                ) from err

        if cache is None:
            return compute()
        return cache.memo(("eval", model.key, candidate.key), compute)

    return decide(
        metric=policy.metric,
        candidate_version=str(candidate.version),
        candidate_metrics=metrics_of(candidate),
        champion_version=None if champion is None else str(champion.version),
        champion_metrics=None if champion is None else metrics_of(champion),
        min_improvement=policy.min_improvement,
        thresholds=dict(policy.thresholds),
        bootstrap="promote",
    )


def _progress_line(seed: int, done: int, total: int, label: str, runs: dict[str, PolicyRun]) -> str:
    parts = []
    for name, run in runs.items():
        value = run.records[-1].value if run.records else math.nan
        parts.append(f"{name} {value:.3f} ({run.retrainings} retrains)")
    return f"seed {seed}: window {done}/{total} {label}: " + ", ".join(parts)
