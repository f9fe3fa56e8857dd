"""S8, S9, S10: no secret reaches what users read, and reports stay in their run's folder.

The worker holds cloud credentials and tokens in its environment and the MLflow connection has a
password. A training run on the worker, whose script prints its whole environment (as many
scripts do when debugging), must leave none of them in the task log, XCom, rendered fields, the
MLflow run (params, tags, artefacts) or the registered version's tags: the job's environment is
an allow-list, and the connection's credentials live only inside the hook's calls.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.security.conftest import ENTRYPOINT

pytestmark = pytest.mark.integration

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIART42EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-RT42",
    "AWS_SESSION_TOKEN": "aws-session-RT42",
    "AZURE_CLIENT_SECRET": "azure-secret-RT42",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/gcp-key-RT42.json",
    "DATABRICKS_TOKEN": "dapi-RT42",
    "VAULT_TOKEN": "hvs.vault-RT42",
    "AIRFLOW_CONN_WAREHOUSE": "postgres://etl:pg-pass-RT42@db/warehouse",
}
MLFLOW_PASSWORD = "mlflow-pass-RT42"

SNOOP = """
import os, runpy, sys
print("job environment:", sorted(os.environ.items()), flush=True)
sys.argv[0] = {entrypoint!r}
runpy.run_path({entrypoint!r}, run_name="__main__")
"""


def _leaks(text: str) -> list[str]:
    return [s for s in [*SECRETS.values(), MLFLOW_PASSWORD] if s in text]


def _airflow_records(dag_id: str, run_id: str) -> str:
    """XCom values and rendered template fields of the run, as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields).where(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ).all()
        values = [XComModel.deserialize_value(x) for x in xcoms] + [r.rendered_fields for r in rendered]
    assert xcoms and rendered
    return json.dumps(values, default=str)


def _mlflow_records(client, model_name: str, tmp_path: Path) -> SimpleNamespace:
    (version,) = client.search_model_versions(f"name='{model_name}'")
    run = client.get_run(version.run_id)
    artefacts = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artefacts")))
    files = "\n".join(p.read_text(errors="replace") for p in artefacts.rglob("*") if p.is_file())
    text = json.dumps([run.data.params, run.data.tags, version.tags]) + files
    return SimpleNamespace(text=text, tags=version.tags)


def test_no_secret_reaches_logs_xcom_or_mlflow(
    dag_runner, mlflow_server, model_name, churn_data, tmp_path, monkeypatch, capfd
):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT",
        json.dumps(
            {"conn_type": "mlflow", "host": mlflow_server.uri, "login": "ml", "password": MLFLOW_PASSWORD}
        ),
    )
    snoop = tmp_path / "code" / "snoop_train.py"
    snoop.parent.mkdir()
    snoop.write_text(SNOOP.format(entrypoint=str(ENTRYPOINT)))
    run = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import dag
        from airflow_mlops.operators.training import TrainModelOperator

        @dag(dag_id="t_secrets", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        def secrets():
            TrainModelOperator(
                task_id="train", entrypoint={str(snoop)!r}, train_data={churn_data.train!r},
                validation_data={churn_data.eval!r}, registered_model_name={model_name!r},
                hyperparameters={{"target": "label", "n_estimators": 10, "seed": 1}},
                backend_config={{"env": {{"JOB_FLAG": "on"}}}},
            )

        secrets()
        """
    )
    logs = "".join(capfd.readouterr())
    assert run.task_states == {"train": "success"}, logs[-3000:]
    assert "job environment:" in logs and "('JOB_FLAG', 'on')" in logs  # the script did print it
    assert _leaks(logs) == []
    assert _leaks(_airflow_records(run.dag_id, run.run_id)) == []
    mlflow = _mlflow_records(mlflow_server.client(), model_name, tmp_path)
    assert _leaks(mlflow.text) == []
    assert mlflow.tags["mlops.airflow.run_id"] == run.run_id  # what was scanned is this run's


@pytest.mark.parametrize("run_id", ["..", ".", "../../x", "a/../../b", "manual__2024-01-01T00:00:00+00:00"])
def test_report_folders_are_built_from_sanitised_ids(run_id, tmp_path, monkeypatch):
    from airflow_mlops.io import default_report_dir

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    ti = SimpleNamespace(
        dag_id="mlops_continuous_training", run_id=run_id, task_id="validate_train_data", map_index=-1
    )
    folder = default_report_dir("quality", {"ti": ti})
    run_folder = tmp_path / "reports" / "quality" / "mlops_continuous_training"
    assert os.path.realpath(folder).startswith(str(run_folder) + os.sep)
    assert Path(folder).parent.parent == run_folder and Path(folder).name == "validate_train_data"
