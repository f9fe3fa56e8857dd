from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from airflow_mlops.core.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    SUPPORTED_METRICS,
    align_features,
    check_bound,
    greater_is_better,
    score,
    split_labelled,
)


class _Fixed:
    """A pyfunc-like model: predict only, returns fixed predictions (no predict_proba)."""

    def __init__(self, pred):
        self.pred = pred

    def predict(self, X):
        return self.pred


def test_supported_metrics_and_direction():
    assert set(SUPPORTED_METRICS) == {"accuracy", "f1", "precision", "recall", "roc_auc", "rmse", "mae", "r2"}
    assert [greater_is_better(m) for m in ("accuracy", "roc_auc", "r2", "rmse", "mae")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="unknown metric 'auc'.*accuracy"):
        greater_is_better("auc")


def test_binary_hard_predictions_known_values():
    y = pd.Series([0, 0, 1, 1, 1])
    model = _Fixed(np.array([0, 1, 1, 1, 0]))
    out = score(model, pd.DataFrame({"x": range(5)}), y, ["accuracy", "precision", "recall", "f1", "roc_auc"])
    assert out["accuracy"] == pytest.approx(0.6)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    # without predict_proba the hard predictions are the score: (TPR + TNR) / 2 = (2/3 + 1/2) / 2
    assert out["roc_auc"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert list(out) == ["accuracy", "precision", "recall", "f1", "roc_auc"]


def test_string_labels_positive_class_is_later_in_sort_order():
    y = pd.Series(["no", "yes", "yes", "no"])
    out = score(_Fixed(np.array(["yes", "yes", "yes", "no"])), None, y, ["precision", "recall"])
    assert out == {"precision": pytest.approx(2 / 3), "recall": 1.0}


def test_float_predictions_of_integer_labels_are_aligned():
    y = pd.Series([0, 1, 1, 0])
    out = score(_Fixed(np.array([0.0, 1.0, 1.0, 1.0])), None, y, ["accuracy"])
    assert out["accuracy"] == pytest.approx(0.75)


def test_roc_auc_uses_predict_proba_of_sklearn_model():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200)})
    y = (X["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    from sklearn.metrics import roc_auc_score

    out = score(model, X, y, ["roc_auc", "accuracy"])
    assert out["roc_auc"] == pytest.approx(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    assert out["roc_auc"] > out["accuracy"] - 0.2  # a probability AUC, not a hard-label one


def test_multiclass_weighted_and_ovr_auc():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    y = pd.Series(np.where(X["a"] > 0.5, "hi", np.where(X["a"] < -0.5, "lo", "mid")))
    model = LogisticRegression(max_iter=500).fit(X, y)
    out = score(model, X, y, list(CLASSIFICATION_METRICS))
    assert set(out) == set(CLASSIFICATION_METRICS)
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert out["roc_auc"] > 0.9


def test_regression_known_values():
    y = pd.Series([1.0, 2.0, 3.0, 4.0])
    out = score(_Fixed(np.array([1.0, 2.0, 3.0, 6.0])), None, y, list(REGRESSION_METRICS))
    assert out["mae"] == pytest.approx(0.5)
    assert out["rmse"] == pytest.approx(1.0)
    assert out["r2"] == pytest.approx(1 - 4 / 5)


def test_regression_on_sklearn_model():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = pd.Series([1.0, 3.0, 5.0, 7.0])
    out = score(LinearRegression().fit(X, y), X, y, ["rmse", "r2"])
    assert out["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert math.isclose(out["r2"], 1.0)


@pytest.mark.parametrize(
    ("y", "pred", "metrics", "match"),
    [
        ([0.1, 0.7, 2.5], [0.1, 0.7, 2.5], ["accuracy"], "continuous target"),
        ([0, 1, 1], [0.2, 0.9, 0.4], ["f1"], "predicts continuous values"),
        (["a", "b", "a"], ["a", "b", "b"], ["rmse"], "numeric target"),
        ([0, 1, 1], [0, 1, 1], ["accuracy", "rmse"], "mix classification and regression"),
        ([1, 1, 1], [1, 1, 0], ["roc_auc"], "only one"),
        ([0, 1], [0, 1], ["logloss"], "unknown metric 'logloss'"),
    ],
)
def test_metric_that_does_not_fit_is_a_clear_error(y, pred, metrics, match):
    with pytest.raises(ValueError, match=match):
        score(_Fixed(np.array(pred)), None, pd.Series(y), metrics)


def test_dataframe_predictions_of_a_pyfunc_model():
    out = score(_Fixed(pd.DataFrame({"prediction": [1, 0]})), None, pd.Series([1, 1]), ["accuracy"])
    assert out["accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 output columns"):
        score(_Fixed(pd.DataFrame({"a": [1, 0], "b": [0, 1]})), None, pd.Series([1, 1]), ["accuracy"])


def test_split_labelled_returns_features_and_labels():
    df = pd.DataFrame({"x": [1, 2], "label": [0, 1]})
    X, y = split_labelled(df, "label", "data d.csv")
    assert list(X.columns) == ["x"] and y.tolist() == [0, 1]


def test_split_labelled_names_the_data_and_the_missing_target():
    df = pd.DataFrame({"x": [1, 2]})
    with pytest.raises(
        ValueError, match=r"^eval_data s3://b/e.parquet has no target column 'label'; columns: \['x'\]"
    ):
        split_labelled(df, "label", "eval_data s3://b/e.parquet")


def test_split_labelled_refuses_missing_labels():
    df = pd.DataFrame({"x": [1, 2, 3], "label": [0, None, None]})
    with pytest.raises(ValueError, match=r"^data d.csv: target column 'label' has 2 missing values"):
        split_labelled(df, "label", "data d.csv")


def test_align_features_keeps_the_models_columns_in_its_order():
    model = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]}), [0, 1])
    X = pd.DataFrame({"b": [1.0], "extra": [9], "a": [0.0]})
    assert list(align_features(model, X, "data d.csv").columns) == ["a", "b"]


def test_align_features_names_the_columns_the_data_lacks():
    model = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]}), [0, 1])
    with pytest.raises(ValueError, match=r"data d.csv lacks columns \['b'\] that churn v3 was trained on"):
        align_features(model, pd.DataFrame({"a": [1.0]}), "data d.csv", model_label="churn v3")


def test_align_features_leaves_a_model_without_feature_names_alone():
    X = pd.DataFrame({"a": [1.0]})
    assert align_features(_Fixed([0]), X, "data d.csv") is X


@pytest.mark.parametrize(
    ("metric", "value", "match"),
    [
        ("accuracy", math.nan, "min_value must be a finite number"),
        ("f1", 1.01, "min_value must be between 0 and 1"),
        ("mae", -1, "min_value must be 0 or more"),
        ("r2", 2, "min_value must be 1 or less"),
        ("rmse", "x", "min_value must be a number"),
    ],
)
def test_check_bound_names_the_setting(metric, value, match):
    with pytest.raises(ValueError, match=match):
        check_bound(metric, value, "min_value")


@pytest.mark.parametrize(("metric", "value"), [("accuracy", 0), ("accuracy", 1), ("r2", -3.5), ("rmse", 1e6)])
def test_check_bound_accepts_what_the_metric_can_take(metric, value):
    assert check_bound(metric, value, "min_value") == float(value)
