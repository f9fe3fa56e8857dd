"""DataQualityGateOperator in real Airflow (``dag.test()``) on real files, with a real MLflow server:
the wiring (template rendering, the suite found beside the DAG file, the default report folder,
XComs and links pushed before a failure, the MLflow run, a bad input failing the task).

One DAG holds every case as an independent task, so a single DAG run (and a single import of
great_expectations) covers them all. The gate's branches (severities, fail_on, each bad input) are
unit-tested in tests/unit/operators/test_quality.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from airflow_mlops.core import tags
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.plugins.routes import report_path

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CHURN_SUITE = REPO / "include" / "expectations" / "churn.json"
CHURN_SCHEMA_YAML = REPO / "include" / "expectations" / "churn_schema.yaml"


def churn_frame(n: int = 400, seed: int = 7):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, n),
            "monthly_charges": rng.normal(60, 20, n).round(2),
            "data_usage_gb": rng.gamma(2.0, 60.0, n).round(1),
            "support_calls": rng.poisson(1.2, n),
            "late_payments": rng.poisson(0.4, n),
            "satisfaction": rng.integers(1, 6, n),
            "age": rng.integers(18, 90, n),
            "contract": rng.choice(["month_to_month", "one_year", "two_year"], n),
            "internet_service": rng.choice(["dsl", "fiber", "none"], n),
            "payment_method": rng.choice(
                ["electronic_check", "credit_card", "bank_transfer", "mailed_check"], n
            ),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "label": rng.integers(0, 2, n),
        }
    )


DAG_SOURCE = """
from __future__ import annotations

import pendulum

from airflow.sdk import dag
from airflow_mlops.operators.quality import DataQualityGateOperator

P = {paths!r}


@dag(
    dag_id="test_quality_gate", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
    params={{"fail_on": "warning"}},
)
def gates():
    DataQualityGateOperator(task_id="clean", data=P["clean"], suite=P["suite"])
    # the YAML suite by a path relative to the DAG file's folder
    DataQualityGateOperator(task_id="clean_yaml", data=P["parts"], suite="churn_schema.yaml")
    # fail_on rendered from the DAG's params, checked once rendered
    DataQualityGateOperator(
        task_id="warn_fails", data=P["warn"], suite=P["suite"], fail_on="{{{{ params.fail_on }}}}"
    )
    DataQualityGateOperator(
        task_id="critical_fails", data=P["bad"], suite=P["suite"], report_dir=P["report_dir"],
        mlflow_conn_id="mlflow_default", mlflow_experiment=P["experiment"],
    )
    DataQualityGateOperator(task_id="missing_file", data=P["missing"], suite=P["suite"])


gates()
"""


def write_inputs(tmp: Path) -> dict[str, str]:
    clean = churn_frame()
    clean.to_parquet(tmp / "clean.parquet")
    parts = tmp / "parts"
    parts.mkdir()
    clean.iloc[:200].to_parquet(parts / "part-0.parquet")
    clean.iloc[200:].to_parquet(parts / "part-1.parquet")
    warn = clean.copy()
    warn.loc[:9, "region"] = "atlantis"  # region is a warning-severity expectation in churn.json
    warn.to_csv(tmp / "warn.csv", index=False)
    bad = clean.copy()
    bad["age"] = bad["age"].astype("int64")
    bad.loc[0, "age"] = -1
    bad.loc[1, "age"] = 999
    bad.loc[2, "age"] = 150
    bad.loc[3:5, "label"] = None
    bad.to_parquet(tmp / "bad.parquet")
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    shutil.copy(CHURN_SCHEMA_YAML, dags_folder / "churn_schema.yaml")
    return {
        "clean": str(tmp / "clean.parquet"),
        "parts": str(parts),
        "warn": str(tmp / "warn.csv"),
        "bad": str(tmp / "bad.parquet"),
        "missing": str(tmp / "nope.parquet"),
        "suite": str(CHURN_SUITE),
        "report_dir": str(tmp / "reports" / "critical"),
        "experiment": "data-quality-test",
    }


def test_quality_gate_dag(dag_runner, mlflow_server, tmp_path, capfd):
    """Every case in one DAG run; each check below reads that run's XComs, files and output."""
    paths = write_inputs(tmp_path)
    result = dag_runner.run(DAG_SOURCE.format(paths=paths))
    output = "".join(capfd.readouterr())

    assert result.task_states == {
        "clean": "success",
        "clean_yaml": "success",
        "warn_fails": "failed",
        "critical_fails": "failed",
        "missing_file": "failed",
    }
    check_clean_data_passes(result, paths)
    check_templated_fail_on(result, output)
    check_critical_failure(result, paths, output, mlflow_server)
    check_bad_input(result, paths, output)


