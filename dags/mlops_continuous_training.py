"""
### mlops_continuous_training: validate, train, evaluate, (approve), promote

Retrains the model and promotes the new version only when it earns it:

1. **validate_train_data / validate_eval_data** -- Great Expectations quality gate on both inputs;
   broken data stops the run here (nothing is trained, nothing is promoted, even when forced).
2. **train** -- runs the training entrypoint on the chosen backend (the worker, SageMaker,
   Vertex AI or Azure ML) and registers a new MLflow model version with its lineage.
3. **evaluate** -- scores the new version and the current `@champion` on the same evaluation
   data; the candidate must beat the champion on the metric and meet the floors. The decision
   record is stored on the version; a rejected candidate ends the run here (`evaluate` skipped).
4. **decide_promotion** -- follows the verdict, or overrides it when `force_promote` is set (the
   override is recorded as *forced* in the promotion history), and chooses the approval path.
5. **request_approval** -- a human approves or rejects under *Browse > Required Actions*; a reject,
   or no answer within a day, skips the promotion. Taken when the deployment requires it
   (`MLOPS_REQUIRE_APPROVAL`, `[mlops] require_approval`: the form cannot switch it off), when the
   run asks for it, and for every forced promotion.
6. **promote** -- moves `@champion` with a compare-and-set against the champion the evaluation
   compared with, records who/why/previous holder/approver, and emits `x-mlflow://<model>@champion`.

**The form** chooses among what this file allows: data locations (within `[mlops]
allowed_data_roots`), the backend, its sizing (instance type and count, time limits), approval,
force and a reason. Interpreter, environment, image, role, connections and outputs come from the
settings below only (docs/security.md).

**When it runs:** on every drift or performance-degradation event from `mlops_drift_monitor`,
and weekly (Monday 04:00 UTC) whichever comes first; or from the UI with the form.

Adapt the settings at the top of the file (or set the environment variables they read).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Asset, Param, TriggerRule, dag, task

from airflow_mlops.assets import drift_asset_uri, performance_asset_uri
from airflow_mlops.backends.base import form_keys_schema
from airflow_mlops.operators.evaluation import EvaluateModelOperator
from airflow_mlops.operators.quality import DataQualityGateOperator
from airflow_mlops.operators.registry import PromoteModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.policy import RetrainingPolicy
from airflow_mlops.version_compat import (  # not in airflow.sdk on Airflow 3.1
    AssetOrTimeSchedule,
    CronTriggerTimetable,
)

# --- Settings a user adapts ----------------------------------------------------------------------
_PROJECT = Path(__file__).resolve().parents[1]  # the folder holding dags/ and include/
_AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))

MODEL_NAME = os.environ.get("MLOPS_MODEL_NAME", "churn")
"""Registered model name in MLflow."""
DATA_ROOT = os.environ.get("MLOPS_DATA_ROOT", os.path.join(_AIRFLOW_HOME, "demo-data"))
"""Where the data lives (a local folder or s3://, gs://, abfs:// prefix). Default: the demo stream."""
TRAIN_DATA = os.environ.get("MLOPS_TRAIN_DATA", f"{DATA_ROOT}/train.parquet")
"""Default training data of a scheduled run (a file or a folder of parquet/CSV parts)."""
EVAL_DATA = os.environ.get("MLOPS_EVAL_DATA", f"{DATA_ROOT}/eval.parquet")
"""Default labelled evaluation data: recent data neither model was trained on."""
POLICY = RetrainingPolicy.from_env().for_dags()
"""The retraining policy, shared with mlops_drift_monitor, the demo and `python -m airflow_mlops.backtest`
(which replays it on your own history before you switch it on). Its defaults were chosen by
measurement (docs/policy.md); change a field here, e.g. ``RetrainingPolicy.from_env(min_improvement=0.01)``,
or with its MLOPS_* environment variable. ``POLICY.training_windows`` is how much history a
retraining's ``train_data`` should hold (the demo passes that many recent windows)."""
TARGET = POLICY.target
QUALITY_SUITE = os.environ.get(
    "MLOPS_QUALITY_SUITE", str(_PROJECT / "include" / "expectations" / "churn.json")
)
ENTRYPOINT = os.environ.get("MLOPS_TRAINING_ENTRYPOINT", str(_PROJECT / "include" / "training" / "train.py"))
HYPERPARAMETERS = POLICY.training_params()
"""Passed to the entrypoint as --params (see docs/training.md): {"target": "label", "model":
"random_forest", "n_estimators": 100, "min_samples_leaf": 5, "seed": 42} by default (MLOPS_HYPERPARAMETERS)."""
METRIC = POLICY.metric
"""The metric a candidate must improve on the champion."""
MIN_IMPROVEMENT = POLICY.min_improvement
THRESHOLDS = dict(POLICY.thresholds)
"""Absolute floors every promoted model must meet ({"accuracy": 0.7} by default, MLOPS_THRESHOLDS)."""
BACKENDS = ["local", "sagemaker", "vertex_ai", "azure_ml"]
BACKEND_CONFIGS: dict[str, dict] = {
    "local": {},
    # e.g. {"role_arn": ..., "output_path": "s3://bucket/prefix", "instance_type": "ml.m5.large"}
    "sagemaker": json.loads(os.environ.get("MLOPS_SAGEMAKER_CONFIG", "{}")),
    # e.g. {"project_id": ..., "region": "europe-west1", "staging_bucket": "gs://bucket"}
    "vertex_ai": json.loads(os.environ.get("MLOPS_VERTEX_AI_CONFIG", "{}")),
    # e.g. {"compute": "cpu-cluster", "environment": "azureml:sklearn-1.5@latest"}
    "azure_ml": json.loads(os.environ.get("MLOPS_AZURE_ML_CONFIG", "{}")),
}
"""backend_config per backend (see docs/backends/): role, image, environment, connections, outputs.
The DAG author's side of the trust boundary: a run's form may only size the job (FORM_BACKEND_KEYS)."""
REQUIRE_APPROVAL = os.environ.get("MLOPS_REQUIRE_APPROVAL", "false").lower() in ("1", "true", "yes")
"""Every promotion of this DAG waits for a human approval; the form can ask for one, never waive it."""
APPROVAL_TIMEOUT = timedelta(hours=int(os.environ.get("MLOPS_APPROVAL_TIMEOUT_HOURS", "24")))
MLFLOW_CONN_ID = os.environ.get("MLOPS_MLFLOW_CONN_ID", "mlflow_default")
SCHEDULE_CRON = os.environ.get("MLOPS_RETRAIN_CRON", "0 4 * * 1")
"""The time-based fallback: retrain weekly even when nothing was detected; ``none``: only on the
drift and decay events."""
TIME_FALLBACK = SCHEDULE_CRON.strip().lower() not in ("", "none")
CANARY_GATE = os.environ.get("MLOPS_CANARY_GATE", "false").lower() in ("1", "true", "yes")
"""Gate the champion on a canary: `promote` moves `@challenger` instead, whose event starts
`mlops_deploy`; `@champion` moves when the canary holds (docs/deploy/index.md)."""
PROMOTE_ALIAS = "challenger" if CANARY_GATE else "champion"

# The events mlops_drift_monitor's sensors emit for this model.
# [START howto_asset_monitor_events]
DRIFT_ASSET = Asset(drift_asset_uri(MODEL_NAME))
PERFORMANCE_ASSET = Asset(performance_asset_uri(MODEL_NAME))
# [END howto_asset_monitor_events]
# -------------------------------------------------------------------------------------------------

# --- What a run's trigger form may choose (docs/security.md) ---------------------------------------
FORM_BACKEND_KEYS: list[str] | None = None
"""Backend settings the form may set, e.g. ["instance_type", "instance_count"] (None: every sizing
key of each backend; keys that choose code, identity or outputs are never allowed)."""
BACKEND_TITLES = {
    "local": "The Airflow worker (local)",
    "sagemaker": "Amazon SageMaker",
    "vertex_ai": "Google Vertex AI",
    "azure_ml": "Azure Machine Learning",
}
DOCS_URL = os.environ.get("MLOPS_DOCS_URL", "").rstrip("/")
"""Where this project's docs/ folder is published (links in the form); empty: paths, no links."""
# -------------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)
_PLAN = "ti.xcom_pull(task_ids='decide_promotion', key='plan')"
_APPROVER = "((ti.xcom_pull(task_ids='request_approval') or {}).get('responded_by_user') or {}).get('name')"


def _doc(page: str, text: str) -> str:
    return f"[{text}]({DOCS_URL}/{page})" if DOCS_URL else f"{text} (`docs/{page}`)"


@dag(
    dag_id="mlops_continuous_training",
    description="Quality gate -> train -> evaluate vs champion -> (approval) -> promote",
    schedule=(
        AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(SCHEDULE_CRON, timezone="UTC"),
            assets=(DRIFT_ASSET | PERFORMANCE_ASSET),
        )
        if TIME_FALLBACK
        else (DRIFT_ASSET | PERFORMANCE_ASSET)
    ),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "training", "continuous-training"],
    doc_md=__doc__,
    params={
        "train_data": Param(
            TRAIN_DATA,
            type="string",
            minLength=1,
            maxLength=2048,
            title="Training data",
            description="Path or URI (s3://, gs://, abfs://) of a parquet/CSV file or folder of parts. "
            "Only locations the deployment allows are read ([mlops] allowed_data_roots).",
        ),
        "eval_data": Param(
            EVAL_DATA,
            type="string",
            minLength=1,
            maxLength=2048,
            title="Evaluation data",
            description="Labelled recent data both the candidate and the champion are scored on "
            "(same rules as the training data).",
        ),
        "backend": Param(
            "local",
            type="string",
            enum=BACKENDS,
            values_display=BACKEND_TITLES,
            title="Where to train",
            description="Where the training job runs. Its role, image and outputs are set by the DAG.",
        ),
        "backend_config": Param(
            None,
            **form_keys_schema(BACKENDS, FORM_BACKEND_KEYS),
            title="Backend sizing",
            description_md="Optional sizing of the training job for the chosen backend, as JSON, e.g. "
            '`{"instance_type": "ml.m5.xlarge", "instance_count": 2}`. Only sizing keys are accepted '
            "(instance type and count, disk, time limits); image, role, environment and connections "
            "are set in the DAG file. Keys per backend: "
            + ", ".join(
                _doc(f"backends/{b}.md", BACKEND_TITLES[b]) for b in ("sagemaker", "vertex_ai", "azure_ml")
            )
            + "; the worker takes `timeout` only.",
            section="Advanced",
        ),
        "require_approval": Param(
            REQUIRE_APPROVAL,
            # nullable: the form then shows a plain switch, without the red "required" marker
            type=["boolean", "null"],
            title="Require a human approval",
            description="Wait under Required Actions for an Approve before promoting. When the "
            "deployment requires approvals, this switch cannot turn them off.",
        ),
        "force_promote": Param(
            False,
            type=["boolean", "null"],
            title="Force the promotion",
            description="Promote even if the evaluation rejects the candidate (the quality gate "
            "still applies). A forced promotion always waits for a human approval; it is recorded "
            "as forced, with the approver, in the promotion history.",
            section="Advanced",
        ),
        "reason": Param(
            None,
            # nullable: a plain string Param with an empty default makes the UI form demand a value
            type=["null", "string"],
            maxLength=5000,  # recorded in the registry's history (whose limit is 10,000)
            title="Reason",
            description="Why this retraining; recorded with the promotion and shown to the approver. "
            "Empty: what triggered the run.",
        ),
    },
)
def mlops_continuous_training():
    # [START howto_operator_quality_gate]
    gates = [
        DataQualityGateOperator(
            task_id=f"validate_{which}_data",
            data=f"{{{{ params.{which}_data }}}}",
            suite=QUALITY_SUITE,
            fail_on="critical",
            doc_md=f"""
            Validates the {which} data against the expectation suite (`{QUALITY_SUITE}`). Critical
            failures fail the task and stop the run (a forced promotion cannot skip this); warnings
            are logged and returned. The summary is the XCom; the HTML report is linked.
            """,
        )
        for which in ("train", "eval")
    ]
    # [END howto_operator_quality_gate]

    # [START howto_operator_train]
    train = TrainModelOperator(
        task_id="train",
        entrypoint=ENTRYPOINT,
        train_data="{{ params.train_data }}",
        validation_data="{{ params.eval_data }}",
        registered_model_name=MODEL_NAME,
        hyperparameters=HYPERPARAMETERS,
        backend="{{ params.backend }}",
        backend_configs=BACKEND_CONFIGS,  # the DAG's: role, image, environment, connections
        backend_overrides="{{ (params.backend_config or {}) | tojson }}",  # the form's: sizing only
        allowed_overrides=FORM_BACKEND_KEYS,
        mlflow_conn_id=MLFLOW_CONN_ID,
        doc_md="""
        Runs the training entrypoint on the chosen backend and registers the result as a new
        version of the model, tagged with data hashes, code version, params and this run's ids.
        The backend's settings are the DAG's; the form may only size the job (a forbidden key
        fails this task, naming it, before anything is read or started).
        Returns `{backend, job_id, console_url, run_id, model_uri, model_name, model_version, metrics}`.
        """,
    )
    # [END howto_operator_train]

    # [START howto_operator_evaluate]
    evaluate = EvaluateModelOperator(
        task_id="evaluate",
        model_name=MODEL_NAME,
        candidate_version="{{ ti.xcom_pull(task_ids='train')['model_version'] }}",
        eval_data="{{ params.eval_data }}",
        target=TARGET,
        metric=METRIC,
        min_improvement=MIN_IMPROVEMENT,
        thresholds=THRESHOLDS,
        bootstrap="promote",
        on_reject="skip",
        mlflow_conn_id=MLFLOW_CONN_ID,
        doc_md="""
        Scores the candidate and the current champion on the same evaluation data and decides
        (reasons in the log). The decision record is the XCom and is stored as tags on the
        candidate version. A rejected candidate leaves this task *skipped*.
        """,
    )
    # [END howto_operator_evaluate]

    # [START howto_decide_promotion]
    @task.branch(
        trigger_rule=TriggerRule.NONE_FAILED,
        doc_md="""
        Follows the evaluation verdict, or overrides a reject when the run's `force_promote` is
        set (`airflow_mlops.core.evaluation.promotion_plan`). Whether a human must approve is the
        deployment's requirement, or the form's request, or a forced promotion
        (`airflow_mlops.core.trust.approval_required`): the form can add an approval, never waive
        one. Pushes the plan and the approval request's text, and takes the approval path it
        names; with nothing to promote it skips everything after it.
        """,
    )
    def decide_promotion() -> str | None:
        from airflow.providers.common.compat.sdk import AirflowFailException
        from airflow.sdk import get_current_context

        from airflow_mlops.core.approval import approval_body
        from airflow_mlops.core.evaluation import plan_summary, promotion_plan, trigger_reason
        from airflow_mlops.core.trust import approval_required
        from airflow_mlops.hooks.mlflow import MlflowHook
        from airflow_mlops.trust import approval_policy

        context = get_current_context()
        ti, params, dag_run = context["ti"], context["params"], context.get("dag_run")
        record = ti.xcom_pull(task_ids="evaluate")
        if not record:
            raise AirflowFailException("evaluate left no decision record: nothing to promote")
        # {asset URI: [event extra, ...]}; an event emitted through an alias is also listed under its asset
        events = context.get("triggering_asset_events") or {}
        triggers = {a.uri: [e.extra for e in found] for a, found in events.items() if isinstance(a, Asset)}
        run_type = getattr(dag_run, "run_type", None)
        reason = params.get("reason") or trigger_reason(triggers, run_type, scheduled="weekly retraining")
        force = bool(params.get("force_promote"))
        user = getattr(dag_run, "triggering_user_name", None)
        policy = approval_policy()
        needed, why = approval_required(
            deployment_requires=REQUIRE_APPROVAL or policy.required,
            form_requests=bool(params.get("require_approval")),
            force=force,
            user=user,
            force_users=policy.force_users,
        )
        plan = promotion_plan(record, reason=reason, force=force, approval_required=needed)
        log.info("Promotion: %s (%s)", plan_summary(record, plan), why)
        if plan is None:
            return None
        ti.xcom_push(key="plan", value=plan)
        if not needed:
            return "no_approval_needed"
        hook, champion = (
            MlflowHook(mlflow_conn_id=MLFLOW_CONN_ID),
            (record.get("champion") or {}).get("version"),
        )
        body = approval_body(
            record,
            plan,
            model_name=MODEL_NAME,
            metric=METRIC,
            candidate_url=hook.model_version_url(MODEL_NAME, plan["version"]),
            champion_url=hook.model_version_url(MODEL_NAME, champion) if champion else None,
            requested_by=user,
            run_reason=reason,
            why_approval=why,
        )
        ti.xcom_push(key="approval_body", value=body)
        return "request_approval"

    # [END howto_decide_promotion]

    # [START howto_operator_approval]
    request_approval = ApprovalOperator(
        task_id="request_approval",
        subject=f"Promote {MODEL_NAME} v{{{{ {_PLAN}['version'] }}}} to @champion?",
        # markdown written by airflow_mlops.core.approval: metrics side by side, links to both
        # versions in MLflow, and the run's reason quoted so that it cannot forge a section
        body="{{ ti.xcom_pull(task_ids='decide_promotion', key='approval_body') }}",
        defaults="Reject",
        response_timeout=APPROVAL_TIMEOUT,
        # Airflow 3.3 can fail an approval answered within seconds of the request (before the
        # scheduler has seen the parked attempt exit, an Airflow 3.3 race); a retry asks again
        # instead of losing the run's training and evaluation.
        retries=1,
        retry_delay=timedelta(seconds=5),
        doc_md="""
        Human in the loop (when the deployment or the run requires it, and for every forced
        promotion): shows the evaluation under Required Actions. Approve promotes, and the
        approver is recorded in the promotion history; Reject, or no answer within the timeout,
        skips the promotion.
        """,
    )
    no_approval_needed = EmptyOperator(
        task_id="no_approval_needed",
        doc_md="Taken when the promotion does not require a human approval.",
    )
    # [END howto_operator_approval]

    # [START howto_operator_promote]
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        version=f"{{{{ {_PLAN}['version'] }}}}",
        alias=PROMOTE_ALIAS,
        # with the canary gate, the canary's start checks the champion the evaluation saw
        expected_current=None if CANARY_GATE else f"{{{{ {_PLAN}['expected_current'] }}}}",
        reason=f"{{{{ {_PLAN}['reason'] }}}}",
        forced=f"{{{{ {_PLAN}['forced'] }}}}",
        approved_by=f"{{{{ {_APPROVER} or '' }}}}",
        require_approval=REQUIRE_APPROVAL,
        mlflow_conn_id=MLFLOW_CONN_ID,
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        retries=3,  # a registry that was down or busy: the retry completes or undoes the move
        retry_delay=30,
        doc_md="""
        Moves `@champion` to the new version only if it still points at the version the evaluation
        compared against (compare-and-set), records the history (previous holder, reason, forced,
        who, approver) and emits the `x-mlflow://<model>@champion` Asset event a deployment DAG can
        use. Refuses a forced or approval-required promotion that has no recorded approver.
        """,
    )
    # [END howto_operator_promote]

    decision = decide_promotion()
    gates >> train >> evaluate >> decision >> [request_approval, no_approval_needed] >> promote


mlops_continuous_training()
