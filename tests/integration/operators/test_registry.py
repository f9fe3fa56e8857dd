"""Promotion and rollback in real Airflow against a real MLflow server."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from airflow_mlops.core import tags

pytestmark = pytest.mark.integration


def _make_versions(client, name: str, count: int) -> list[str]:
    """Register ``count`` versions (metadata only: promotion never loads the model)."""
    client.create_registered_model(name)
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    return [
        str(
            client.create_model_version(
                name, source=f"{run.info.artifact_uri}/model{i}", run_id=run.info.run_id
            ).version
        )
        for i in range(count)
    ]


def _alias(client, name: str, alias: str = "champion") -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:
        return None


def _history(client, name: str, alias: str = "champion") -> list[dict]:
    model_tags = client.get_registered_model(name).tags
    prefix = f"{tags.HISTORY_PREFIX}{alias}."
    return [json.loads(model_tags[k]) for k in sorted(k for k in model_tags if k.startswith(prefix))]


LIFECYCLE_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator

NAME = "{name}"
with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    p1 = PromoteModelOperator(task_id="p1", model_name=NAME, version="1", expected_current="none",
                              reason="first model")
    p2 = PromoteModelOperator(task_id="p2", model_name=NAME, version="{{{{ '2' }}}}", expected_current=1,
                              reason="better on fresh data")
    p2_again = PromoteModelOperator(task_id="p2_again", model_name=NAME, version="2", expected_current=1)
    stale = PromoteModelOperator(task_id="stale", model_name=NAME, version="3", expected_current="1")
    p3 = PromoteModelOperator(task_id="p3", model_name=NAME, version="3", expected_current="2",
                              trigger_rule="all_done")
    rb1 = RollbackModelOperator(task_id="rb1", model_name=NAME, reason="v3 misbehaves")
    rb2 = RollbackModelOperator(task_id="rb2", model_name=NAME)
    rb3 = RollbackModelOperator(task_id="rb3", model_name=NAME)
    p1 >> p2 >> p2_again >> stale >> p3 >> rb1 >> rb2 >> rb3
"""


def test_lifecycle_promote_conflict_rollback(dag_runner, mlflow_server, model_name, capfd):
    client = mlflow_server.client()
    assert _make_versions(client, model_name, 3) == ["1", "2", "3"]

    run = dag_runner.run(LIFECYCLE_DAG.format(name=model_name, dag_id="registry_lifecycle"))

    assert run.task_states == {
        "p1": "success",
        "p2": "success",
        "p2_again": "success",
        "stale": "failed",
        "p3": "success",
        "rb1": "success",
        "rb2": "success",
        "rb3": "failed",
    }
    shape = {"model_name": model_name, "alias": "champion"}
    assert run.xcom("p1") == {**shape, "version": "1", "previous_version": None}
    assert run.xcom("p2") == {**shape, "version": "2", "previous_version": "1"}
    # idempotent re-run: same result, nothing written
    assert run.xcom("p2_again") == run.xcom("p2")
    assert run.xcom("p3") == {**shape, "version": "3", "previous_version": "2"}
    assert run.xcom("rb1") == {**shape, "version": "2", "previous_version": "3"}
    assert run.xcom("rb2") == {**shape, "version": "1", "previous_version": "2"}
    assert run.xcom("stale") is None and run.xcom("rb3") is None

    out = capfd.readouterr().out
    assert "PromotionConflict" in out
    assert "expected it at v1, but it is at v2" in out
    assert "v1 was the first holder of @champion" in out

    assert _alias(client, model_name) == "1"
    history = _history(client, model_name)
    assert [(e["action"], e["version"], e["previous_version"]) for e in history] == [
        ("promote", "1", None),
        ("promote", "2", "1"),
        ("promote", "3", "2"),
        ("rollback", "2", "3"),
        ("rollback", "1", "2"),
    ]
    assert {e["status"] for e in history} == {"done"}  # every intent was completed
    assert history[1]["reason"] == "better on fresh data"
    assert history[1]["dag_id"] == "registry_lifecycle" and history[1]["task_id"] == "p2"
    assert history[1]["run_id"] == run.run_id
    v2_tags = client.get_model_version(model_name, "2").tags
    assert v2_tags["mlops.promotion.champion.previous_version"] == "1"
    assert v2_tags["mlops.promotion.champion.by"] == f"registry_lifecycle/{run.run_id}/p2"
    assert v2_tags["mlops.rollback.champion.from_version"] == "3"

    # the lock models are gone once every move finished
    assert not client.search_registered_models(filter_string=f"name LIKE '{model_name}.mlops-lock%'")

    # the deploy DAG's asset got one event per successful move, carrying the new version
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == f"x-mlflow://{model_name}@champion")
            .order_by(AssetEvent.id)
        ).all()
        versions = [(e.extra["action"], e.extra["version"], e.extra["changed"]) for e in events]
    assert versions == [
        ("promote", "1", True),
        ("promote", "2", True),
        ("promote", "2", False),
        ("promote", "3", True),
        ("rollback", "2", True),
        ("rollback", "1", True),
    ]


