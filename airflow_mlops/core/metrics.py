"""Scoring a model on labelled data: the metric names airflow-mlops understands and how each is computed.

No Airflow import. The definitions match the reference entrypoint (``include/training/train.py``),
so the metrics a training job reports and the ones evaluation computes mean the same thing:

* two classes: ``f1``/``precision``/``recall`` of the positive class, the later one in sort
  order (``1`` of ``0/1``, ``True`` of ``False/True``, ``"yes"`` of ``"no"/"yes"``); ``roc_auc``
  on its predicted probability;
* more classes: weighted averages, ``roc_auc`` one-vs-rest weighted;
* regression: ``rmse``, ``mae``, ``r2``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")
SUPPORTED_METRICS: tuple[str, ...] = CLASSIFICATION_METRICS + REGRESSION_METRICS
_LOWER_IS_BETTER = frozenset({"rmse", "mae"})
# The values each metric can take: a bound outside them is never met, or always.
_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(CLASSIFICATION_METRICS, (0.0, 1.0)),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
}


def check_metric(metric: str) -> str:
    """``metric`` if it is supported, else a ValueError listing the supported ones."""
    if metric not in SUPPORTED_METRICS:
        raise ValueError(f"unknown metric {metric!r}; supported metrics: {', '.join(SUPPORTED_METRICS)}")
    return metric


def greater_is_better(metric: str) -> bool:
    """True for scores (accuracy, f1, r2 ...), False for errors (rmse, mae)."""
    return check_metric(metric) not in _LOWER_IS_BETTER


def task_of(metric: str) -> str:
    """``"classification"`` or ``"regression"``."""
    return "regression" if check_metric(metric) in REGRESSION_METRICS else "classification"


def task_of_all(metrics: Iterable[str]) -> str:
    """The one task all ``metrics`` belong to; ValueError when they mix tasks."""
    tasks = {task_of(m) for m in metrics}
    if not tasks:
        raise ValueError("no metric to compute")
    if len(tasks) > 1:
        raise ValueError(f"metrics {sorted(metrics)} mix classification and regression metrics")
    return tasks.pop()


def family(metric: str) -> tuple[str, ...]:
    """All metrics of ``metric``'s task: evaluation records them as a baseline for later checks."""
    return CLASSIFICATION_METRICS if task_of(metric) == "classification" else REGRESSION_METRICS


def finite_number(value: Any, setting: str) -> float:
    """``value`` as a finite float (a number or a numeric string, not a boolean).

    :raises ValueError: naming ``setting`` when it is not one.
    """
    if isinstance(value, bool):
        raise ValueError(f"{setting} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{setting} must be a number, got {value!r}") from err
    if not math.isfinite(number):
        raise ValueError(f"{setting} must be a finite number, got {value!r}")
    return number


def check_bound(metric: str, value: Any, setting: str) -> float:
    """``value`` as a bound on ``metric`` (a floor for scores, a ceiling for errors).

    :param setting: the argument it comes from, for the message (``"thresholds['accuracy']"``).
    :raises ValueError: naming ``setting`` when ``value`` is not a finite number the metric can
        take: NaN would fail every model, a negative accuracy floor would pass every one.
    """
    check_metric(metric)
    bound = finite_number(value, setting)
    low, high = _RANGES[metric]
    if not low <= bound <= high:
        if math.isinf(high):
            span = f"{low:g} or more"
        elif math.isinf(low):
            span = f"{high:g} or less"
        else:
            span = f"between {low:g} and {high:g}"
        raise ValueError(f"{setting} must be {span} ({metric} cannot be outside that range), got {value!r}")
    return bound


def split_labelled(df: Any, target: str, what: str) -> tuple[Any, Any]:
    """Features and labels of a labelled table.

    :param df: the table.
    :param target: its label column.
    :param what: the input in words, for messages: the setting and its URI (``"data s3://..."``).
    :return: ``(X, y)``: every column but ``target``, and ``target``.
    :raises ValueError: the target column is missing or has missing values.
    """
    if target not in df.columns:
        raise ValueError(f"{what} has no target column {target!r}; columns: {list(df.columns)}")
    missing = int(df[target].isna().sum())
    if missing:
        raise ValueError(f"{what}: target column {target!r} has {missing} missing values")
    return df.drop(columns=[target]), df[target]


def align_features(model: Any, X: Any, what: str, *, model_label: str = "the model") -> Any:
    """``X`` restricted to, and ordered as, the columns ``model`` was trained on.

    A model that records its training columns (scikit-learn's ``feature_names_in_``) gets exactly
    those; any other model gets ``X`` as it is.

    :param what: the input in words, for messages (``"eval_data s3://..."``).
    :param model_label: the model in words, for messages (``"churn v7"``).
    :raises ValueError: naming the columns ``X`` lacks.
    """
    features = getattr(model, "feature_names_in_", None)
    if features is None:
        return X
    missing = [c for c in features if c not in X.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing} that {model_label} was trained on")
    return X[list(features)]


