"""MlflowHook's calls and its one error mapping, with ``MlflowClient`` patched where the hook builds
it (``mlflow.MlflowClient``, imported when a client is made). The hook against a real server is in
tests/integration/hooks/test_mlflow.py."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from unittest import mock

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
)

from airflow_mlops.exceptions import MlopsError, RegistryError
from airflow_mlops.hooks.mlflow import MlflowHook

URI = "http://mlflow.test:5000"


@pytest.fixture
def hook(monkeypatch) -> MlflowHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_UNIT",
        json.dumps({"conn_type": "mlflow", "host": URI, "login": "alice", "password": "s3cret"}),
    )
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    return MlflowHook("mlflow_unit")


@pytest.fixture(scope="module")
def client_class():
    """``MlflowClient`` autospec'd once: building the spec of its ~100 methods takes a while."""
    import mlflow

    return mock.create_autospec(mlflow.MlflowClient)


@pytest.fixture
def client(client_class):
    client_class.reset_mock()
    client_class.return_value.reset_mock(return_value=True, side_effect=True)
    with mock.patch("mlflow.MlflowClient", new=client_class):
        yield client_class.return_value


def _error(code: int, message: str = "refused") -> MlflowException:
    return MlflowException(message, error_code=code)


def test_get_model_version_by_alias(hook, client):
    client.get_model_version_by_alias.return_value = SimpleNamespace(version="5")
    assert hook.get_model_version("churn", alias="champion").version == "5"
    client.get_model_version_by_alias.assert_called_once_with("churn", "champion")


def test_get_model_version_by_version_number(hook, client):
    client.get_model_version.return_value = SimpleNamespace(version="7")
    assert hook.get_model_version("churn", version=7).version == "7"
    client.get_model_version.assert_called_once_with("churn", "7")


@pytest.mark.parametrize("kwargs", [{}, {"alias": "champion", "version": "7"}])
def test_get_model_version_takes_exactly_one_of_alias_and_version(hook, client, kwargs):
    with pytest.raises(ValueError, match="exactly one of alias and version"):
        hook.get_model_version("churn", **kwargs)


def test_a_missing_alias_is_none_with_missing_ok(hook, client):
    client.get_model_version_by_alias.side_effect = _error(RESOURCE_DOES_NOT_EXIST, "no alias")
    assert hook.get_model_version("churn", alias="champion", missing_ok=True) is None


def test_a_missing_alias_is_a_registry_error_without_missing_ok(hook, client):
    client.get_model_version_by_alias.side_effect = _error(RESOURCE_DOES_NOT_EXIST, "no alias")
    with pytest.raises(RegistryError, match=f"looking up churn@champion in the registry at {URI}: no alias"):
        hook.get_model_version("churn", alias="champion")


def test_the_rollout_of_a_model_never_registered_is_none_with_missing_ok(hook, client):
    client.get_registered_model.side_effect = _error(RESOURCE_DOES_NOT_EXIST, "Registered Model not found")
    assert hook.rollout_state("churn", missing_ok=True) is None
    with pytest.raises(
        RegistryError, match="reading the canary rollout of churn: Registered Model not found"
    ):
        hook.rollout_state("churn")


def test_a_registry_that_fails_is_not_read_as_a_model_never_registered(hook, client):
    client.get_registered_model.side_effect = _error(INTERNAL_ERROR, "database is locked")
    with pytest.raises(MlopsError, match="failed while reading the canary rollout of churn"):
        hook.rollout_state("churn", missing_ok=True)
    client.get_registered_model.side_effect = _error(INVALID_PARAMETER_VALUE, "bad name")
    with pytest.raises(RegistryError, match="bad name"):
        hook.rollout_state("churn", missing_ok=True)


def test_an_invalid_request_is_a_registry_error(hook, client):
    client.get_model_version.side_effect = _error(INVALID_PARAMETER_VALUE, "version must be an integer")
    with pytest.raises(RegistryError, match="looking up churn vx .*version must be an integer"):
        hook.get_model_version("churn", version="x", missing_ok=True)


