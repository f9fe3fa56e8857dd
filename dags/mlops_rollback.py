"""
### mlops_rollback: put the previous champion back, in one click

Manual only. Trigger it from the UI ("Trigger DAG" opens the form) when the model that the last
retraining promoted misbehaves in production. With no version given, the `champion` alias goes back
to the version it held before the current one (read from the promotion history that
`mlops_continuous_training` records on the registered model); a second rollback walks one more step
back. With a version, the alias goes exactly there. The rollback is recorded in the same history
as promotions (who, when, why, from which version), and emits the `x-mlflow://<model>@champion` Asset
event so a deployment DAG scheduled on it redeploys.

Adapt the settings at the top of the file (or set the environment variables they read).
"""

from __future__ import annotations

import os

from airflow.sdk import Param, dag

from airflow_mlops.operators.registry import RollbackModelOperator

# --- Settings a user adapts ----------------------------------------------------------------------
MODEL_NAME = os.environ.get("MLOPS_MODEL_NAME", "churn")
"""Registered model name in MLflow (the same as in mlops_continuous_training)."""
ROLLBACK_MODELS = [
    m.strip() for m in os.environ.get("MLOPS_ROLLBACK_MODELS", MODEL_NAME).split(",") if m.strip()
]
"""The registered models this DAG's form may roll back (the form offers only these)."""
ALIAS = os.environ.get("MLOPS_CHAMPION_ALIAS", "champion")
MLFLOW_CONN_ID = os.environ.get("MLOPS_MLFLOW_CONN_ID", "mlflow_default")
"""MLflow connection; without one, MLFLOW_TRACKING_URI or the embedded store under AIRFLOW_HOME."""
# -------------------------------------------------------------------------------------------------


@dag(
    dag_id="mlops_rollback",
    description="Point the champion alias back at the previous version (or a chosen one)",
    schedule=None,
    catchup=False,
    tags=["mlops", "registry", "rollback"],
    doc_md=__doc__,
    params={
        "model_name": Param(
            ROLLBACK_MODELS[0],
            type="string",
            enum=ROLLBACK_MODELS,
            title="Registered model name",
            description=f"The MLflow registered model whose @{ALIAS} alias goes back.",
        ),
        "version": Param(
            None,
            type=["null", "string"],
            pattern=r"^([1-9][0-9]{0,8})?$",
            title="Version to roll back to",
            description="A version number such as 3. Leave empty to go back to the version that held "
            "the alias before the current one.",
        ),
        "reason": Param(
            "manual rollback",
            type="string",
            minLength=1,
            maxLength=5000,  # recorded in the registry's history (whose limit is 10,000)
            title="Reason",
            description="Recorded in the promotion history on the registered model.",
        ),
    },
)
def mlops_rollback():
    # [START howto_operator_rollback]
    RollbackModelOperator(
        task_id="rollback",
        model_name="{{ params.model_name }}",
        alias=ALIAS,
        to_version="{{ params.version or '' }}",
        reason="{{ params.reason }}",
        mlflow_conn_id=MLFLOW_CONN_ID,
        retries=3,  # a registry that was down or busy: the retry completes or undoes the move
        retry_delay=30,
        doc_md="""
        Moves `@champion` back: to the chosen version, else to the holder before the current one as
        recorded in the promotion history. Fails with a clear message when there is no history to
        walk back (the current champion was the first one). Re-running this task instance does not
        walk further back. The extra link opens the version now serving in the MLflow UI.
        """,
    )
    # [END howto_operator_rollback]


mlops_rollback()
