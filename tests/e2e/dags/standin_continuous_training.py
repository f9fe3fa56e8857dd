"""Stand-in for dags/mlops_continuous_training.py, used by the UI and native-stack tests only
while the reference DAG is not in dags/ yet: same dag_id, same form fields that matter to the UI
(backend enum, require_approval), a real model trained and registered in MLflow, an Airflow
ApprovalOperator, and the real PromoteModelOperator with its MLflow extra link."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, task

from airflow_mlops.operators.registry import PromoteModelOperator

MODEL_NAME = "churn-classifier"


@dag(
    dag_id="mlops_continuous_training",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlops", "stand-in"],
    params={
        "backend": Param("local", type="string", enum=["local", "sagemaker", "vertex_ai", "azure_ml"]),
        "require_approval": Param(False, type="boolean"),
        "reason": Param("retraining from the UI", type="string"),
    },
)
def standin_continuous_training():
    @task
    def train(params=None) -> dict:
        import mlflow
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        from airflow_mlops.hooks.mlflow import MlflowHook

        hook = MlflowHook()
        with hook.session():
            mlflow.set_experiment(MODEL_NAME)
            rng = np.random.default_rng(0)
            x = rng.normal(size=(60, 3))
            y = (x[:, 0] > 0).astype(int)
            with mlflow.start_run() as run:
                model = LogisticRegression().fit(x, y)
                mlflow.log_metric("accuracy", float(model.score(x, y)))
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            version = mlflow.register_model(info.model_uri, MODEL_NAME)
        return {"model_name": MODEL_NAME, "model_version": str(version.version), "run_id": run.info.run_id,
                "backend": params["backend"]}

    @task.branch
    def needs_approval(params=None) -> str:
        return "approve" if params["require_approval"] else "promote"

    approve = ApprovalOperator(
        task_id="approve",
        subject="Promote {{ ti.xcom_pull('train')['model_name'] }} v{{ ti.xcom_pull('train')['model_version'] }}?",
        body="Stand-in DAG: approve to move @champion.",
    )
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        version="{{ ti.xcom_pull('train')['model_version'] }}",
        reason="{{ params.reason }}",
        trigger_rule="none_failed_min_one_success",
    )
    trained = train()
    branch = needs_approval()
    trained >> branch >> [approve, promote]
    approve >> promote


standin_continuous_training()
