"""DataDriftSensor in real Airflow on real parquet/CSV files, with a real MLflow server.

One DAG run covers the verdicts (drift, no drift, bad input, a models:/ reference), the report,
the MLflow logging and the Asset event that queues a retraining DAG.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import tags
from airflow_mlops.plugins.routes import report_path

pytestmark = pytest.mark.integration


def _frame(rows: int, seed: int, *, shift: float = 0.0, skew: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue", "black"], dtype=object)
    p = [0.1, 0.2, 0.3, 0.4] if skew else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame(
        {
            "amount": rng.normal(100.0 + shift, 15.0, rows),
            "age": rng.integers(18, 90, rows),
            "colour": colours[rng.choice(4, rows, p=p)],
            "steady": rng.normal(0.0, 1.0, rows),
        }
    )


CONSUMER_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow_mlops.assets import drift_asset_uri
from airflow.sdk import Asset

with DAG(dag_id="drift_consumer_{suffix}", schedule=[Asset(drift_asset_uri("{model}"))],
         start_date=pendulum.datetime(2024, 1, 1), catchup=False, is_paused_upon_creation=False):
    EmptyOperator(task_id="retrain")
"""

SENSOR_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.sensors.drift import DataDriftSensor

D = "{data}"
common = dict(mode="poke", poke_interval=1, timeout=0, soft_fail=True, report_sample_size=1500)
with DAG(dag_id="drift_sensor_{suffix}", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
         catchup=False):
    DataDriftSensor(task_id="drifted", reference=D + "/reference.parquet", current=D + "/{{{{ params.window }}}}",
                    model_name="{model}", mlflow_conn_id="mlflow_default", params={{"window": "shifted.csv"}},
                    **common)
    DataDriftSensor(task_id="stable", reference=D + "/reference.parquet", current=D + "/same.parquet",
                    model_name="{model}", report=False, **common)
    DataDriftSensor(task_id="from_champion", reference="models:/{model}@champion",
                    current=D + "/shifted.csv", report=False, columns=["amount", "steady"],
                    per_column_threshold={{"steady": 0.5}}, **common)
    DataDriftSensor(task_id="other_columns", reference=D + "/reference.parquet",
                    current=D + "/renamed.parquet", model_name="{model}", report=False, **common)
    DataDriftSensor(task_id="no_lineage", reference="models:/{model}/2", current=D + "/same.parquet",
                    report=False, **common)
"""


def test_drift_sensor_in_airflow(dag_runner, mlflow_server, model_name, tmp_path, capfd):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    data = tmp_path / "data"
    data.mkdir()
    reference = _frame(3000, 1)
    reference.to_parquet(data / "reference.parquet", index=False)
    _frame(2000, 2, shift=12.0, skew=True).to_csv(data / "shifted.csv", index=False)
    _frame(2000, 3).to_parquet(data / "same.parquet", index=False)
    _frame(500, 4).rename(columns={"colour": "color"}).to_parquet(data / "renamed.parquet", index=False)

    client = mlflow_server.client()
    client.create_registered_model(model_name)
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    v1 = client.create_model_version(
        model_name,
        source=f"{run.info.artifact_uri}/m",
        run_id=run.info.run_id,
        tags={tags.TRAIN_DATA_URI: str(data / "reference.parquet")},
    )
    client.create_model_version(model_name, source=f"{run.info.artifact_uri}/m2", run_id=run.info.run_id)
    client.set_registered_model_alias(model_name, "champion", v1.version)

    suffix = model_name.rsplit("-", 1)[-1]
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / f"drift_consumer_{suffix}.py").write_text(CONSUMER_DAG.format(suffix=suffix, model=model_name))

    result = dag_runner.run(SENSOR_DAG.format(data=data, suffix=suffix, model=model_name))

    assert result.task_states == {
        "drifted": "success",
        "stable": "skipped",
        "from_champion": "success",
        "other_columns": "failed",
        "no_lineage": "failed",
    }

    # a shifted numeric column and a shifted category are detected, the steady column is not
    summary = result.xcom("drifted")
    assert summary["drift_detected"] is True
    assert sorted(summary["drifted_columns"]) == ["amount", "colour"]
    per_column = summary["per_column"]
    assert per_column["amount"]["method"] == "wasserstein" and per_column["amount"]["drifted"] is True
    assert per_column["colour"]["method"] == "jensenshannon" and per_column["colour"]["drifted"] is True
    assert per_column["steady"]["drifted"] is False and per_column["age"]["drifted"] is False
    assert summary["drift_share"] == 0.5 and summary["current"].endswith("shifted.csv")
    assert summary["asset_uri"] == f"x-mlops://drift/{model_name}"

    # the report: Evidently's HTML on a stated sample, linked, and logged to MLflow
    assert summary["report_uri"].startswith("file:///")
    report = Path(summary["report_uri"][len("file://") :])
    assert report.is_file() and report.parent.name == "drifted"
    page = report.read_text()
    assert "seeded random sample" in page and "1,500 of 3,000 reference rows" in page
    assert "drift DETECTED" in page
    assert result.xcom("drifted", key=tags.XCOM_REPORT_URI) == f"file://{report}"
    assert result.xcom("drifted", key="_link_MlopsReportLink") == report_path(
        result.dag_id, result.run_id, "drifted"
    )
    mlflow_run = client.get_run(summary["mlflow_run_id"])
    assert mlflow_run.data.metrics["drift_share"] == 0.5
    assert mlflow_run.data.metrics["drift_score.amount"] == pytest.approx(per_column["amount"]["score"])
    artifacts = {a.path for a in client.list_artifacts(summary["mlflow_run_id"], "drift")}
    assert artifacts == {"drift/drift_report.html", "drift/summary.json"}

    # identical distributions: no drift, the window ends skipped, the verdict is still recorded
    stable = result.xcom("stable", key="drift_summary")
    assert stable["drift_detected"] is False and stable["drifted_columns"] == []
    assert result.xcom("stable") is None

    # models:/<name>@champion reads the training data from the version's lineage tag
    champion = result.xcom("from_champion")
    assert champion["reference"] == str(data / "reference.parquet")
    assert champion["reference_model"] == f"{model_name}@champion (v1)"
    assert set(champion["per_column"]) == {"amount", "steady"}
    assert champion["per_column"]["steady"]["threshold"] == 0.5

    # bad input fails even with soft_fail, and says why
    out = capfd.readouterr().out
    assert "only in reference: ['colour']; only in current: ['color']" in out
    assert f"has no lineage tag {tags.TRAIN_DATA_URI}" in out

    # the drift event carries the summary and queued the DAG scheduled on the asset
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == f"x-mlops://drift/{model_name}"))
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
    assert len(events) == 2  # "drifted" and "from_champion"; the skipped "stable" emitted nothing
    extras = {e.extra["task_id"]: e.extra for e in events}
    assert extras["drifted"]["drifted_columns"] == summary["drifted_columns"]
    assert json.loads(json.dumps(extras["drifted"]["per_column"])) == per_column
    assert queued == [f"drift_consumer_{suffix}"]
