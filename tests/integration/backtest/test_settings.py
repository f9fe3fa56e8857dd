"""One home for the policy: the reference DAGs, the demo and the backtest read the same settings."""

from __future__ import annotations

import importlib.util
import runpy
from pathlib import Path

import pytest

from airflow_mlops.policy import ENV, PolicyError, RetrainingPolicy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def _dag_settings(name: str, monkeypatch, **env: str) -> dict:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return runpy.run_path(str(REPO / "dags" / name), run_name=f"settings_{name[:-3]}")


def test_the_dags_read_the_policy_and_its_environment(monkeypatch):
    monitor = _dag_settings(
        "mlops_drift_monitor.py", monkeypatch, MLOPS_DRIFT_SHARE="0.4", MLOPS_MAX_DROP="0.07"
    )
    assert monitor["POLICY"] == RetrainingPolicy.from_env()
    assert (monitor["DRIFT_SHARE"], monitor["MAX_DROP"]) == (0.4, 0.07)
    training = _dag_settings("mlops_continuous_training.py", monkeypatch, MLOPS_MIN_IMPROVEMENT="0.01")
    policy = RetrainingPolicy()
    assert training["HYPERPARAMETERS"] == policy.training_params()
    assert training["THRESHOLDS"] == dict(policy.thresholds)
    assert training["METRIC"] == policy.metric
    assert training["MIN_IMPROVEMENT"] == 0.01


@pytest.mark.parametrize("dag_file", ["mlops_drift_monitor.py", "mlops_continuous_training.py"])
def test_the_dags_refuse_a_setting_only_the_backtest_replays(monkeypatch, dag_file):
    with pytest.raises(PolicyError, match="MLOPS_REFRESH_GROWTH.*backtest only"):
        _dag_settings(dag_file, monkeypatch, MLOPS_REFRESH_GROWTH="2")
    with pytest.raises(PolicyError, match="MLOPS_TRAINING_WINDOWS"):
        _dag_settings(dag_file, monkeypatch, MLOPS_TRAINING_WINDOWS="since_drift")


def test_the_monitor_tests_the_model_inputs_not_the_label(monkeypatch):
    monitor = _dag_settings("mlops_drift_monitor.py", monkeypatch)
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "include" / "demo" / "data.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    assert monitor["DRIFT_COLUMNS"] == data.FEATURES
    assert monitor["TARGET"] not in monitor["DRIFT_COLUMNS"]
    sensor = monitor["mlops_drift_monitor"]().get_task("data_drift")
    assert sensor.columns == data.FEATURES
