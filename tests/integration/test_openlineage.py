"""OpenLineage events of a real DAG run, read back from the provider's file transport.

One DAG (gate -> train -> evaluate -> promote -> rollback -> drift sensor, and a gate that fails)
runs in real Airflow (``dag.test()``) against a real MLflow server, with
``apache-airflow-providers-openlineage`` configured to write its events to a file. Each task's
COMPLETE (or FAIL) event is then checked field by field: event type, job, inputs and outputs
(namespaces, names) and their facets.

The provider's plugin registers its listener once per process, when Airflow first loads plugins;
in a test session that may have happened before this test set the transport, so the test adds the
provider's own listener to the task runner's listener manager itself (and removes it after), and
emits in a thread (``execute_in_thread``) rather than by forking the pytest process. Everything
between the task and the file is the provider's: its listener, extractor manager, adapter and
transport.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

ENTRYPOINT = REPO / "include" / "training" / "train.py"
JOB_NAMESPACE = "mlops-lineage-test"
DAG_ID = "ol_lineage"


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(loc=shift, size=n)
    x2 = rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    label = (1.5 * x1 - x2 + (plan == "pro") * 1.2 + rng.normal(scale=0.6, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "label": label})


@pytest.fixture
def data(tmp_path) -> dict[str, str]:
    make_frame(300, 1).to_parquet(tmp_path / "train.parquet")
    make_frame(150, 2).to_csv(tmp_path / "eval.csv", index=False)
    make_frame(200, 3, shift=3.0).to_parquet(tmp_path / "window.parquet")  # x1 drifted
    return {
        k: str(tmp_path / f)
        for k, f in (("train", "train.parquet"), ("eval", "eval.csv"), ("window", "window.parquet"))
    }


@pytest.fixture
def champion(mlflow_server, model_name) -> str:
    """Version 1, a model that always predicts 0, holding @champion (registered as a user would)."""
    from sklearn.dummy import DummyClassifier

    from airflow_mlops.hooks.mlflow import MlflowHook
    from tests.integration.operators.test_evaluation import register

    with MlflowHook().session() as client:
        version = register(
            client, model_name, DummyClassifier(strategy="constant", constant=0), make_frame(50, 9)
        )
        client.set_registered_model_alias(model_name, "champion", version)
    return version


@pytest.fixture
def openlineage_file(tmp_path, monkeypatch) -> Path:
    """The provider's file transport, on; yields the events file."""
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener
    from airflow.sdk.listener import get_listener_manager

    # Plugins load now, before the transport is set: the listener below is the only one.
    manager = get_listener_manager()
    assert not any(isinstance(p, OpenLineageListener) for p in manager.pm.get_plugins())
    events = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", JOB_NAMESPACE)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT", "60")
    listener = OpenLineageListener()
    manager.add_listener(listener)
    yield events
    manager.pm.unregister(listener)


SUITE = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x1"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "plan", "value_set": ["basic", "plus", "pro"]}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x2", "min_value": 5}, "severity": "warning"},
]  # fmt: skip
PARAMS = {"target": "label", "model": "random_forest", "n_estimators": 10, "max_depth": 3, "seed": 7}

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlops.operators.evaluation import EvaluateModelOperator
from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.sensors.drift import DataDriftSensor

NAME = {name!r}
with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    gate = DataQualityGateOperator(task_id="gate", data={train!r}, suite={suite!r})
    train = TrainModelOperator(task_id="train", entrypoint={entrypoint!r}, train_data={train!r},
                               validation_data={eval!r}, registered_model_name=NAME, hyperparameters={params!r})
    evaluate = EvaluateModelOperator(
        task_id="evaluate", model_name=NAME, eval_data={eval!r}, target="label", metric="f1",
        candidate_version="{{{{ ti.xcom_pull(task_ids='train')['model_version'] }}}}")
    promote = PromoteModelOperator(
        task_id="promote", model_name=NAME, reason="won the evaluation",
        version="{{{{ ti.xcom_pull(task_ids='evaluate')['candidate']['version'] }}}}",
        expected_current="{{{{ ti.xcom_pull(task_ids='evaluate')['champion']['version'] }}}}")
    rollback = RollbackModelOperator(task_id="rollback", model_name=NAME, reason="canary failed")
    drift = DataDriftSensor(task_id="drift", reference={train!r}, current={window!r}, model_name=NAME,
                            mode="poke", poke_interval=1, timeout=60, report=False)
    gate >> train >> evaluate >> promote >> rollback >> drift
    # the same suite with fail_on="warning": the task fails, its FAIL event still holds the assertions
    DataQualityGateOperator(task_id="strict_gate", data={train!r}, suite={suite!r}, fail_on="warning")