def test_a_server_error_is_a_retriable_mlops_error(hook, client):
    client.get_model_version_by_alias.side_effect = _error(INTERNAL_ERROR, "database is locked")
    with pytest.raises(MlopsError, match=f"MLflow at {URI} failed while looking up churn@champion") as raised:
        hook.get_model_version("churn", alias="champion", missing_ok=True)
    assert not isinstance(raised.value, RegistryError)


def test_an_unreachable_server_is_a_retriable_mlops_error(hook, client):
    client.get_model_version_by_alias.side_effect = requests.ConnectionError("connection refused")
    with pytest.raises(MlopsError, match=f"MLflow at {URI} is unreachable while looking up") as raised:
        hook.get_model_version("churn", alias="champion")
    assert not isinstance(raised.value, RegistryError)


def test_set_version_tags_writes_each_tag(hook, client):
    hook.set_version_tags("churn", 7, {"mlops.eval.decision": "promote", "mlops.eval.metric": "accuracy"})
    assert client.set_model_version_tag.call_args_list == [
        mock.call("churn", "7", "mlops.eval.decision", "promote"),
        mock.call("churn", "7", "mlops.eval.metric", "accuracy"),
    ]


def test_set_version_tags_maps_a_refusal(hook, client):
    client.set_model_version_tag.side_effect = _error(RESOURCE_DOES_NOT_EXIST, "no version 9")
    with pytest.raises(RegistryError, match="tagging churn v9: no version 9"):
        hook.set_version_tags("churn", "9", {"k": "v"})


def _report_run(hook, client, **kwargs):
    client.get_experiment_by_name.return_value = SimpleNamespace(experiment_id="4")
    client.create_run.return_value = SimpleNamespace(
        info=SimpleNamespace(run_id="r1", artifact_uri="mlflow-artifacts:/4/r1/artifacts")
    )
    return hook.log_report_run(
        experiment="quality",
        run_name="gate",
        tags={"mlops.quality.success": "true"},
        metrics={"evaluated": 12, "failed": None},
        artifacts={"summary.json": "{}"},
        artifact_path="quality",
        **kwargs,
    )


def test_log_report_run_logs_and_ends_finished(hook, client):
    run = _report_run(hook, client)
    assert (run.run_id, run.experiment_id) == ("r1", "4")
    assert run.artifact_uri == "mlflow-artifacts:/4/r1/artifacts/quality"
    assert run.url == f"{URI}/#/experiments/4/runs/r1"
    client.create_run.assert_called_once_with("4", run_name="gate", tags={"mlops.quality.success": "true"})
    [metric] = client.log_batch.call_args.kwargs["metrics"]
    assert (metric.key, metric.value) == ("evaluated", 12.0)
    client.set_terminated.assert_called_once_with("r1", "FINISHED")


def test_log_report_run_of_a_failed_check_ends_failed(hook, client):
    _report_run(hook, client, failed=True)
    client.set_terminated.assert_called_once_with("r1", "FAILED")


def test_log_report_run_ends_failed_when_logging_breaks_half_way(hook, client):
    client.log_artifacts.side_effect = _error(INTERNAL_ERROR, "disk full")
    with pytest.raises(MlopsError, match="failed while logging the quality report to experiment 'quality'"):
        _report_run(hook, client)
    client.log_batch.assert_called_once()
    client.set_terminated.assert_called_once_with("r1", "FAILED")


def test_session_sets_uri_and_credentials_for_the_block_only(hook, client, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    before = mlflow.get_tracking_uri()
    with hook.session():
        assert os.environ["MLFLOW_TRACKING_URI"] == URI
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
        assert mlflow.get_tracking_uri() == URI
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://elsewhere:5000"
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ
    assert mlflow.get_tracking_uri() == before


def test_session_restores_the_environment_when_the_block_fails(hook, client):
    with pytest.raises(RuntimeError), hook.session():
        raise RuntimeError("boom")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def test_the_client_is_bound_to_the_connections_uris(hook, client, client_class):
    assert hook.get_conn() is client
    client_class.assert_called_once_with(tracking_uri=URI, registry_uri=URI)
