"""ModelPerformanceSensor's branching, with the MLflow hook, the scoring helper and the asset event
patched where the sensor uses them (autospec). The verdict's arithmetic is
``core.performance``'s (tested there); the real thing runs in
tests/integration/sensors/test_performance.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from airflow.sdk import Asset

from airflow_mlops.core import tags
from airflow_mlops.exceptions import DataInputError, RegistryError
from airflow_mlops.sensors.performance import ModelPerformanceSensor

DATA = "/data/windows/2025-03-10.parquet"
ASSET = "x-mlops://performance/churn"
EVALUATED = {tags.EVAL_METRICS: json.dumps({"accuracy": 0.93, "f1": 0.9})}


@pytest.fixture
def hook():
    with mock.patch("airflow_mlops.sensors.performance.MlflowHook", autospec=True) as cls:
        instance = cls.return_value
        instance.model_version_url.return_value = "http://mlflow.example/#/models/churn/versions/3"
        instance.registry_uri = "http://mlflow.example"
        instance.get_model_version.return_value = SimpleNamespace(version="3", tags=dict(EVALUATED))
        yield instance


@pytest.fixture
def data():
    with mock.patch(
        "airflow_mlops.sensors.performance.labelled_data", autospec=True, return_value=("X", [0] * 800)
    ) as patched:
        yield patched


@pytest.fixture
def scored():
    """Set ``scored.return_value = {"accuracy": value}``: what the model scores today."""
    with mock.patch("airflow_mlops.sensors.performance.score_version", autospec=True) as patched:
        yield patched


@pytest.fixture
def emit():
    with mock.patch("airflow_mlops.sensors.performance.emit", autospec=True) as patched:
        yield patched


def _sensor(**kwargs) -> ModelPerformanceSensor:
    args = dict(
        task_id="model_performance",
        model_uri="models:/churn@champion",
        data=DATA,
        target="label",
        metric="accuracy",
        max_drop=0.1,
        mode="poke",
        timeout=0,
        soft_fail=True,
    )
    args.update(kwargs)
    return ModelPerformanceSensor(**args)


def _context() -> dict:
    ti = mock.MagicMock(
        dag_id="mlops_drift_monitor", run_id="scheduled__2025-03-10", task_id="model_performance"
    )
    return {"ti": ti, "dag_run": SimpleNamespace(triggering_user_name=None)}


def _pushed(context) -> dict:
    return {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}


def test_a_degraded_model_ends_the_wait_and_emits_the_performance_event(hook, data, scored, emit):
    scored.return_value = {"accuracy": 0.74}
    sensor = _sensor()
    context = _context()
    result = sensor.poke(context)
    assert result.is_done is True
    summary = result.xcom_value
    assert summary["degraded"] is True and summary["value"] == 0.74 and summary["baseline"] == 0.93
    assert summary["asset_uri"] == ASSET and summary["rows"] == 800
    emit.assert_called_once()
    (ctx, outlet, uri, extra) = emit.call_args.args
    assert (ctx, outlet, uri) == (context, Asset(ASSET), ASSET)
    assert extra == {**summary, "dag_id": "mlops_drift_monitor", "run_id": "scheduled__2025-03-10",
                     "task_id": "model_performance", "user": None}  # fmt: skip


def test_a_stable_model_keeps_waiting_without_an_event(hook, data, scored, emit):
    scored.return_value = {"accuracy": 0.9}
    context = _context()
    result = _sensor().poke(context)
    assert result.is_done is False
    assert result.xcom_value["degraded"] is False
    assert _pushed(context)[tags.XCOM_PERFORMANCE_SUMMARY] == result.xcom_value
    emit.assert_not_called()


def test_without_a_baseline_min_value_alone_decides(hook, data, scored, emit):
    hook.get_model_version.return_value = SimpleNamespace(version="3", tags={})
    scored.return_value = {"accuracy": 0.8}
    summary = _sensor(min_value=0.85).poke(_context()).xcom_value
    assert summary["baseline"] is None and summary["baseline_source"] is None
    assert summary["degraded"] is True
    assert summary["reasons"] == ["accuracy 0.8 is worse than the floor min_value 0.85"]


def test_without_a_baseline_or_min_value_the_task_fails_even_with_soft_fail(hook, data, scored, emit):
    hook.get_model_version.return_value = SimpleNamespace(version="3", tags={})
    scored.return_value = {"accuracy": 0.8}
    with pytest.raises(DataInputError, match=r"churn@champion \(v3\): accuracy: nothing to check"):
        _sensor(soft_fail=True).execute(_context())


def test_the_training_metrics_are_the_baseline_when_the_version_was_never_evaluated(hook, data, scored, emit):
    hook.get_model_version.return_value = SimpleNamespace(
        version="3", tags={tags.METRICS: json.dumps({"accuracy": 0.95})}
    )
    scored.return_value = {"accuracy": 0.9}
    summary = _sensor().poke(_context()).xcom_value
    assert (summary["baseline"], summary["baseline_source"]) == (0.95, f"training (tag {tags.METRICS})")


def test_a_baseline_tag_that_is_not_json_is_ignored(hook, data, scored, emit):
    hook.get_model_version.return_value = SimpleNamespace(
        version="3", tags={tags.EVAL_METRICS: "{broken", tags.METRICS: json.dumps({"accuracy": 0.95})}
    )
    scored.return_value = {"accuracy": 0.9}
    assert _sensor().poke(_context()).xcom_value["baseline"] == 0.95


def test_an_unknown_alias_fails_even_with_soft_fail(hook, data, scored, emit):
    hook.get_model_version.return_value = None
    with pytest.raises(DataInputError, match="models:/churn: no version of churn holds @staging"):
        _sensor(model_uri="models:/churn@staging", soft_fail=True).execute(_context())
    data.assert_not_called()


def test_a_registry_refusal_is_bad_input(hook, data, scored, emit):
    hook.get_model_version.side_effect = RegistryError("looking up churn v99: no such version")
    with pytest.raises(DataInputError, match="models:/churn: looking up churn v99"):
        _sensor(model_uri="models:/churn/99").poke(_context())


def test_a_bare_model_uri_means_the_champion(hook, data, scored, emit):
    scored.return_value = {"accuracy": 0.9}
    summary = _sensor(model_uri="models:/churn").poke(_context()).xcom_value
    hook.get_model_version.assert_called_once_with("churn", alias="champion", version=None, missing_ok=True)
    assert summary["alias"] == "champion"


def test_the_model_is_scored_on_the_metric_with_its_data(hook, data, scored, emit):
    scored.return_value = {"accuracy": 0.9}
    _sensor(data_conn_id="s3_data").poke(_context())
    data.assert_called_once_with(DATA, target="label", setting="data", conn_id="s3_data")
    call = scored.call_args
    assert call.args[1:6] == ("churn", "3", "X", [0] * 800, ["accuracy"])
    assert call.kwargs["required"] == ["accuracy"]
    assert call.kwargs["what"] == f"data {DATA}"
    assert call.kwargs["model_label"] == "churn@champion (v3)"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_value": float("nan")}, "min_value must be a finite number"),
        ({"min_value": 85}, "min_value must be between 0 and 1"),
        ({"metric": "rmse", "min_value": -1.0}, "min_value must be 0 or more"),
        ({"min_value": "0.8"}, "min_value must be a number"),
        ({"max_drop": -0.1}, "max_drop is a relative worsening"),
        ({"max_drop": float("nan")}, "max_drop is a relative worsening"),
        ({"max_drop": float("inf")}, "max_drop is a relative worsening"),
        ({"max_drop": None}, "give min_value, max_drop or both"),
        ({"model_uri": "runs:/abc/model"}, "model_uri must look like models:/"),
    ],
)
def test_bad_arguments_fail_at_parse(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _sensor(**kwargs)
