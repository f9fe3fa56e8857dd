"""MlflowHook's read-only registry methods for the model page, with ``MlflowClient`` patched where the
hook builds it. Against a real server: tests/integration/plugins/test_app.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from airflow_mlops.core import tags
from airflow_mlops.exceptions import RegistryError
from airflow_mlops.hooks.mlflow import MlflowHook


def _event(version: str, previous: str | None, action: str = "promote") -> str:
    return json.dumps({"action": action, "version": version, "previous_version": previous, "at": "t"})


def test_list_models_leaves_out_the_registry_locks(client):
    client.search_registered_models.return_value = [
        SimpleNamespace(name="churn.mlops-lock.champion"),
        SimpleNamespace(name="fraud"),
        SimpleNamespace(name="churn"),
    ]
    assert [m.name for m in MlflowHook("mlflow_unit").list_models()] == ["churn", "fraud"]


def test_model_record_reads_versions_newest_first_and_each_alias_history(client):
    client.get_registered_model.return_value = SimpleNamespace(
        name="churn",
        aliases={"canary": "3"},
        tags={
            tags.history_key("champion", 1): _event("1", None),
            tags.history_key("champion", 2): _event("2", "1"),
            tags.history_key("canary", 1): _event("3", None),
        },  # fmt: skip
    )
    client.search_model_versions.return_value = [SimpleNamespace(version=v) for v in ("2", "10", "1")]

    record = MlflowHook("mlflow_unit").model_record("churn")

    client.search_model_versions.assert_called_once_with("name='churn'")
    assert [v.version for v in record.versions] == ["10", "2", "1"]
    assert list(record.history) == ["canary", "champion"]  # the model's aliases, and champion
    assert [(e.version, e.previous_version) for e in record.history["champion"]] == [("1", None), ("2", "1")]
    assert [(e.alias, e.version) for e in record.history["canary"]] == [("canary", "3")]


def test_model_record_of_a_missing_model_or_a_quoted_name_is_a_registry_error(client):
    client.get_registered_model.side_effect = MlflowException(
        "no such model", error_code=RESOURCE_DOES_NOT_EXIST
    )
    with pytest.raises(RegistryError, match="no such model"):
        MlflowHook("mlflow_unit").model_record("ghost")
    with pytest.raises(RegistryError, match="quotes"):
        MlflowHook("mlflow_unit").model_record("it's")
