"""MlflowHook's registry methods on an embedded store (a real MLflow store in a temporary
folder; no server): the error mapping of moves, and the lookup that makes training registration
idempotent."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core import registry
from airflow_mlops.core import tags as tag_names
from airflow_mlops.exceptions import MlopsError, PromotionConflict, RegistryError
from airflow_mlops.hooks.mlflow import MlflowHook


@pytest.fixture
def hook(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return MlflowHook(mlflow_conn_id=None)


@pytest.mark.parametrize(
    ("raised", "expected", "retried"),
    [
        (registry.RegistryConflict("moved"), PromotionConflict, False),
        (registry.RegistryStateError("no such version"), RegistryError, False),
        (registry.RegistryInputError("version: 'x' is not"), RegistryError, False),
        (registry.RegistryBusy("could not lock"), MlopsError, True),
    ],
)
def test_moves_map_protocol_errors_to_what_airflow_should_do(monkeypatch, raised, expected, retried):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # never called

    def fail(*args, **kwargs):
        raise raised

    with pytest.raises(expected, match=str(raised)) as err:
        MlflowHook(mlflow_conn_id=None)._move(fail, "churn", "moving @champion of churn to v3")
    assert isinstance(err.value, AirflowFailException) is not retried


def _lineage(run_id: str, task_id: str = "train") -> dict[str, str]:
    return {
        tag_names.AIRFLOW_DAG_ID: "ct",
        tag_names.AIRFLOW_RUN_ID: run_id,
        tag_names.AIRFLOW_TASK_ID: task_id,
    }


def _register(client, name: str, lineage: dict[str, str], run_name: str) -> str:
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id, run_name=run_name)
    return str(
        client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=lineage
        ).version
    )


def test_find_version_finds_what_a_task_instance_registered(hook):
    client = hook.get_conn()
    for name in ("churn", "x'y\"z"):
        client.create_registered_model(name)
        _register(client, name, _lineage("manual__1"), "job-a")
        mine = _register(client, name, _lineage("manual__2"), "job-b-0")
        _register(client, name, _lineage("manual__2"), "job-b-1")  # map index 1 of the same task
        _register(client, name, _lineage("manual__2", task_id="other"), "job-c")

        origin = {"dag_id": "ct", "run_id": "manual__2", "task_id": "train"}
        found = hook.find_version(name, origin, run_name="job-b-0")
        assert found is not None and (found.name, str(found.version)) == (name, mine)
        assert str(hook.find_version(name, origin).version) == mine  # the first of the two
        assert hook.find_version(name, {**origin, "run_id": "manual__3"}) is None
        assert hook.find_version(name, {**origin, "run_id": None}) is None
    assert hook.find_version("churn", {"dag_id": "ct", "run_id": "it's", "task_id": "train"}) is None


def test_log_and_register_twice_for_one_task_instance_registers_once(hook, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    kwargs = dict(
        experiment="ct",
        run_name="ct-train-manual-1-abc",
        params={"C": 1},
        metrics={"accuracy": 0.9},
        tags=_lineage("manual__1"),
        model_dir=str(model_dir),
    )
    first = hook.log_and_register("churn", **kwargs)
    again = hook.log_and_register("churn", **kwargs)  # a retry, or a clear and re-run
    assert again == first
    assert [str(v.version) for v in hook.get_conn().search_model_versions("name = 'churn'")] == [first[2]]
    # what a retried train reads before it would start a second job
    origin = {"dag_id": "ct", "run_id": "manual__1", "task_id": "train"}
    earlier = hook.earlier_registration("churn", origin, run_name="ct-train-manual-1-abc")
    assert (earlier.run_id, earlier.experiment_id, earlier.version) == first
    assert earlier.tags[tag_names.AIRFLOW_RUN_ID] == "manual__1"
    assert hook.earlier_registration("churn", {**origin, "run_id": "manual__9"}) is None
    other = hook.log_and_register("churn", **{**kwargs, "tags": _lineage("manual__2")})
    assert other[2] != first[2]  # another task instance: a new version
    untagged = hook.log_and_register("churn", **{**kwargs, "tags": {}})
    assert untagged[2] not in (first[2], other[2])  # no task instance named: never deduplicated