def check_clean_data_passes(result, paths):
    summary = result.xcom("clean")
    assert summary["success"] is True
    assert summary["failed"] == []
    assert summary["evaluated"] == 20
    assert summary["statistics"]["row_count"] == 400
    assert summary["statistics"]["success_percent"] == 100.0
    assert summary["data"] == paths["clean"]
    assert summary["mlflow_run_id"] is None
    html = Path(summary["report_uri"].removeprefix("file://"))
    # default report folder: $AIRFLOW_HOME/reports/quality/<dag_id>/<run_id>/<task_id>/
    home = Path(os.environ["AIRFLOW_HOME"]).resolve()
    assert html.parent.parent.parent == home / "reports" / "quality" / "test_quality_gate"
    assert html.parent.name == "clean"
    assert "PASSED" in html.read_text()
    full = json.loads(Path(summary["result_uri"].removeprefix("file://")).read_text())
    assert full["success"] is True and len(full["results"]) == 20
    # the task stores the report's URI; its Report link is the UI plugin's page of the task instance
    assert result.xcom("clean", key=tags.XCOM_REPORT_URI) == summary["report_uri"]
    assert result.xcom("clean", key=MlopsReportLink().xcom_key) == report_path(
        result.dag_id, result.run_id, "clean"
    )
    # a folder of parquet parts, checked with the YAML suite found beside the DAG file
    yaml_summary = result.xcom("clean_yaml")
    assert yaml_summary["success"] is True and yaml_summary["evaluated"] == 6
    assert yaml_summary["statistics"]["row_count"] == 400
    assert yaml_summary["suite"] == os.path.join(
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "churn_schema.yaml"
    )


def check_templated_fail_on(result, output):
    failed = result.xcom("warn_fails")  # pushed before DataQualityGateFailed was raised
    assert failed is not None and failed["success"] is False
    assert failed["fail_on"] == "warning"
    assert [f["blocking"] for f in failed["failed"]] == [True]
    assert (
        "[warning] column 'region': 10 of 400 values (2.5%) not in ['north', 'south', 'east', 'west']; "
        "unexpected sample: ['atlantis']"
    ) in output
    assert "DataQualityGateFailed" in output


def check_critical_failure(result, paths, output, mlflow_server):
    summary = result.xcom("critical_fails")
    assert summary is not None and summary["success"] is False
    [age] = [f for f in summary["failed"] if f["column"] == "age"]
    assert age["expectation"] == "expect_column_values_to_be_between"
    assert age["severity"] == "critical" and age["blocking"] is True
    assert age["observed"]["unexpected_count"] == 3
    assert sorted(age["observed"]["sample"]) == [-1, 150, 999]
    assert age["message"].startswith(
        "column 'age': 3 of 400 values (0.75%) outside [18, 120]; unexpected sample: ["
    )
    [label_null] = [f for f in summary["failed"] if f["expectation"] == "expect_column_values_to_not_be_null"]
    assert label_null["message"] == "column 'label': 3 of 400 values (0.75%) are null"
    assert "Data quality gate FAILED for " + paths["bad"] in output
    assert "column 'age': 3 of 400 values (0.75%) outside [18, 120]; unexpected sample:" in output

    # the report lands in report_dir and names the failed expectations
    assert summary["report_uri"] == "file://" + str(Path(paths["report_dir"]) / "validation.html")
    page = Path(paths["report_dir"], "validation.html").read_text()
    assert "FAILED" in page
    assert "expect_column_values_to_be_between" in page
    assert "3 of 400 values (0.75%) outside [18, 120]" in page
    assert json.loads(Path(paths["report_dir"], "validation.json").read_text())["success"] is False

    # ... and in MLflow, as artefacts of a run tagged with the task
    client = mlflow_server.client()
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.quality.success"] == "false"
    assert run.data.tags["mlops.airflow.task_id"] == "critical_fails"
    assert run.data.metrics["failed_critical"] == len(
        [f for f in summary["failed"] if f["severity"] == "critical"]
    )
    names = {a.path for a in client.list_artifacts(run.info.run_id, "quality")}
    assert names == {"quality/validation.html", "quality/validation.json"}
    local = client.download_artifacts(run.info.run_id, "quality/validation.html")
    assert "outside [18, 120]" in Path(local).read_text()
    assert client.get_experiment(run.info.experiment_id).name == paths["experiment"]
    run_link = result.xcom("critical_fails", key=MlflowRunLink().xcom_key)
    assert run_link.endswith(f"/runs/{run.info.run_id}")


def check_bad_input(result, paths, output):
    """Bad input fails the task with DataInputError and is never reported as a verdict on the data."""
    assert f"quality gate data: data not found: {paths['missing']}" in output
    assert "DataInputError" in output
    assert result.xcom("missing_file") is None
