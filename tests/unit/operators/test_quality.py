"""DataQualityGateOperator.execute on real files with the real Great Expectations, a fake task
context (a MagicMock ti that records xcom_push) and MlflowHook patched where the operator uses it.

One case per test; the real-Airflow wiring (dag.test(), a real MLflow server) is in
tests/integration/operators/test_quality.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_mlops.exceptions import DataInputError, DataQualityGateFailed
from airflow_mlops.hooks.mlflow_runs import ReportRun
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.operators.quality import DataQualityGateOperator

AGE_RANGE = {
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "age", "min_value": 18, "max_value": 120},
}  # critical by default
REGION_SET = {
    "type": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "region", "value_set": ["north", "south"]},
    "severity": "warning",
}
SUITE = [AGE_RANGE, REGION_SET]
RUN = ReportRun("run-1", "7", "mlflow-artifacts:/7/run-1/artifacts/quality", "http://mlflow/#/runs/run-1")


def write_table(folder: Path, *, ages=(25, 40, 61, 33), regions=("north", "south", "north", "south")) -> str:
    import pandas as pd

    path = folder / "data.parquet"
    pd.DataFrame({"age": list(ages), "region": list(regions)}).to_parquet(path)
    return str(path)


def make_context(dag: object = None) -> dict:
    ti = mock.MagicMock(dag_id="dq_dag", run_id="manual__1", task_id="gate", map_index=-1)
    return {"ti": ti, "dag": dag or SimpleNamespace(fileloc=None, template_searchpath=None)}


def pushed(context: dict) -> list[tuple[str, object]]:
    return [(c.kwargs["key"], c.kwargs["value"]) for c in context["ti"].xcom_push.call_args_list]


def gate(tmp_path: Path, **kwargs) -> DataQualityGateOperator:
    kwargs.setdefault("suite", SUITE)
    kwargs.setdefault("report_dir", str(tmp_path / "reports"))
    return DataQualityGateOperator(task_id="gate", **kwargs)


@pytest.fixture
def hook_cls():
    with mock.patch("airflow_mlops.operators.quality.MlflowHook", autospec=True) as cls:
        cls.return_value.log_report_run.return_value = RUN
        yield cls


# ---------------------------------------------------------------------------------------------
# verdicts


def test_clean_data_passes_and_returns_the_summary(tmp_path, hook_cls):
    context = make_context()
    summary = gate(tmp_path, data=write_table(tmp_path)).execute(context)

    assert summary["success"] is True and summary["failed"] == []
    assert (summary["evaluated"], summary["fail_on"], summary["statistics"]["row_count"]) == (
        2,
        "critical",
        4,
    )
    assert summary["report_uri"] == f"file://{tmp_path}/reports/validation.html"
    assert "PASSED" in (tmp_path / "reports" / "validation.html").read_text()
    assert json.loads((tmp_path / "reports" / "validation.json").read_text())["success"] is True
    # the report link is the only push: the summary is the return value
    assert pushed(context) == [(MlopsReportLink.uri_key, summary["report_uri"])]
    json.dumps(summary)  # XCom-able


def test_critical_failure_pushes_the_summary_then_raises(tmp_path, hook_cls):
    context = make_context()
    data = write_table(tmp_path, ages=(25, -1, 999, 33))
    with pytest.raises(DataQualityGateFailed) as err:
        gate(tmp_path, data=data).execute(context)

    summary = err.value.summary
    assert summary["success"] is False
    # the summary is the last thing pushed: nothing runs after the raise
    assert pushed(context) == [
        (MlopsReportLink.uri_key, summary["report_uri"]),
        ("return_value", summary),
    ]
    [age] = summary["failed"]
    assert (age["column"], age["severity"], age["blocking"]) == ("age", "critical", True)
    assert str(err.value).splitlines() == [
        f"Data quality gate FAILED for {data} (suite <inline suite>, fail_on=critical): "
        "1 of 2 expectations failed, 1 at or above 'critical'",
        "Blocking failures:",
        "  - [critical] column 'age': 2 of 4 values (50.0%) outside [18, 120]; unexpected sample: [-1, 999]",
        f"Report: file://{tmp_path}/reports/validation.html",
    ]


def test_warning_below_fail_on_passes_and_is_returned(tmp_path, hook_cls):
    context = make_context()
    data = write_table(tmp_path, regions=("north", "atlantis", "south", "north"))
    summary = gate(tmp_path, data=data, fail_on="critical").execute(context)

    assert summary["success"] is True
    [warning] = summary["failed"]
    assert (warning["column"], warning["severity"], warning["blocking"]) == ("region", "warning", False)
    assert warning["observed"]["unexpected_count"] == 1 and warning["observed"]["sample"] == ["atlantis"]
    assert summary["statistics"]["failed_by_severity"] == {"info": 0, "warning": 1, "critical": 0}
    assert "return_value" not in dict(pushed(context))


def test_warning_fails_under_fail_on_warning(tmp_path, hook_cls):
    data = write_table(tmp_path, regions=("north", "atlantis", "south", "north"))
    with pytest.raises(DataQualityGateFailed) as err:
        gate(tmp_path, data=data, fail_on="warning").execute(make_context())
    assert [f["blocking"] for f in err.value.summary["failed"]] == [True]
    assert "  - [warning] column 'region': 1 of 4 values (25.0%) not in ['north', 'south']" in str(err.value)


def test_info_failure_blocks_only_under_fail_on_any(tmp_path, hook_cls):
    info = {**AGE_RANGE, "kwargs": {"column": "age", "max_value": 35}, "severity": "info"}
    data = write_table(tmp_path)
    assert gate(tmp_path, data=data, suite=[info], fail_on="critical").execute(make_context())["success"]
    with pytest.raises(DataQualityGateFailed) as err:
        gate(tmp_path, data=data, suite=[info], fail_on="any").execute(make_context())
    [row] = err.value.summary["failed"]
    assert (row["severity"], row["blocking"]) == ("info", True)
    assert row["message"] == "column 'age': 2 of 4 values (50.0%) above 35; unexpected sample: [40, 61]"


# ---------------------------------------------------------------------------------------------
# fail_on: checked once, where its value is known


def test_literal_fail_on_is_checked_in_init():
    with pytest.raises(ValueError, match="fail_on must be one of critical, warning, any, got 'severe'"):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite="s.json", fail_on="severe")


def test_templated_fail_on_is_left_for_execute():
    op = DataQualityGateOperator(
        task_id="x", data="/nowhere.parquet", suite="/nowhere.json", fail_on="{{ params.f }}"
    )
    assert op.fail_on == "{{ params.f }}"


def test_templated_fail_on_rendering_to_a_bad_value_is_a_data_input_error(tmp_path, hook_cls):
    context = make_context()
    op = gate(tmp_path, data=str(tmp_path / "nope.parquet"), fail_on="{{ params.f }}")
    op.fail_on = "severe"  # what rendering the template produced
    with pytest.raises(DataInputError, match="^fail_on must be one of critical, warning, any, got 'severe'$"):
        op.execute(context)
    assert pushed(context) == []  # checked before anything is read or written


def test_templated_fail_on_is_used_once_rendered(tmp_path, hook_cls):
    op = gate(tmp_path, data=write_table(tmp_path, regions=("atlantis",) * 4), fail_on="{{ params.f }}")
    op.fail_on = " Warning "
    with pytest.raises(DataQualityGateFailed) as err:
        op.execute(make_context())
    assert err.value.summary["fail_on"] == "warning"


# ---------------------------------------------------------------------------------------------
# bad input: DataInputError naming the culprit, never a verdict


def test_missing_column_names_it_and_suggests_a_close_one(tmp_path, hook_cls):
    context = make_context()
    data = write_table(tmp_path)
    suite = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "agee"}}]
    with pytest.raises(DataInputError) as err:
        gate(tmp_path, data=data, suite=suite).execute(context)
    assert str(err.value) == (
        f"suite <inline suite> names columns that data {data} does not have: column 'agee' (named by "
        "expectation #1 (expect_column_values_to_not_be_null); did you mean 'age'?). "
        "Data columns: ['age', 'region']"
    )
    assert pushed(context) == []


def test_suite_file_not_found_lists_where_it_looked(tmp_path, hook_cls, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dag = SimpleNamespace(fileloc=str(tmp_path / "dags" / "my_dag.py"), template_searchpath=["/opt/suites"])
    with pytest.raises(DataInputError) as err:
        gate(tmp_path, data=write_table(tmp_path), suite="churn.json").execute(make_context(dag))
    assert str(err.value) == (
        f"suite file not found: churn.json (looked in: {tmp_path}/churn.json, {tmp_path}/dags/churn.json, "
        "/opt/suites/churn.json)"
    )


def test_suite_beside_the_dag_file_is_found(tmp_path, hook_cls, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "s.json").write_text(json.dumps({"expectations": SUITE}))
    dag = SimpleNamespace(fileloc=str(tmp_path / "dags" / "my_dag.py"), template_searchpath=None)
    summary = gate(tmp_path, data=write_table(tmp_path), suite="s.json").execute(make_context(dag))
    assert summary["suite"] == str(tmp_path / "dags" / "s.json")


def test_suite_that_does_not_parse_names_the_file(tmp_path, hook_cls):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "broken", "expectations": [\n  {"type": "x",\n}')
    with pytest.raises(DataInputError, match=f"^suite file {broken} is not valid JSON: "):
        gate(tmp_path, data=str(tmp_path / "nope.parquet"), suite=str(broken)).execute(make_context())


def test_unknown_expectation_type_suggests_the_closest(tmp_path, hook_cls):
    suite = [{"type": "expect_column_values_to_be_betwen", "kwargs": {"column": "age", "min_value": 0}}]
    with pytest.raises(DataInputError) as err:
        gate(tmp_path, data=str(tmp_path / "nope.parquet"), suite=suite).execute(make_context())
    assert (
        "unknown expectation type 'expect_column_values_to_be_betwen'; did you mean "
        "expect_column_values_to_be_between" in str(err.value)
    )


def test_missing_data_file_is_named(tmp_path, hook_cls):
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(DataInputError, match=f"^quality gate data: data not found: {missing}$"):
        gate(tmp_path, data=missing).execute(make_context())


def test_corrupt_data_file_is_named(tmp_path, hook_cls):
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file at all")
    with pytest.raises(DataInputError, match=f"cannot read parquet data {corrupt}"):
        gate(tmp_path, data=str(corrupt)).execute(make_context())


def test_empty_data_is_an_error_not_a_pass(tmp_path, hook_cls):
    data = write_table(tmp_path, ages=(), regions=())
    with pytest.raises(DataInputError, match=f"data is empty \\(0 rows\\): {data}"):
        gate(tmp_path, data=data).execute(make_context())


# ---------------------------------------------------------------------------------------------
# MLflow: through the hook, only with mlflow_conn_id


def test_without_mlflow_conn_id_the_hook_is_never_built(tmp_path, hook_cls):
    summary = gate(tmp_path, data=write_table(tmp_path)).execute(make_context())
    hook_cls.assert_not_called()
    assert summary["mlflow_run_id"] is None and "mlflow_artifact_uri" not in summary


def test_a_failed_gate_logs_a_failed_report_run(tmp_path, hook_cls):
    context = make_context()
    op = gate(tmp_path, data=write_table(tmp_path, ages=(25, -1, 40, 33)), mlflow_conn_id="mlflow_test")
    with pytest.raises(DataQualityGateFailed) as err:
        op.execute(context)

    hook_cls.assert_called_once_with(mlflow_conn_id="mlflow_test")
    hook_cls.return_value.log_report_run.assert_called_once()
    call = hook_cls.return_value.log_report_run.call_args.kwargs
    assert call["failed"] is True
    assert (call["experiment"], call["run_name"], call["artifact_path"]) == (
        "data-quality",
        "dq_dag.gate",
        "quality",
    )
    assert call["tags"]["mlops.quality.success"] == "false"
    assert call["tags"]["mlops.airflow.task_id"] == "gate"
    assert call["metrics"]["failed_critical"] == 1 and call["metrics"]["row_count"] == 4
    assert sorted(call["artifacts"]) == ["validation.html", "validation.json"]
    summary = err.value.summary
    assert summary["mlflow_run_id"] == "run-1"
    assert summary["mlflow_artifact_uri"] == "mlflow-artifacts:/7/run-1/artifacts/quality/validation.html"
    assert (MlflowRunLink().xcom_key, RUN.url) in pushed(context)
    assert pushed(context)[-1] == ("return_value", summary)


def test_a_passed_gate_logs_a_finished_report_run(tmp_path, hook_cls):
    op = gate(tmp_path, data=write_table(tmp_path), mlflow_conn_id="mlflow_test", mlflow_experiment="dq")
    summary = op.execute(make_context())

    call = hook_cls.return_value.log_report_run.call_args.kwargs
    assert call["failed"] is False and call["experiment"] == "dq"
    assert call["tags"]["mlops.quality.success"] == "true"
    assert summary["mlflow_run_id"] == "run-1"


# ---------------------------------------------------------------------------------------------
# __init__: arguments only, no I/O, nothing heavy


def test_unknown_result_format_is_rejected():
    with pytest.raises(
        ValueError, match="result_format must be one of BOOLEAN_ONLY, BASIC, SUMMARY, COMPLETE"
    ):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite="s.json", result_format="FULL")


def test_empty_suite_is_rejected():
    with pytest.raises(ValueError, match="suite must be a suite file path or a non-empty list"):
        DataQualityGateOperator(task_id="x", data="d.parquet", suite=[])


def test_building_the_operator_imports_nothing_heavy():
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