def score(model: Any, X: Any, y: Any, metrics: list[str]) -> dict[str, float]:
    """Score ``model`` on features ``X`` and labels ``y``.

    :param model: a scikit-learn estimator, or an MLflow pyfunc model (anything with ``predict``).
        ``roc_auc`` uses ``predict_proba`` when the model has it, else the hard predictions.
    :param X: feature DataFrame.
    :param y: labels (Series or array).
    :param metrics: names from :data:`SUPPORTED_METRICS`, all of one task.
    :return: ``{metric: value}``
    :raises ValueError: unknown metric, metrics of mixed tasks, or a metric that does not fit the
        data (a classification metric on a continuous target or predictions, a regression metric
        on a non-numeric target, ``roc_auc`` with a single class in ``y``).
    """
    import numpy as np
    import pandas as pd

    for metric in metrics:
        check_metric(metric)
    task = task_of_all(metrics)
    y_true = pd.Series(np.asarray(y).ravel())
    if len(y_true) == 0:
        raise ValueError("no rows to score")
    pred = _as_1d(model.predict(X))
    if len(pred) != len(y_true):
        raise ValueError(f"model returned {len(pred)} predictions for {len(y_true)} rows")
    if task == "regression":
        return _regression(y_true, pred, metrics)
    return _classification(model, X, y_true, pred, metrics)


def _as_1d(pred: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] != 1:
            raise ValueError(
                f"model returned {pred.shape[1]} output columns; expected one prediction per row"
            )
        pred = pred.iloc[:, 0]
    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"model returned predictions of shape {arr.shape}; expected one prediction per row")
    return arr


def _is_continuous(values: Any) -> bool:
    import numpy as np
    import pandas as pd

    s = pd.Series(values)
    if not pd.api.types.is_float_dtype(s):
        return False
    finite = s.dropna().to_numpy(dtype=float)
    return bool(len(finite)) and not np.all(np.equal(np.mod(finite, 1), 0))


def _regression(y_true: Any, pred: Any, metrics: list[str]) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    from sklearn import metrics as skm

    if not pd.api.types.is_numeric_dtype(y_true) or pd.api.types.is_bool_dtype(y_true):
        raise ValueError(
            f"regression metrics {metrics} need a numeric target; the target has dtype {y_true.dtype}"
        )
    try:
        pred = np.asarray(pred, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"regression metrics {metrics} need numeric predictions: {err}") from err
    out: dict[str, float] = {}
    for metric in metrics:
        if metric == "rmse":
            out[metric] = float(math.sqrt(skm.mean_squared_error(y_true, pred)))
        elif metric == "mae":
            out[metric] = float(skm.mean_absolute_error(y_true, pred))
        elif metric == "r2":
            out[metric] = float(skm.r2_score(y_true, pred))
    return out


def _classification(model: Any, X: Any, y_true: Any, pred: Any, metrics: list[str]) -> dict[str, float]:
    from sklearn import metrics as skm

    if _is_continuous(y_true):
        raise ValueError(
            f"classification metrics {metrics} do not fit a continuous target (non-integer values); "
            "use rmse, mae or r2"
        )
    if _is_continuous(pred):
        raise ValueError(
            f"classification metrics {metrics} do not fit a model that predicts continuous values; "
            "use rmse, mae or r2"
        )
    # labels and predictions may come back with different dtypes (0/1 ints vs 0.0/1.0 floats)
    y_cmp, pred_cmp = _align(y_true, pred)
    classes = _classes(model, y_cmp, pred_cmp)
    binary = len(classes) == 2
    avg: dict[str, Any] = (
        {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
    )
    out: dict[str, float] = {}
    for metric in metrics:
        if metric == "accuracy":
            out[metric] = float(skm.accuracy_score(y_cmp, pred_cmp))
        elif metric == "f1":
            out[metric] = float(skm.f1_score(y_cmp, pred_cmp, zero_division=0, **avg))
        elif metric == "precision":
            out[metric] = float(skm.precision_score(y_cmp, pred_cmp, zero_division=0, **avg))
        elif metric == "recall":
            out[metric] = float(skm.recall_score(y_cmp, pred_cmp, zero_division=0, **avg))
        elif metric == "roc_auc":
            if y_true.nunique() < 2:
                raise ValueError("roc_auc needs both classes in the labels; the data holds only one")
            out[metric] = _roc_auc(model, X, y_cmp, pred_cmp, classes)
    return {m: out[m] for m in metrics}


def _classes(model: Any, y_true: Any, pred: Any) -> list[Any]:
    """The model's own classes (sklearn), else every value seen in labels and predictions, sorted."""
    import numpy as np

    classes = getattr(model, "classes_", None)
    if classes is not None:
        classes = list(classes)
        if np.asarray(y_true).dtype.kind in "US":
            classes = [str(c) for c in classes]
        return classes
    values = set(np.asarray(y_true).tolist()) | set(np.asarray(pred).tolist())
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _align(y_true: Any, pred: Any) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    y = np.asarray(y_true)
    p = np.asarray(pred)
    if pd.api.types.is_numeric_dtype(y) and pd.api.types.is_numeric_dtype(p) and y.dtype != p.dtype:
        return y.astype(float), p.astype(float)
    if y.dtype.kind in "OUS" or p.dtype.kind in "OUS":
        return y.astype(str), p.astype(str)
    return y, p


def _roc_auc(model: Any, X: Any, y_true: Any, pred: Any, classes: list[Any]) -> float:
    import numpy as np
    from sklearn import metrics as skm

    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    if len(classes) == 2:
        positive = np.asarray(y_true) == classes[1]
        if proba is not None:
            return float(skm.roc_auc_score(positive, np.asarray(proba)[:, 1]))
        # no probabilities (a pyfunc model): the hard predictions are the score
        return float(skm.roc_auc_score(positive, (np.asarray(pred) == classes[1]).astype(float)))
    if proba is None:
        raise ValueError("roc_auc for more than two classes needs a model with predict_proba")
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted", labels=classes))
