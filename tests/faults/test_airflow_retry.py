"""The crash matrix's retries, by Airflow itself: a registry task with ``retries`` whose first try
loses the server half-way is retried by Airflow and its retry finishes the move; a task whose
decision is stale or whose settings are wrong fails at once, retries notwithstanding."""

from __future__ import annotations

import json

import pytest

from tests.faults.proxy import BEFORE, CrashPoint, FaultyClient
from tests.faults.scenario import check_invariants, holder, moves_of

pytestmark = pytest.mark.integration

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    {op}(task_id="{task_id}", model_name="{name}", mlflow_conn_id="mlflow_faults", retries=2, retry_delay=0,
         {args})
"""


@pytest.fixture
def crashing_hook(faults, monkeypatch):
    """Every ``MlflowHook`` of the run hands out one client that crashes the server at ``point``
    and restarts it right after the failed call (a server that came back before the retry)."""
    from airflow_mlops.hooks.mlflow import MlflowHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_FAULTS", json.dumps({"conn_type": "mlflow", "host": faults.server.uri})
    )
    state = {}

    def install(point: CrashPoint | None) -> FaultyClient:
        state["client"] = FaultyClient(faults.client, faults.server, point, restart=True)
        monkeypatch.setattr(MlflowHook, "get_conn", lambda self: state["client"])
        return state["client"]

    return install


def _tries(run, task_id: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()
        return ti.try_number


def _after(op: str, method: str) -> CrashPoint:
    from tests.faults.conftest import recorded_calls

    calls = recorded_calls()[op]
    index = calls.index(method) + 1
    return CrashPoint(index, calls[index], BEFORE, False)


@pytest.mark.parametrize(
    ("op", "args", "moved"),
    [
        ("promote", 'version="3", expected_current="2"', ("3", "2")),
        ("rollback", "", ("1", "2")),  # and not v2 -> v1 -> (first holder: fail)
    ],
)
def test_airflow_retries_a_move_that_lost_the_server_after_moving_the_alias(
    faults, crashing_hook, dag_runner, op, args, moved
):
    name = faults.model()
    faulty = crashing_hook(_after(op, "set_registered_model_alias"))
    operator = {"promote": "PromoteModelOperator", "rollback": "RollbackModelOperator"}[op]
    run = dag_runner.run(DAG.format(dag_id=f"faults_{op}", op=operator, task_id=op, name=name, args=args))
    assert faulty.fired
    assert run.task_states == {op: "success"}
    assert _tries(run, op) == 2  # the first try failed as retriable; Airflow's retry finished it
    version, previous = moved
    assert run.xcom(op) == {
        "model_name": name,
        "alias": "champion",
        "version": version,
        "previous_version": previous,
    }
    who = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": op, "map_index": -1}
    assert moves_of(check_invariants(faults.client, name), who) == [(op, version, previous)]


FAIL_FAST = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.operators.registry import PromoteModelOperator

with DAG(dag_id="faults_fail_fast", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    for task_id, name, kwargs in {cases!r}:
        PromoteModelOperator(task_id=task_id, model_name=name, mlflow_conn_id="mlflow_faults", retries=2,
                             retry_delay=0, **kwargs)
"""


def test_what_a_retry_cannot_fix_fails_at_once(faults, crashing_hook, dag_runner, capfd):
    cases = {
        "stale": ({"version": "3", "expected_current": "1"}, "PromotionConflict"),
        "bad_version": ({"version": "abc"}, "version: 'abc' is not a model version number"),
        "oversize_reason": ({"version": "3", "reason": "x" * 20_000}, "reason: 20,000 characters"),
    }
    names = {task_id: faults.model() for task_id in cases}
    crashing_hook(None)
    run = dag_runner.run(FAIL_FAST.format(cases=[(t, names[t], kw) for t, (kw, _) in cases.items()]))
    out = capfd.readouterr().out
    assert run.task_states == dict.fromkeys(cases, "failed")
    for task_id, (_, says) in cases.items():
        assert _tries(run, task_id) == 1, task_id  # retries=2, none used
        assert says in out
        assert holder(faults.client, names[task_id]) == "2"
        check_invariants(faults.client, names[task_id])
