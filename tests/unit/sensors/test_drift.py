"""DataDriftSensor's branching, one case per test, in milliseconds.

The sensor runs on small CSV files with a minimal task context; the MLflow hook is patched where
the sensor uses it (``autospec``), and so is the Evidently report, whose rendering is covered by
``tests/unit/core/test_drift.py``. Real-Airflow wiring is in ``tests/integration/sensors``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock, patch

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import Asset, AssetAlias, PokeReturnValue
from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops.core import tags
from airflow_mlops.exceptions import DataInputError, RegistryError
from airflow_mlops.hooks.mlflow_runs import ReportRun
from airflow_mlops.links.mlflow import MlflowRunLink, MlopsReportLink
from airflow_mlops.sensors.drift import REPORT_NAME, DataDriftSensor

PAGE = "<html><body>the Evidently report</body></html>"


def _frame(rows: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue"], dtype=object)
    p = [0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {"amount": rng.normal(100.0 + shift, 15.0, rows), "colour": colours[rng.choice(3, rows, p=p)]}
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reference.csv (300 rows); same.csv drawn like it; shifted.csv with both columns moved."""
    folder = tmp_path_factory.mktemp("drift-data")
    _frame(300, 1).to_csv(folder / "reference.csv", index=False)
    _frame(200, 2).to_csv(folder / "same.csv", index=False)
    _frame(200, 3, shift=30.0).to_csv(folder / "shifted.csv", index=False)
    _frame(200, 4).rename(columns={"colour": "color"}).to_parquet(folder / "renamed.parquet", index=False)
    return folder


class OutletEvents(dict):
    """``context["outlet_events"]``: one accessor per outlet, made on first use, as Airflow's."""

    def __missing__(self, outlet: Asset | AssetAlias) -> SimpleNamespace:
        accessor = self[outlet] = SimpleNamespace(extra={}, add=MagicMock())
        return accessor


@pytest.fixture
def context() -> dict:
    ti = MagicMock(dag_id="monitor", run_id="manual__1", task_id="data_drift", map_index=-1)
    return {"ti": ti, "outlet_events": OutletEvents()}


@pytest.fixture
def hook():
    with patch("airflow_mlops.sensors.drift.MlflowHook", autospec=True) as cls:
        instance = cls.return_value
        instance.registry_uri = "http://registry.test"
        yield instance


@pytest.fixture
def render():
    with patch("airflow_mlops.sensors.drift.render_report", autospec=True, return_value=PAGE) as fn:
        yield fn


def sensor(data: Path, *, current: str = "shifted.csv", **kwargs) -> DataDriftSensor:
    kwargs.setdefault("reference", str(data / "reference.csv"))
    kwargs.setdefault("report", False)
    kwargs.setdefault("model_name", "churn")
    return DataDriftSensor(task_id="data_drift", current=str(data / current), mode="poke", **kwargs)


def xcom(context: dict, key: str):
    values = [c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list if c.kwargs["key"] == key]
    assert len(values) == 1, f"{key} pushed {len(values)} times"
    return values[0]


# --------------------------------------------------------------------------------------------
# the verdict and what it records


def test_drift_is_done_with_the_summary(data, context):
    result = sensor(data).poke(context)
    assert isinstance(result, PokeReturnValue) and result.is_done
    summary = result.xcom_value
    assert summary["drift_detected"] is True and summary["drifted_columns"] == ["amount", "colour"]
    assert summary["per_column"]["amount"]["method"] == "ks"
    assert summary["per_column"]["colour"]["method"] == "chisquare"
    assert summary["reference"] == str(data / "reference.csv") and summary["reference_model"] is None
    assert summary["current"] == str(data / "shifted.csv")
    assert summary["asset_uri"] == "x-mlops://drift/churn" and summary["report_uri"] is None


def test_drift_summary_is_pushed_under_the_summary_key(data, context):
    result = sensor(data).poke(context)
    assert xcom(context, tags.XCOM_DRIFT_SUMMARY) == result.xcom_value


def test_drift_event_carries_the_summary_and_the_task(data, context):
    result = sensor(data).poke(context)
    (outlet, accessor), *others = context["outlet_events"].items()
    assert not others and outlet == Asset("x-mlops://drift/churn")
    assert accessor.extra == {
        **result.xcom_value,
        "dag_id": "monitor",
        "run_id": "manual__1",
        "task_id": "data_drift",
        "user": None,
    }


