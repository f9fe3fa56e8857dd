from __future__ import annotations

import json
import os

import pytest

from airflow_mlops.hooks.mlflow import MlflowHook

pytestmark = pytest.mark.integration


def test_connection_reaches_real_server(mlflow_server):
    hook = MlflowHook()
    assert hook.tracking_uri == mlflow_server.uri
    ok, message = hook.test_connection()
    assert ok, message
    assert mlflow_server.uri in message


def test_connection_reports_unreachable_server(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": "http://127.0.0.1:9"})
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    ok, message = MlflowHook("mlflow_down").test_connection()
    assert not ok
    assert "http://127.0.0.1:9" in message


def test_session_sets_credentials_only_inside_block(monkeypatch, mlflow_server):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_AUTH",
        json.dumps(
            {"conn_type": "mlflow", "host": mlflow_server.uri, "login": "alice", "password": "s3cret"}
        ),
    )
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    hook = MlflowHook("mlflow_auth")
    with hook.session() as client:
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
        assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
        client.search_experiments(max_results=1)  # the server has no auth: credentials are ignored
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    # nor the URIs: a later hook without a connection must not inherit them
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    import mlflow

    assert mlflow.get_tracking_uri() != mlflow_server.uri


def test_embedded_default_without_connection(monkeypatch, airflow_home):
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    hook = MlflowHook()
    assert hook.tracking_uri == f"sqlite:///{airflow_home}/mlflow.db"
    assert hook.is_embedded
    assert hook.model_version_url("m", 1) is None


def test_tracking_uri_env_when_no_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert MlflowHook().tracking_uri == "http://mlflow.example:5000"


def test_missing_named_connection_is_an_error(monkeypatch):
    with pytest.raises(Exception, match="mlflow_nope"):
        _ = MlflowHook("mlflow_nope").tracking_uri


def test_host_without_scheme_and_registry_extra(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_X",
        json.dumps(
            {
                "conn_type": "mlflow",
                "host": "mlflow.internal",
                "port": 5001,
                "extra": {"registry_uri": "databricks-uc", "ui_url": "https://ui.example/"},
            }
        ),
    )
    hook = MlflowHook("mlflow_x")
    assert hook.tracking_uri == "http://mlflow.internal:5001"
    assert hook.registry_uri == "databricks-uc"
    assert hook.model_version_url("my model", 3) == "https://ui.example/#/models/my%20model/versions/3"