def test_rollback_without_history_fails_and_keeps_alias(dag_runner, mlflow_server, model_name, capfd):
    client = mlflow_server.client()
    _make_versions(client, model_name, 2)
    client.set_registered_model_alias(model_name, "champion", "2")  # moved outside airflow-mlops
    run = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlops.operators.registry import RollbackModelOperator
        with DAG(dag_id="rollback_no_history", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            RollbackModelOperator(task_id="rb", model_name="{model_name}")
        """
    )
    assert run.task_states == {"rb": "failed"}
    assert "no promotion of v2 to this alias is recorded in the history" in capfd.readouterr().out
    assert _alias(client, model_name) == "2"


def test_unreachable_server_fails_clearly_and_alias_unchanged(
    dag_runner, mlflow_server, model_name, monkeypatch, capfd
):
    client = mlflow_server.client()
    _make_versions(client, model_name, 2)
    client.set_registered_model_alias(model_name, "champion", "1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DOWN", json.dumps({"conn_type": "mlflow", "host": "http://127.0.0.1:9"})
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    run = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlops.operators.registry import PromoteModelOperator
        with DAG(dag_id="promote_unreachable", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            PromoteModelOperator(task_id="p", model_name="{model_name}", version="2", mlflow_conn_id="mlflow_down")
        """
    )
    assert run.task_states == {"p": "failed"}
    out = capfd.readouterr().out
    assert "MLflow at http://127.0.0.1:9" in out
    assert _alias(client, model_name) == "1"


def _promote_in_process(uri: str, name: str, version: str, expected: str | None) -> tuple[str, str | None]:
    from mlflow import MlflowClient

    from airflow_mlops.core.registry import RegistryConflict, promote

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        move = promote(client, name, version, expected_current=expected, origin={"task_id": f"w{version}"})
    except RegistryConflict as err:
        return "conflict", str(err)
    return "promoted", move.previous_version


def _race(uri: str, name: str, versions: list[str], expected: str | None) -> list[tuple[str, str | None]]:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(versions), mp_context=ctx) as pool:
        futures = [pool.submit(_promote_in_process, uri, name, v, expected) for v in versions]
        return [f.result(timeout=180) for f in futures]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_concurrent_promotions_with_compare_and_set_have_one_winner(mlflow_server, model_name):
    client = mlflow_server.client()
    versions = _make_versions(client, model_name, 9)
    client.set_registered_model_alias(model_name, "champion", "1")

    results = _race(mlflow_server.uri, model_name, versions[1:], expected="1")

    winners = [v for v, (status, _) in zip(versions[1:], results, strict=True) if status == "promoted"]
    assert len(winners) == 1, results
    assert all(prev == "1" for status, prev in results if status == "promoted")
    assert sum(status == "conflict" for status, _ in results) == 7
    assert _alias(client, model_name) == winners[0]
    assert [(e["version"], e["previous_version"]) for e in _history(client, model_name)] == [
        (winners[0], "1")
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_concurrent_promotions_without_expectation_lose_no_update(mlflow_server, model_name):
    client = mlflow_server.client()
    versions = _make_versions(client, model_name, 8)

    results = _race(mlflow_server.uri, model_name, versions, expected=None)

    assert all(status == "promoted" for status, _ in results), results
    history = _history(client, model_name)
    assert len(history) == 8
    # each move saw the one before it: a serial chain, no two moves replaced the same holder
    assert history[0]["previous_version"] is None
    for before, after in zip(history[:-1], history[1:], strict=True):
        assert after["previous_version"] == before["version"]
    assert sorted(prev for _, prev in results if prev) == sorted(e["version"] for e in history[:-1])
    assert _alias(client, model_name) == history[-1]["version"]