def test_templated_subject_emits_through_the_alias(data, context):
    task = sensor(data, model_name="{{ params.model }}")
    assert task.outlets[-1] == AssetAlias("mlops_drift")
    task.model_name = "churn"  # as rendered
    task.poke(context)
    accessor = context["outlet_events"][AssetAlias("mlops_drift")]
    accessor.add.assert_called_once()
    assert accessor.add.call_args.args == (Asset("x-mlops://drift/churn"),)
    assert accessor.add.call_args.kwargs["extra"]["drift_detected"] is True


def test_no_drift_is_not_done(data, context):
    result = sensor(data, current="same.csv").poke(context)
    assert result.is_done is False
    assert result.xcom_value["drift_detected"] is False and result.xcom_value["drifted_columns"] == []


def test_no_drift_still_pushes_the_summary(data, context):
    result = sensor(data, current="same.csv").poke(context)
    assert xcom(context, tags.XCOM_DRIFT_SUMMARY) == result.xcom_value


def test_no_drift_emits_no_event(data, context):
    sensor(data, current="same.csv").poke(context)
    assert context["outlet_events"] == {}


@pytest.mark.parametrize("columns", ['["amount"]', "['amount']", "amount", " amount , "])
def test_templated_columns_render_to_a_list(data, context, columns):
    result = sensor(data, columns=columns).poke(context)
    assert list(result.xcom_value["per_column"]) == ["amount"]


def test_per_column_threshold_applies(data, context):
    result = sensor(data, per_column_threshold={"colour": 1e-300}).poke(context)
    assert result.xcom_value["per_column"]["colour"]["threshold"] == 1e-300
    assert result.xcom_value["drifted_columns"] == ["amount"]


# --------------------------------------------------------------------------------------------
# soft_fail: a quiet window is skipped, bad input fails


def test_soft_fail_quiet_window_is_skipped(data, context):
    task = sensor(data, current="same.csv", soft_fail=True, timeout=0, poke_interval=0)
    with pytest.raises(AirflowSkipException):
        task.execute(context)


def test_soft_fail_unreadable_input_fails(data, context):
    task = sensor(data, current="missing.csv", soft_fail=True, timeout=0, poke_interval=0)
    with pytest.raises(DataInputError, match="current data.*missing.csv"):
        task.execute(context)


def test_drift_execute_returns_the_summary(data, context):
    summary = sensor(data, soft_fail=True, timeout=0, poke_interval=0).execute(context)
    assert summary["drift_detected"] is True


def test_different_columns_are_bad_input(data, context):
    task = sensor(data, current="renamed.parquet")
    with pytest.raises(
        DataInputError, match=r"only in reference: \['colour'\]; only in current: \['color'\]"
    ):
        task.poke(context)