"""


def test_every_task_reports_its_lineage(
    dag_runner, mlflow_server, model_name, data, champion, openlineage_file, capfd
):
    run = dag_runner.run(
        DAG.format(
            name=model_name, dag_id=DAG_ID, suite=SUITE, entrypoint=str(ENTRYPOINT), params=PARAMS, **data
        )
    )
    logs = capfd.readouterr()
    tasks = ["gate", "train", "evaluate", "promote", "rollback", "drift"]
    states = {**dict.fromkeys(tasks, "success"), "strict_gate": "failed"}
    assert run.task_states == states, (logs.out + logs.err)[-4000:]

    events = [json.loads(line) for line in openlineage_file.read_text().splitlines()]
    by_task: dict[str, dict[str, dict]] = {}
    for event in events:
        assert event["job"]["namespace"] == JOB_NAMESPACE
        by_task.setdefault(event["job"]["name"], {})[event["eventType"]] = event
    assert set(by_task) == {f"{DAG_ID}.{t}" for t in states}
    for task in tasks:
        assert set(by_task[f"{DAG_ID}.{task}"]) == {"START", "COMPLETE"}, task
    assert set(by_task[f"{DAG_ID}.strict_gate"]) == {"START", "FAIL"}
    complete = {t: by_task[f"{DAG_ID}.{t}"]["COMPLETE"] for t in tasks}
    for task, event in complete.items():
        assert event["run"]["facets"]["parent"]["job"]["name"] == DAG_ID  # the DAG run is the parent
        assert event["run"]["facets"]["airflow"]["task"]["task_id"] == task

    registry = mlflow_server.uri  # http://127.0.0.1:<port>
    trained, decided = run.xcom("train"), run.xcom("evaluate")
    new = trained["model_version"]
    schema = "urn:airflow-mlops:0.1.0:openlineage:facets.json#/$defs/"

    def datasets(event: dict, side: str) -> list[tuple[str, str]]:
        return [(d["namespace"], d["name"]) for d in event[side]]

    def facet(dataset: dict, key: str, where: str = "facets") -> dict:
        return {k: v for k, v in dataset[where][key].items() if k not in ("_producer", "_schemaURL")}

    # -- the gate: the training data with one assertion per expectation and its row count
    gate = complete["gate"]
    assert datasets(gate, "inputs") == [("file", data["train"])] and gate["outputs"] == []
    [checked] = gate["inputs"]
    assert facet(checked, "dataQualityMetrics", "inputFacets") == {"columnMetrics": {}, "rowCount": 300}
    assertions = facet(checked, "dataQualityAssertions", "inputFacets")["assertions"]
    assert [(a["assertion"], a["column"], a["success"], a["severity"]) for a in assertions] == [
        ("expect_column_values_to_not_be_null", "x1", True, "error"),
        ("expect_column_values_to_be_in_set", "plan", True, "error"),
        ("expect_column_mean_to_be_between", "x2", False, "warn"),
    ]
    assert [a["params"] for a in assertions] == [
        {"gxSeverity": s} for s in ("critical", "critical", "warning")
    ]
    assert assertions[0]["actual"] == "0 of 300 unexpected"
    strict = by_task[f"{DAG_ID}.strict_gate"]["FAIL"]
    assert datasets(strict, "inputs") == [("file", data["train"])]
    strict_assertions = facet(strict["inputs"][0], "dataQualityAssertions", "inputFacets")["assertions"]
    assert [(a["success"], a["severity"]) for a in strict_assertions] == [(True, "error")] * 2 + [
        (False, "error")
    ]
    assert {
        k: strict["run"]["facets"]["mlops_qualityGate"][k] for k in ("success", "failOn", "blocking")
    } == {
        "success": False,
        "failOn": "warning",
        "blocking": 1,
    }
    gate_facet = gate["run"]["facets"]["mlops_qualityGate"]
    assert gate_facet["_schemaURL"] == schema + "MlopsQualityGateRunFacet"
    assert {k: gate_facet[k] for k in ("success", "failOn", "evaluated", "failed", "blocking")} == {
        "success": True,
        "failOn": "critical",
        "evaluated": 3,
        "failed": 1,
        "blocking": 0,
    }
    assert gate_facet["reportUri"] == run.xcom("gate")["report_uri"]

    # -- training: data in (with content hashes), the registered version out
    train = complete["train"]
    assert datasets(train, "inputs") == [("file", data["train"]), ("file", data["eval"])]
    from airflow_mlops.io import hash_table

    assert [d["facets"]["version"]["datasetVersion"] for d in train["inputs"]] == [
        hash_table(data["train"]),
        hash_table(data["eval"]),
    ]
    assert datasets(train, "outputs") == [(registry, f"models/{model_name}/{new}")]
    [model] = train["outputs"]
    assert facet(model, "version") == {"datasetVersion": new}
    assert facet(model, "datasetType") == {"datasetType": "MODEL"}
    assert facet(model, "mlops_modelVersion") == {
        "modelName": model_name,
        "version": new,
        "modelUri": f"models:/{model_name}/{new}",
        "runId": trained["run_id"],
        "metrics": trained["metrics"],
    }
    assert {k: v for k, v in train["run"]["facets"]["mlops_training"].items() if k != "_producer"} == {
        "_schemaURL": schema + "MlopsTrainingRunFacet",
        "backend": "local",
        "jobId": trained["job_id"],
        "mlflowRunId": trained["run_id"],
    }

    # -- evaluation: data, candidate and champion in; the decision
    evaluate = complete["evaluate"]
    assert datasets(evaluate, "inputs") == [
        ("file", data["eval"]),
        (registry, f"models/{model_name}/{new}"),
        (registry, f"models/{model_name}/{champion}"),
    ]
    assert evaluate["outputs"] == []
    decision = {k: v for k, v in evaluate["run"]["facets"]["mlops_evaluation"].items() if k != "_producer"}
    assert decision == {
        "_schemaURL": schema + "MlopsEvaluationRunFacet",
        "decision": "promote",
        "metric": "f1",
        "reasons": decided["reasons"],
        "candidate": {"version": new, "metrics": decided["candidate"]["metrics"]},
        "champion": {"version": champion, "metrics": decided["champion"]["metrics"]},
    }
    assert decided["champion"]["metrics"]["f1"] == 0.0 < decided["candidate"]["metrics"]["f1"]

    # -- promotion then rollback: the version in, the alias out, the move described
    for task, now, before, reason in (
        ("promote", new, champion, "won the evaluation"),
        ("rollback", champion, new, "canary failed"),
    ):
        event = complete[task]
        assert datasets(event, "inputs") == [(registry, f"models/{model_name}/{now}")], task
        assert datasets(event, "outputs") == [(registry, f"models/{model_name}@champion")], task
        [alias] = event["outputs"]
        assert facet(alias, "version") == {"datasetVersion": now}
        assert facet(alias, "mlops_aliasMove") == {
            "action": task,
            "alias": "champion",
            "version": now,
            "previousVersion": before,
            "changed": True,
            "reason": reason,
        }
    assert str(mlflow_server.client().get_model_version_by_alias(model_name, "champion").version) == champion

    # -- drift: reference and current in (row counts), the verdict
    drift = complete["drift"]
    assert datasets(drift, "inputs") == [("file", data["train"]), ("file", data["window"])]
    assert [facet(d, "dataQualityMetrics", "inputFacets")["rowCount"] for d in drift["inputs"]] == [300, 200]
    verdict = drift["run"]["facets"]["mlops_drift"]
    summary = run.xcom("drift")
    assert verdict["driftDetected"] is True
    assert verdict["driftShare"] == summary["drift_share"]
    assert verdict["driftShareThreshold"] == 0.5
    assert verdict["driftedColumns"] == summary["drifted_columns"]
    assert set(verdict["columns"]) == {"x1", "x2", "plan", "label"}
    assert verdict["columns"]["x1"]["drifted"] is True
    assert verdict["assetUri"] == f"x-mlops://drift/{model_name}"
