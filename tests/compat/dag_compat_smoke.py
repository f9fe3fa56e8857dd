"""The compat smoke's DAG run: every heavy library the package drives, once, then promote -> rollback.

Copied into the dags folder of a fresh venv by ``tests/compat/smoke.py`` and run with
``airflow dags test``. The gate runs Great Expectations, the two trainings run the reference
entrypoint (MLflow's model format, scikit-learn) and register versions in the embedded MLflow
store, the drift sensor runs the statistics and Evidently's HTML report; then the alias moves
v1 -> v2 and rolls back to v1. ``check`` fails the run when any outcome is not the expected one,
so the exit code of ``airflow dags test`` is the verdict.
"""

from __future__ import annotations

import os

from airflow.sdk import dag, task

from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.operators.registry import PromoteModelOperator, RollbackModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.sensors.drift import DataDriftSensor

DATA = os.environ.get("MLOPS_SMOKE_DATA", "/nonexistent")
REPO = os.environ.get("MLOPS_SMOKE_REPO", "/nonexistent")
MODEL = "compat-smoke"


def _version(task_id: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='{task_id}')['model_version'] }}}}"


@dag(schedule=None, catchup=False, tags=["compat"])
def mlops_compat_smoke():
    gate = DataQualityGateOperator(
        task_id="gate", data=f"{DATA}/train.parquet", suite=f"{REPO}/include/expectations/churn.json"
    )
    train_a, train_b = (
        TrainModelOperator(
            task_id=f"train_{name}",
            entrypoint=f"{REPO}/include/training/train.py",
            train_data=f"{DATA}/train.parquet",
            validation_data=f"{DATA}/eval.parquet",
            registered_model_name=MODEL,
            hyperparameters={"model": "logistic_regression", "seed": seed},
        )
        for name, seed in (("a", 1), ("b", 2))
    )
    promote_a = PromoteModelOperator(task_id="promote_a", model_name=MODEL, version=_version("train_a"))
    promote_b = PromoteModelOperator(
        task_id="promote_b",
        model_name=MODEL,
        version=_version("train_b"),
        expected_current=_version("train_a"),
    )
    rollback = RollbackModelOperator(task_id="rollback", model_name=MODEL, reason="compat smoke")
    drift = DataDriftSensor(
        task_id="drift",
        reference=f"{DATA}/train.parquet",
        current=f"{DATA}/drifted.parquet",
        mode="poke",
        poke_interval=1,
        timeout=120,
    )

    @task
    def check(ti=None) -> dict:
        gate_summary = ti.xcom_pull(task_ids="gate")
        first, second = (ti.xcom_pull(task_ids=t)["model_version"] for t in ("train_a", "train_b"))
        back = ti.xcom_pull(task_ids="rollback")
        found = ti.xcom_pull(task_ids="drift")
        outcome = {
            "gate_success": gate_summary["success"],
            "versions": [str(first), str(second)],
            "rollback": {"version": str(back["version"]), "previous": str(back["previous_version"])},
            "drift_detected": found["drift_detected"],
        }
        expected = {
            "gate_success": True,
            "versions": outcome["versions"],
            "rollback": {"version": str(first), "previous": str(second)},
            "drift_detected": True,
        }
        print(f"compat smoke outcome: {outcome}")
        if outcome != expected or first == second:
            raise RuntimeError(f"compat smoke: expected {expected}, got {outcome}")
        return outcome

    gate >> train_a >> promote_a >> train_b >> promote_b >> rollback >> check()
    gate >> drift >> rollback


mlops_compat_smoke()