def test_a_missing_column_is_bad_input(data, context):
    with pytest.raises(DataInputError, match="nope"):
        sensor(data, columns=["amount", "nope"]).poke(context)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drift_share": 0}, "drift_share must be a number"),
        ({"method": "kolmogorov"}, "unknown drift method 'kolmogorov'"),
        ({"per_column_threshold": {"a": -1}}, r"per_column_threshold\['a'\]"),
        ({"columns": []}, "columns is an empty list"),
        ({"reference": "models:/a/b/c"}, "not a model reference"),
        ({"report_sample_size": 0}, "report_sample_size must be a positive integer"),
    ],
)
def test_bad_settings_fail_at_parse_time(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sensor(data, **kwargs)


# --------------------------------------------------------------------------------------------
# models:/ references: the training data from the version's lineage


def _version(version: str, data_uri: str | None) -> SimpleNamespace:
    return SimpleNamespace(version=version, tags={tags.TRAIN_DATA_URI: data_uri} if data_uri else {})


def test_alias_reference_reads_the_lineage_tag(data, context, hook):
    hook.get_model_version.return_value = _version("3", str(data / "reference.csv"))
    result = sensor(data, reference="models:/churn@champion", model_name=None).poke(context)
    hook.get_model_version.assert_called_once_with("churn", alias="champion", version=None, missing_ok=True)
    summary = result.xcom_value
    assert summary["reference"] == str(data / "reference.csv")
    assert summary["reference_model"] == "churn@champion (v3)"
    assert summary["asset_uri"] == "x-mlops://drift/churn"


def test_version_reference_reads_the_lineage_tag(data, context, hook):
    hook.get_model_version.return_value = _version("2", str(data / "reference.csv"))
    result = sensor(data, reference="models:/churn/2").poke(context)
    hook.get_model_version.assert_called_once_with("churn", alias=None, version="2", missing_ok=True)
    assert result.xcom_value["reference_model"] == "churn v2"


def test_bare_model_reference_means_champion(data, context, hook):
    hook.get_model_version.return_value = _version("5", str(data / "reference.csv"))
    sensor(data, reference="models:/churn").poke(context)
    hook.get_model_version.assert_called_once_with("churn", alias="champion", version=None, missing_ok=True)


def test_version_without_lineage_is_bad_input(data, context, hook):
    hook.get_model_version.return_value = _version("2", None)
    with pytest.raises(DataInputError, match=f"churn v2 has no lineage tag {tags.TRAIN_DATA_URI}"):
        sensor(data, reference="models:/churn/2").poke(context)


def test_unknown_alias_is_bad_input(data, context, hook):
    hook.get_model_version.return_value = None
    with pytest.raises(DataInputError, match="no version of churn holds @champion .*registry.test"):
        sensor(data, reference="models:/churn@champion").poke(context)


def test_registry_error_is_bad_input(data, context, hook):
    hook.get_model_version.side_effect = RegistryError("version 'x' is not a version number")
    with pytest.raises(DataInputError, match="models:/churn/x: version 'x' is not a version number"):
        sensor(data, reference="models:/churn/x").poke(context)


# --------------------------------------------------------------------------------------------
# report and MLflow


def test_report_is_written_and_linked(data, context, render, tmp_path):
    result = sensor(data, report=True, report_dir=str(tmp_path), report_sample_size=50).poke(context)
    assert result.xcom_value["report_uri"] == f"file://{tmp_path / REPORT_NAME}"
    assert (tmp_path / REPORT_NAME).read_text() == PAGE
    assert xcom(context, MlopsReportLink.uri_key) == result.xcom_value["report_uri"]
    assert render.call_args.kwargs["sample_size"] == 50


def test_report_goes_to_the_default_folder(data, context, render, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    result = sensor(data, report=True).poke(context)
    expected = tmp_path / "reports" / "drift" / "monitor" / "manual__1" / "data_drift" / REPORT_NAME
    assert result.xcom_value["report_uri"] == f"file://{expected}" and expected.is_file()


def test_report_that_fails_to_render_does_not_hide_the_verdict(data, context, render, tmp_path):
    render.side_effect = RuntimeError("evidently broke")
    result = sensor(data, report=True, report_dir=str(tmp_path)).poke(context)
    assert result.is_done and result.xcom_value["report_uri"] is None
    assert list(tmp_path.iterdir()) == []


def test_report_false_writes_nothing(data, context, render, tmp_path):
    result = sensor(data, report=False, report_dir=str(tmp_path)).poke(context)
    render.assert_not_called()
    assert result.xcom_value["report_uri"] is None and list(tmp_path.iterdir()) == []


def test_mlflow_conn_id_logs_a_report_run(data, context, hook, render, tmp_path):
    hook.log_report_run.return_value = ReportRun(
        "run-1", "7", "mlflow-artifacts:/7/run-1/drift", "http://ui/run-1"
    )
    task = sensor(data, report=True, report_dir=str(tmp_path), mlflow_conn_id="mlflow_test")
    summary = task.poke(context).xcom_value
    assert summary["mlflow_run_id"] == "run-1"
    kwargs = hook.log_report_run.call_args.kwargs
    assert kwargs["experiment"] == "mlops-drift" and kwargs["artifact_path"] == "drift"
    assert (
        kwargs["artifacts"][REPORT_NAME] == PAGE
        and '"drift_detected": true' in kwargs["artifacts"]["summary.json"]
    )
    assert kwargs["metrics"] == {
        "drift_share": 1.0,
        "drift_score.amount": summary["per_column"]["amount"]["score"],
        "drift_score.colour": summary["per_column"]["colour"]["score"],
    }
    assert (
        kwargs["tags"][tags.DRIFT_ASSET] == "x-mlops://drift/churn"
        and kwargs["tags"][tags.DRIFT_DETECTED] == "true"
    )
    assert kwargs["tags"][tags.AIRFLOW_TASK_ID] == "data_drift"
    assert xcom(context, MlflowRunLink().xcom_key) == "http://ui/run-1"


def test_mlflow_run_without_report_holds_the_summary(data, context, hook):
    hook.log_report_run.return_value = ReportRun("run-2", "7", "a", None)
    sensor(data, mlflow_conn_id="mlflow_test").poke(context)
    assert set(hook.log_report_run.call_args.kwargs["artifacts"]) == {"summary.json"}


def test_without_mlflow_conn_id_nothing_is_logged(data, context, hook):
    summary = sensor(data).poke(context).xcom_value
    hook.log_report_run.assert_not_called()
    assert "mlflow_run_id" not in summary
