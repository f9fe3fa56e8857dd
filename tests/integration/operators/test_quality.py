"""DataQualityGateOperator in real Airflow (``dag.test()``) on real files, with a real MLflow server.

One DAG holds every case as an independent task, so a single DAG run (and a single import of
great_expectations) covers them all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlops.core import tags
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.operators.quality import DataQualityGateOperator
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


@dag(dag_id="test_quality_gate", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def gates():
    DataQualityGateOperator(task_id="clean", data=P["clean"], suite=P["suite"])
    # the YAML suite by a path relative to the DAG file's folder
    DataQualityGateOperator(task_id="clean_yaml", data=P["parts"], suite="churn_schema.yaml")
    DataQualityGateOperator(task_id="warn_passes", data=P["warn"], suite=P["suite"], fail_on="critical")
    DataQualityGateOperator(task_id="warn_fails", data=P["warn"], suite=P["suite"], fail_on="warning")
    DataQualityGateOperator(
        task_id="critical_fails", data=P["bad"], suite=P["suite"], report_dir=P["report_dir"],
        mlflow_conn_id="mlflow_default", mlflow_experiment=P["experiment"],
    )
    DataQualityGateOperator(task_id="missing_file", data=P["missing"], suite=P["suite"])
    DataQualityGateOperator(task_id="corrupt_file", data=P["corrupt"], suite=P["suite"])
    DataQualityGateOperator(task_id="empty_data", data=P["empty"], suite=P["suite"])
    DataQualityGateOperator(
        task_id="missing_column", data=P["clean"],
        suite=[{{"type": "expect_column_values_to_not_be_null", "kwargs": {{"column": "customer_id"}}}}],
    )
    DataQualityGateOperator(
        task_id="unknown_type", data=P["clean"],
        suite=[{{"type": "expect_column_values_to_be_betwen", "kwargs": {{"column": "age", "min_value": 0}}}}],
    )
    DataQualityGateOperator(task_id="broken_suite", data=P["clean"], suite=P["broken_suite"])
    DataQualityGateOperator(
        task_id="info_any", data=P["clean"], fail_on="any",
        suite=[{{"type": "expect_column_mean_to_be_between", "kwargs": {{"column": "age", "min_value": 0,
                 "max_value": 1}}, "severity": "info"}}],
    )


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
    (tmp / "corrupt.parquet").write_bytes(b"PAR1 this is not a parquet file at all")
    clean.iloc[:0].to_parquet(tmp / "empty.parquet")
    (tmp / "broken.json").write_text('{"name": "broken", "expectations": [\n  {"type": "x",\n}')
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    shutil.copy(CHURN_SCHEMA_YAML, dags_folder / "churn_schema.yaml")
    return {
        "clean": str(tmp / "clean.parquet"),
        "parts": str(parts),
        "warn": str(tmp / "warn.csv"),
        "bad": str(tmp / "bad.parquet"),
        "missing": str(tmp / "nope.parquet"),
        "corrupt": str(tmp / "corrupt.parquet"),
        "empty": str(tmp / "empty.parquet"),
        "suite": str(CHURN_SUITE),
        "broken_suite": str(tmp / "broken.json"),
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
        "warn_passes": "success",
        "warn_fails": "failed",
        "critical_fails": "failed",
        "missing_file": "failed",
        "corrupt_file": "failed",
        "empty_data": "failed",
        "missing_column": "failed",
        "unknown_type": "failed",
        "broken_suite": "failed",
        "info_any": "failed",
    }
    check_clean_data_passes(result, paths)
    check_warning_severity(result, output)
    check_critical_failure(result, paths, output, mlflow_server)
    check_bad_inputs(result, paths, output)
    check_info_fails_only_under_any(result)


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


def check_warning_severity(result, output):
    passed = result.xcom("warn_passes")
    assert passed["success"] is True
    [warning] = passed["failed"]
    assert warning["severity"] == "warning"
    assert warning["blocking"] is False
    assert warning["column"] == "region"
    assert warning["observed"]["unexpected_count"] == 10
    assert warning["observed"]["sample"] == ["atlantis"]
    assert passed["statistics"]["failed_by_severity"] == {"info": 0, "warning": 1, "critical": 0}

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


def check_bad_inputs(result, paths, output):
    expectations = {
        "missing_file": f"data not found: {paths['missing']}",
        "corrupt_file": f"cannot read parquet data {paths['corrupt']}",
        "empty_data": f"data is empty (0 rows): {paths['empty']}",
        "missing_column": f"names columns that data {paths['clean']} does not have: column 'customer_id'",
        "unknown_type": "unknown expectation type 'expect_column_values_to_be_betwen'; did you mean "
        "expect_column_values_to_be_between",
        "broken_suite": f"suite file {paths['broken_suite']} is not valid JSON",
    }
    for task_id, text in expectations.items():
        assert text in output, f"{task_id}: {text!r} not in the task output"
        # bad input is never reported as a verdict on the data
        assert result.xcom(task_id) is None, task_id
    assert output.count("DataInputError") >= len(expectations)


def check_info_fails_only_under_any(result):
    summary = result.xcom("info_any")
    assert summary["success"] is False
    [info] = summary["failed"]
    assert info["severity"] == "info" and info["blocking"] is True
    mean = f"{float(churn_frame()['age'].mean()):.6g}"
    assert info["message"] == f"column 'age': mean is {mean}, expected within [0, 1]"


def test_operator_rejects_bad_arguments_without_io():
    with pytest.raises(ValueError, match="fail_on"):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite="s.json", fail_on="severe")
    with pytest.raises(ValueError, match="result_format"):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite="s.json", result_format="FULL")
    with pytest.raises(ValueError, match="suite"):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite=[])
    # templated fail_on is checked at execute time; a missing file is not looked at in __init__
    op = DataQualityGateOperator(
        task_id="x", data="/nowhere.parquet", suite="/nowhere.json", fail_on="{{ params.f }}"
    )
    assert op.fail_on == "{{ params.f }}"


def test_parse_time_purity():
    code = (
        "import sys\n"
        "import airflow_mlops\n"
        "from airflow_mlops.operators.quality import DataQualityGateOperator\n"
        "op = DataQualityGateOperator(task_id='g', data='x.parquet', suite='s.json')\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'numpy', 'mlflow', 'evidently', 'sklearn')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
