"""Scoring a registered model version on labelled data: what EvaluateModelOperator and
ModelPerformanceSensor share.

Both read a labelled table, load a version through :class:`~airflow_mlops.hooks.mlflow.MlflowHook`
and score it with :func:`airflow_mlops.core.metrics.score`. Data that does not fit (no target
column, missing labels or feature columns, a metric that does not fit the target, a model that
fails to predict) is a :class:`~airflow_mlops.exceptions.DataInputError` naming the data: a retry
cannot fix it. Nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.metrics import align_features, score, split_labelled
from airflow_mlops.exceptions import DataInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_mlops.hooks.mlflow import MlflowHook

_log = logging.getLogger(__name__)


def labelled_data(uri: str, *, target: str, setting: str, conn_id: str | None = None) -> tuple[Any, Any]:
    """Read the labelled table at ``uri`` and split it into features and labels.

    :param target: the label column.
    :param setting: the argument ``uri`` comes from (``"eval_data"``), for messages.
    :param conn_id: Airflow connection for object storage.
    :return: ``(X, y)``
    :raises DataInputError: unreadable or empty data, no target column, missing labels.
    """
    from airflow_mlops.io import load_table

    df = load_table(str(uri), conn_id=conn_id, what=setting)
    try:
        return split_labelled(df, target, f"{setting} {uri}")
    except ValueError as err:
        raise DataInputError(str(err)) from None


def score_version(
    hook: MlflowHook,
    name: str,
    version: str,
    X: Any,
    y: Any,
    metrics: Sequence[str],
    *,
    required: Sequence[str],
    what: str,
    model_label: str | None = None,
    log: logging.Logger | None = None,
) -> dict[str, float]:
    """Load ``name`` v``version`` through ``hook`` and score it on ``X``/``y``.

    :param metrics: every metric wanted, in order.
    :param required: those that must be computed (the deciding metric, the thresholds); the others
        are computed when they can be.
    :param what: the data in words, for messages (``"eval_data s3://..."``).
    :param model_label: the model in words, for messages (default ``"<name> v<version>"``).
    :param log: where to say which metrics could not be computed (default: this module's logger).
    :return: ``{metric: value}`` in the order of ``metrics``; optional metrics that could not be
        computed are left out.
    :raises DataInputError: the data lacks the model's feature columns, a required metric does not
        fit the data, or the model fails to predict on it.
    """
    log = log or _log
    label = model_label or f"{name} v{version}"
    model = hook.load_model(name, version)
    try:
        X = align_features(model, X, what, model_label=label)
    except ValueError as err:
        raise DataInputError(str(err)) from None
    try:
        return score(model, X, y, list(metrics))
    except Exception:  # retried below metric by metric, to tell what failed and why
        pass
    # Optional metrics are the metric family evaluation records as a baseline for later checks.
    # Not every one fits every model (roc_auc needs predict_proba for more than two classes, or
    # labels of both classes): one that cannot be computed must neither cost the others nor fail
    # the task. A required one failing is the data's (or the model's) problem, and says so.
    out: dict[str, float] = {}
    try:
        out.update(score(model, X, y, list(required)))
    except ValueError as err:
        raise DataInputError(f"cannot score {label} on {what}: {err}") from err
    except Exception as err:  # the model itself fails on this data (a pyfunc schema error ...)
        raise DataInputError(f"{label} fails to predict on {what}: {type(err).__name__}: {err}") from err
    for metric in metrics:
        if metric in out:
            continue
        try:
            out.update(score(model, X, y, [metric]))
        except Exception as err:
            log.info("%s: %s not computed (%s)", label, metric, err)
    return {m: out[m] for m in metrics if m in out}


class _Replayed:
    """A model whose predictions were made batch by batch: it answers with them, so the metrics
    are computed by the same code as for a model scored in one go."""

    def __init__(self, model: Any, predictions: Any, probabilities: Any | None) -> None:
        self._predictions = predictions
        self._probabilities = probabilities
        if getattr(model, "classes_", None) is not None:
            self.classes_ = model.classes_
        if probabilities is not None:
            self.predict_proba = lambda X: self._probabilities

    def predict(self, X: Any) -> Any:
        return self._predictions


def score_version_in_batches(
    hook: MlflowHook,
    name: str,
    version: str,
    batches: Any,
    *,
    target: str,
    metrics: Sequence[str],
    what: str,
    model_label: str | None = None,
) -> tuple[dict[str, float], int]:
    """Score ``name`` v``version`` on a table read in batches (an engine's input), never whole:
    each batch is split, aligned and predicted; only the labels and the predictions (and class
    probabilities, for ``roc_auc``) are kept. ``({metric: value}, rows)``.

    :raises DataInputError: a batch lacks the target or features, has missing labels, or the
        model fails on it; no rows at all.
    """
    import numpy as np
    import pandas as pd

    from airflow_mlops.core.metrics import _as_1d

    label = model_label or f"{name} v{version}"
    model = hook.load_model(name, version)
    wants_proba = "roc_auc" in metrics and hasattr(model, "predict_proba")
    labels, predictions, probabilities = [], [], []
    for batch in batches:
        try:
            X, y = split_labelled(batch, target, what)
            X = align_features(model, X, what, model_label=label)
        except ValueError as err:
            raise DataInputError(str(err)) from None
        try:
            predictions.append(_as_1d(model.predict(X)))
            if wants_proba:
                probabilities.append(np.asarray(model.predict_proba(X)))
        except Exception as err:  # the model itself fails on this data
            raise DataInputError(f"{label} fails to predict on {what}: {type(err).__name__}: {err}") from err
        labels.append(pd.Series(y).reset_index(drop=True))
    if not labels:
        raise DataInputError(f"{what}: no rows to score")
    y_all = pd.concat(labels, ignore_index=True)
    replayed = _Replayed(
        model, np.concatenate(predictions), np.concatenate(probabilities) if wants_proba else None
    )
    try:
        return score(replayed, None, y_all, list(metrics)), len(y_all)
    except ValueError as err:
        raise DataInputError(f"cannot score {label} on {what}: {err}") from err
