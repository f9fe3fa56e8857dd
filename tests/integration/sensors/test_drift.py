"""DataDriftSensor wired into real Airflow, on real parquet/CSV files, with a real MLflow server.

One DAG run (it costs seconds) and one test per thing that only real parts show: the task states
``soft_fail`` gives in a real run, the XCom and link rows, the report logged to MLflow, a
``models:/`` reference resolved in a real registry, and the Asset event that queues a retraining
DAG. The sensor's branching is unit-tested in ``tests/unit/sensors/test_drift.py``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import tags
from airflow_mlops.plugins.routes import report_path
from tests.helpers.fixtures import DagRunner, DagRunResult

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
                    current=D + "/shifted.csv", report=False, **common)
    DataDriftSensor(task_id="no_lineage", reference="models:/{model}/2", current=D + "/same.parquet",
                    report=False, **common)
"""


@pytest.fixture(scope="module")
def run(airflow_home, mlflow_server, tmp_path_factory) -> tuple[DagRunResult, str, Path]:
    """The sensor DAG, run once: (result, model name, data folder)."""
    model_name = f"test-model-{uuid.uuid4().hex[:8]}"
    data = tmp_path_factory.mktemp("drift-data")
    _frame(3000, 1).to_parquet(data / "reference.parquet", index=False)
    _frame(2000, 2, shift=12.0, skew=True).to_csv(data / "shifted.csv", index=False)
    _frame(2000, 3).to_parquet(data / "same.parquet", index=False)

    client = mlflow_server.client()
    client.create_registered_model(model_name)
    mlflow_run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    v1 = client.create_model_version(
        model_name,
        source=f"{mlflow_run.info.artifact_uri}/m",
        run_id=mlflow_run.info.run_id,
        tags={tags.TRAIN_DATA_URI: str(data / "reference.parquet")},
    )
    client.create_model_version(
        model_name, source=f"{mlflow_run.info.artifact_uri}/m2", run_id=mlflow_run.info.run_id
    )
    client.set_registered_model_alias(model_name, "champion", v1.version)

    suffix = model_name.rsplit("-", 1)[-1]
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / f"drift_consumer_{suffix}.py").write_text(CONSUMER_DAG.format(suffix=suffix, model=model_name))
    result = DagRunner(dags).run(SENSOR_DAG.format(data=data, suffix=suffix, model=model_name))
    return result, model_name, data


def test_drift_succeeds(run):
    result, model_name, _ = run
    assert result.task_states["drifted"] == "success"
    summary = result.xcom("drifted")
    assert summary["drift_detected"] is True and sorted(summary["drifted_columns"]) == ["amount", "colour"]
    assert summary["current"].endswith("shifted.csv")  # the templated window, rendered
    assert summary["asset_uri"] == f"x-mlops://drift/{model_name}"


def test_quiet_window_ends_skipped_with_its_summary_recorded(run):
    result, _, _ = run
    assert result.task_states["stable"] == "skipped"
    stable = result.xcom("stable", key=tags.XCOM_DRIFT_SUMMARY)
    assert stable["drift_detected"] is False and stable["drifted_columns"] == []
    assert result.xcom("stable") is None


def test_bad_input_fails_despite_soft_fail(run):
    result, _, _ = run
    assert result.task_states["no_lineage"] == "failed"  # version 2 has no lineage tag


def test_models_reference_resolves_in_the_registry(run):
    result, model_name, data = run
    assert result.task_states["from_champion"] == "success"
    champion = result.xcom("from_champion")
    assert champion["reference"] == str(data / "reference.parquet")
    assert champion["reference_model"] == f"{model_name}@champion (v1)"


def test_report_is_linked_and_logged_to_mlflow(run, mlflow_server):
    result, _, _ = run
    summary = result.xcom("drifted")
    report = Path(summary["report_uri"][len("file://") :])
    assert report.is_file() and report.parent.name == "drifted"
    assert "1,500 of 3,000 reference rows" in report.read_text()
    # the task stores the report's URI; its Report link is the UI plugin's page of the task instance
    assert result.xcom("drifted", key=tags.XCOM_REPORT_URI) == summary["report_uri"]
    assert result.xcom("drifted", key="_link_MlopsReportLink") == report_path(
        result.dag_id, result.run_id, "drifted"
    )

    client = mlflow_server.client()
    mlflow_run = client.get_run(summary["mlflow_run_id"])
    assert mlflow_run.data.metrics["drift_share"] == 0.5
    assert mlflow_run.data.metrics["drift_score.amount"] == pytest.approx(
        summary["per_column"]["amount"]["score"]
    )
    assert mlflow_run.data.tags[tags.DRIFT_ASSET] == summary["asset_uri"]
    artifacts = {a.path for a in client.list_artifacts(summary["mlflow_run_id"], "drift")}
    assert artifacts == {"drift/drift_report.html", "drift/summary.json"}
    assert result.xcom("drifted", key="_link_MlflowRunLink").endswith(summary["mlflow_run_id"])


def test_drift_event_is_recorded_and_queues_the_retraining_dag(run):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    result, model_name, _ = run
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == f"x-mlops://drift/{model_name}"))
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        queued = session.scalars(
            select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id)
        ).all()
    # "drifted" and "from_champion" emitted; the skipped and the failed task did not
    assert sorted(e.extra["task_id"] for e in events) == ["drifted", "from_champion"]
    drifted = next(e.extra for e in events if e.extra["task_id"] == "drifted")
    assert json.loads(json.dumps(drifted["per_column"])) == result.xcom("drifted")["per_column"]
    assert queued == [f"drift_consumer_{model_name.rsplit('-', 1)[-1]}"]
