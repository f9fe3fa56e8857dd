"""ModelPerformanceSensor in real Airflow, scoring real registered models from a real MLflow server."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import tags

pytestmark = pytest.mark.integration


def _frame(n: int, seed: int, *, concept_drift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    # after the drift the label follows another rule: the same inputs, other outcomes
    signal = (x2 - 0.3 * x1) if concept_drift else (2.0 * x1 - 0.5 * x2)
    label = (signal + rng.normal(scale=0.3, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": label})


def _register(name: str, train: pd.DataFrame) -> str:
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(train[["x1", "x2"]], train["label"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["scikit-learn"], registered_model_name=name
        )
    return str(info.registered_model_version)


SENSOR_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.sensors.performance import ModelPerformanceSensor

D = "{data}"
common = dict(mode="poke", poke_interval=1, timeout=0, soft_fail=True, target="label", metric="accuracy")
with DAG(dag_id="performance_sensor_{suffix}", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         catchup=False):
    ModelPerformanceSensor(task_id="stable", model_uri="models:/{model}", data=D + "/stable.parquet",
                           max_drop=0.1, **common)
    ModelPerformanceSensor(task_id="decayed", model_uri="models:/{model}@champion", data=D + "/decayed.csv",
                           max_drop=0.1, **common)
    ModelPerformanceSensor(task_id="no_baseline", model_uri="models:/{model}/2", data=D + "/stable.parquet",
                           min_value=0.99, max_drop=0.1, **common)
    ModelPerformanceSensor(task_id="no_labels", model_uri="models:/{model}", data=D + "/unlabelled.csv",
                           max_drop=0.1, **common)
"""


def test_performance_sensor_in_airflow(dag_runner, mlflow_server, model_name, tmp_path, capfd):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_mlops.hooks.mlflow import MlflowHook

    train = _frame(1000, 1)
    with MlflowHook().session() as client:
        v1 = _register(model_name, train)
        v2 = _register(model_name, train)
        client.set_registered_model_alias(model_name, "champion", v1)
        client.set_model_version_tag(
            model_name, v1, tags.EVAL_METRICS, json.dumps({"accuracy": 0.93, "f1": 0.9})
        )
        client.set_model_version_tag(model_name, v1, tags.METRICS, json.dumps({"accuracy": 0.5}))
    assert (v1, v2) == ("1", "2")

    data = tmp_path / "data"
    data.mkdir()
    _frame(800, 2).to_parquet(data / "stable.parquet", index=False)
    _frame(800, 3, concept_drift=True).to_csv(data / "decayed.csv", index=False)
    _frame(50, 4).drop(columns=["label"]).to_csv(data / "unlabelled.csv", index=False)

    suffix = model_name.rsplit("-", 1)[-1]
    result = dag_runner.run(SENSOR_DAG.format(data=data, suffix=suffix, model=model_name))
    assert result.task_states == {
        "stable": "skipped",
        "decayed": "success",
        "no_baseline": "success",
        "no_labels": "failed",
    }

    # a stable model is not flagged; the baseline is the value recorded at evaluation
    stable = result.xcom("stable", key="performance_summary")
    assert stable["degraded"] is False and stable["model_version"] == "1" and stable["alias"] == "champion"
    assert stable["baseline"] == 0.93 and stable["baseline_source"].startswith("evaluation")
    assert stable["value"] > 0.9
    assert result.xcom("stable") is None

    # decay after a concept drift is detected against the same baseline
    decayed = result.xcom("decayed")
    assert decayed["degraded"] is True and decayed["value"] < 0.8
    assert decayed["relative_change"] == pytest.approx((decayed["value"] - 0.93) / 0.93)
    assert any("worse than the baseline" in r for r in decayed["reasons"])

    # no recorded baseline: only min_value applies, and the log says so
    no_baseline = result.xcom("no_baseline")
    assert no_baseline["baseline"] is None and no_baseline["degraded"] is True
    assert no_baseline["reasons"] == [
        f"accuracy {no_baseline['value']:.6g} is worse than the floor min_value 0.99"
    ]
    out = capfd.readouterr().out
    assert "has no recorded accuracy" in out and "only min_value applies" in out

    # unlabelled data fails even with soft_fail
    assert "has no target column 'label'" in out

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == f"x-mlops://performance/{model_name}")
        ).all()
    assert sorted(e.extra["task_id"] for e in events) == ["decayed", "no_baseline"]
    assert {e.extra["task_id"]: e.extra["value"] for e in events}["decayed"] == decayed["value"]
