"""The scoring shared by EvaluateModelOperator and ModelPerformanceSensor: real data and metrics,
with the MLflow hook (the far side: the registry) an autospec mock handing out in-memory models."""

from __future__ import annotations

import logging
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from airflow_mlops.exceptions import DataInputError
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.scoring import labelled_data, score_version

WHAT = "eval_data /data/eval.parquet"


class _Fixed:
    """A pyfunc-like model: predict only (no predict_proba), fixed predictions."""

    def __init__(self, pred):
        self.pred = np.asarray(pred)

    def predict(self, X):
        return self.pred


class _Broken:
    def predict(self, X):
        raise RuntimeError("schema mismatch: column 'plan' is required")


def _hook(model) -> MlflowHook:
    hook = mock.create_autospec(MlflowHook, instance=True)
    hook.load_model.return_value = model
    return hook


@pytest.fixture
def binary():
    X = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9, 0.1, 0.8], "b": [1.0, 0.0, 0.9, 0.2, 0.7, 0.1]})
    y = pd.Series([0, 1, 0, 1, 0, 1])
    return X, y


@pytest.fixture
def three_classes():
    X = pd.DataFrame({"a": range(6)})
    y = pd.Series([0, 1, 2, 0, 1, 2])
    return X, y


def test_every_metric_wanted_is_scored_in_order(binary):
    X, y = binary
    hook = _hook(LogisticRegression().fit(X, y))
    out = score_version(hook, "churn", "7", X, y, ["roc_auc", "accuracy"], required=["accuracy"], what=WHAT)
    assert list(out) == ["roc_auc", "accuracy"]
    assert out == {"roc_auc": 1.0, "accuracy": 1.0}
    hook.load_model.assert_called_once_with("churn", "7")


def test_an_optional_metric_that_does_not_fit_the_model_is_left_out_and_logged(three_classes, caplog):
    X, y = three_classes
    hook = _hook(_Fixed([0, 1, 2, 0, 1, 1]))  # no predict_proba: no roc_auc for three classes
    with caplog.at_level(logging.INFO, logger="test.scoring"):
        out = score_version(
            hook,
            "churn",
            "7",
            X,
            y,
            ["accuracy", "roc_auc", "f1"],
            required=["accuracy"],
            what=WHAT,
            log=logging.getLogger("test.scoring"),
        )
    assert set(out) == {"accuracy", "f1"}
    assert "churn v7: roc_auc not computed (roc_auc for more than two classes needs" in caplog.text


def test_a_required_metric_that_does_not_fit_fails_naming_the_data(three_classes):
    X, y = three_classes
    hook = _hook(_Fixed([0, 1, 2, 0, 1, 1]))
    with pytest.raises(DataInputError, match=f"cannot score churn v7 on {WHAT}: roc_auc for more than two"):
        score_version(hook, "churn", "7", X, y, ["accuracy", "roc_auc"], required=["roc_auc"], what=WHAT)


def test_a_model_that_fails_to_predict_fails_naming_the_model_and_the_data(binary):
    X, y = binary
    with pytest.raises(
        DataInputError, match=f"churn@champion \\(v3\\) fails to predict on {WHAT}: RuntimeError"
    ):
        score_version(
            _hook(_Broken()),
            "churn",
            "3",
            X,
            y,
            ["accuracy"],
            required=["accuracy"],
            what=WHAT,
            model_label="churn@champion (v3)",
        )


def test_data_without_the_models_feature_columns_fails_naming_them(binary):
    X, y = binary
    model = LogisticRegression().fit(X, y)
    with pytest.raises(DataInputError, match=f"{WHAT} lacks columns \\['b'\\] that churn v7 was trained on"):
        score_version(_hook(model), "churn", "7", X[["a"]], y, ["accuracy"], required=["accuracy"], what=WHAT)


def test_labelled_data_reads_and_splits_a_file(tmp_path):
    path = tmp_path / "eval.csv"
    pd.DataFrame({"x": [1, 2, 3], "label": [0, 1, 1]}).to_csv(path, index=False)
    X, y = labelled_data(str(path), target="label", setting="eval_data")
    assert list(X.columns) == ["x"] and y.tolist() == [0, 1, 1]


def test_labelled_data_without_the_target_fails_naming_the_setting_and_the_file(tmp_path):
    path = tmp_path / "unlabelled.csv"
    pd.DataFrame({"x": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(DataInputError, match=f"^data {path} has no target column 'label'"):
        labelled_data(str(path), target="label", setting="data")


def test_labelled_data_that_cannot_be_read_fails_naming_the_setting(tmp_path):
    with pytest.raises(DataInputError, match="^eval_data: "):
        labelled_data(str(tmp_path / "missing.parquet"), target="label", setting="eval_data")
