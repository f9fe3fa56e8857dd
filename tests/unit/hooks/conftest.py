"""Fixtures of the hook unit tests."""

from __future__ import annotations

import json
from unittest import mock

import pytest


@pytest.fixture
def client(monkeypatch):
    """The ``MlflowClient`` a hook on the ``mlflow_unit`` connection builds, patched with autospec."""
    import mlflow

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_UNIT", json.dumps({"conn_type": "mlflow", "host": "http://mlflow.test"})
    )
    with mock.patch("mlflow.MlflowClient", autospec=True) as cls:
        assert cls is mlflow.MlflowClient
        yield cls.return_value
