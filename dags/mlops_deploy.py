"""
### mlops_deploy: canary rollout of the candidate, with automatic rollback

A new version earns full traffic step by step. Each run of this DAG advances the rollout by at
most one step; the rollout itself lives in the MLflow registry (`@canary`, the canary alias's
history events with their shares), so runs, retries and restarts all pick up where it is:

1. **start_canary** -- when `@challenger` holds a version that is neither the champion nor was
   canaried before, it goes out on the first step's share (e.g. 10 %) against `@champion`.
   Otherwise the task ends *skipped* and says why. Before the first training run registers
   the model, every step is skipped the same way, and so is **score**.
2. **analyse** -- compares the canary arm with the control arm on the same period's labelled
   outcomes (and the endpoint's alarms): `continue`, `promote`, `rollback` or `wait`, with reasons
   (an always-valid sequential test: repeated analyses never raise its false-rollback rate above
   `ALPHA`).
3. **decide_rollout** -- turns the verdict into the next move: **step** up to the next share,
   **promote** (after **request_approval** when the plan asks for it): the candidate takes all
   traffic and becomes `@champion` (compare-and-set against the champion it was compared with),
   or **abort**: all traffic back on the champion at once, the reason recorded, `@champion`
   untouched. With no canary running and a target that does not serve the champion (after a
   rollback of a finished rollout), **abort** puts the traffic back on `@champion`.
4. **recover** -- when a step or the promotion fails for good, the canary is aborted.
5. **score** (the `batch` target) -- scores the day's data with the versions now serving: the
   canary's share of customers (by a hash of their id, stable for the whole rollout) with the
   candidate, the rest with the champion; every prediction carries its version and arm.

**When it runs:** when `@challenger` or `@champion` moves (the training DAG's promotion, a
rollback), and daily, when the day's outcomes are in. From the UI the form can pick the steps
among the allowed plans, a bake time within bounds, ask for an approval, or abort with a reason;
the target, its endpoint and identities come from this file only.

Adapt the settings at the top of the file (or set the environment variables they read).
"""

from __future__ import annotations

import json
import logging
import os

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Asset, Param, TriggerRule, dag, task

from airflow_mlops.assets import model_alias_uri
from airflow_mlops.core import tags
from airflow_mlops.operators.canary import BatchScoreOperator, CanaryAnalysisOperator
from airflow_mlops.operators.deploy import (
    AbortCanaryOperator,
    CanaryStepOperator,
    PromoteCanaryOperator,
    StartCanaryOperator,
)
from airflow_mlops.policy import RetrainingPolicy
from airflow_mlops.version_compat import (  # not in airflow.sdk on 3.1
    AssetOrTimeSchedule,
    CronTriggerTimetable,
)

# --- Settings a user adapts ----------------------------------------------------------------------
_AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))

MODEL_NAME = os.environ.get("MLOPS_MODEL_NAME", "churn")
"""Registered model name in MLflow (the same as in mlops_continuous_training)."""
DATA_ROOT = os.environ.get("MLOPS_DATA_ROOT", os.path.join(_AIRFLOW_HOME, "demo-data"))
TARGET = os.environ.get("MLOPS_DEPLOY_TARGET", "batch")
"""Where the model serves: batch (on the worker), sagemaker, vertex_ai or azure_ml (docs/deploy/)."""
ID_COLUMN = os.environ.get("MLOPS_ID_COLUMN", "customer_id")
"""The entity id: the batch target puts each entity on an arm by its hash."""
TARGET_CONFIGS: dict[str, dict] = {
    "batch": {"predictions": f"{DATA_ROOT}/predictions", "id_column": ID_COLUMN},
    # e.g. {"endpoint_name": "churn", "role_arn": ..., "image_uri": ...,
    #       "model_data": "s3://bucket/models/churn/{version}/model.tar.gz", "alarms": ["churn-5xx", "churn-latency"]}
    "sagemaker": json.loads(os.environ.get("MLOPS_SAGEMAKER_DEPLOY_CONFIG", "{}")),
    # e.g. {"project_id": ..., "region": "europe-west1", "endpoint_id": "1234",
    #       "artifact_uri": "gs://bucket/models/churn/{version}", "serving_container_image_uri": ...}
    "vertex_ai": json.loads(os.environ.get("MLOPS_VERTEX_AI_DEPLOY_CONFIG", "{}")),
    # e.g. {"endpoint_name": "churn", "instance_type": "Standard_DS3_v2"}
    "azure_ml": json.loads(os.environ.get("MLOPS_AZURE_ML_DEPLOY_CONFIG", "{}")),
}
"""target_config per target (docs/deploy/<target>.md): endpoints, variants and roles live here."""
SCORING_DATA = os.environ.get("MLOPS_SCORING_DATA", f"{DATA_ROOT}/scoring/{{{{ ds }}}}.parquet")
"""The batch target's input of the day (a Jinja template: ``{{ ds }}`` is the run's date)."""
OUTCOMES = os.environ.get(
    "MLOPS_CANARY_OUTCOMES",
    f"{DATA_ROOT}/scoring/{{batch}}.parquet"
    if TARGET == "batch"
    else f"{DATA_ROOT}/outcomes/{{{{ ds }}}}.parquet",
)
"""Labelled outcomes. batch: a template of each scored batch's labels (``{batch}``: the batch
name), joined by id; an endpoint: a table of its captured predictions with their labels and the
variant that answered."""
POLICY = RetrainingPolicy.from_env()
LABEL = POLICY.target
STEP_PLANS = ["10,50,100", "5,25,50,100", "10,100", "50,100"]
"""The rollout plans the form may choose from (canary shares in percent; 100 is the completion)."""
BAKE_MINUTES = int(os.environ.get("MLOPS_CANARY_BAKE_MINUTES", "60"))
"""Least time on each step before the analysis may move on (the form may choose within bounds)."""
BAKE_BOUNDS = (int(os.environ.get("MLOPS_CANARY_MIN_BAKE_MINUTES", "0")), 7 * 24 * 60)
METRIC = os.environ.get("MLOPS_CANARY_METRIC", "accuracy")
"""Per-outcome metric the arms are compared on: accuracy, error_rate, mae or mse."""
MIN_SAMPLES = int(os.environ.get("MLOPS_CANARY_MIN_SAMPLES", "200"))
"""Labelled outcomes each arm needs before a verdict (bench/canary.py: how many catch a drop)."""
ALPHA = float(os.environ.get("MLOPS_CANARY_ALPHA", "0.05"))
"""The most the analysis ever rolls back a canary that is as good as the champion."""
TOLERANCE = float(os.environ.get("MLOPS_CANARY_TOLERANCE", "0.01"))
"""How much worse than the champion (in metric units) the canary may be."""
REQUIRE_APPROVAL = os.environ.get("MLOPS_CANARY_REQUIRE_APPROVAL", "false").lower() in ("1", "true", "yes")
"""Ask a human before full traffic (the form can add the approval, not remove it)."""
MLFLOW_CONN_ID = os.environ.get("MLOPS_MLFLOW_CONN_ID", "mlflow_default")
SCHEDULE_CRON = os.environ.get("MLOPS_DEPLOY_CRON", "0 7 * * *")
"""The daily analysis, once the day's outcomes are in."""
# -------------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)
FORM_PARAMS = ("steps", "bake_minutes", "require_approval", "abort", "reason")
"""What a run's conf may hold: the form below, nothing else (docs/deploy/index.md)."""
_ANALYSIS = "ti.xcom_pull(task_ids='analyse')"


def _only_after_an_analysis(context) -> None:
    """``recover`` fires on ONE_FAILED, which also counts the moves that never ran because a task
    before the analysis failed (a refused form, a failed start): nothing was decided, so nothing
    is aborted, and the run fails on the task that did fail."""
    from airflow.providers.common.compat.sdk import AirflowSkipException

    if not context["ti"].xcom_pull(task_ids="analyse"):
        raise AirflowSkipException("no analysis ran in this run: no move was decided, nothing to recover")


_MOVE_ARGS = {
    "model_name": MODEL_NAME,
    "target": TARGET,
    "target_config": TARGET_CONFIGS[TARGET],
    "mlflow_conn_id": MLFLOW_CONN_ID,
}


@dag(
    dag_id="mlops_deploy",
    description="Canary rollout of @challenger against @champion, with automatic rollback",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SCHEDULE_CRON, timezone="UTC"),
        assets=(
            Asset(model_alias_uri(MODEL_NAME, tags.CANDIDATE_ALIAS))
            | Asset(model_alias_uri(MODEL_NAME, "champion"))
        ),
    ),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "deploy", "canary"],
    doc_md=__doc__,
    params={
        "steps": Param(STEP_PLANS[0], type="string", enum=STEP_PLANS, title="Rollout steps (% of traffic)"),
        "bake_minutes": Param(
            BAKE_MINUTES,
            type="integer",
            minimum=BAKE_BOUNDS[0],
            maximum=BAKE_BOUNDS[1],
            title="Bake time per step (minutes)",
        ),
        "require_approval": Param(
            REQUIRE_APPROVAL,
            type="boolean",
            title="Require a human approval before full traffic",
            description="Adds an approval; one the DAG requires cannot be removed here.",
        ),
        "abort": Param(False, type="boolean", title="Abort the running canary"),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=5000,
            title="Reason",
            description="Recorded with the move.",
        ),
    },
)
def mlops_deploy():
    @task(
        doc_md="""
        The trust boundary: a run's conf may only hold this form's params. A key that would choose
        the target, an endpoint, an identity or the analysis policy is refused, named, before
        anything moves (`airflow_mlops.core.trust.conf_refusal`).
        """
    )
    def check_form() -> None:
        from airflow.sdk import get_current_context

        from airflow_mlops.core.trust import conf_refusal
        from airflow_mlops.exceptions import ForbiddenInputError

        dag_run = get_current_context().get("dag_run")
        refusal = conf_refusal(getattr(dag_run, "conf", None), FORM_PARAMS, dag="mlops_deploy")
        if refusal:
            raise ForbiddenInputError(refusal)

    # [START howto_operator_start_canary]
    start_canary = StartCanaryOperator(
        task_id="start_canary",
        **_MOVE_ARGS,
        steps="{{ params.steps }}",
        bake_seconds="{{ params.bake_minutes * 60 }}",
        metric=METRIC,
        min_samples=MIN_SAMPLES,
        alpha=ALPHA,
        tolerance=TOLERANCE,
        require_approval=f"{{{{ params.require_approval or {REQUIRE_APPROVAL} }}}}",
        reason="{{ params.reason or 'a new candidate holds @challenger' }}",
        retries=3,  # a registry or endpoint that was down: the retry resumes the recorded intent
        retry_delay=30,
        doc_md="""
        Starts a canary of `@challenger` at the first step's share against `@champion` when there is
        a new candidate; otherwise ends skipped and says why. Endpoints are prepared (the candidate
        deployed with no traffic) and waited for in the triggerer before the traffic moves.
        """,
    )
    # [END howto_operator_start_canary]

    # [START howto_operator_canary_analysis]
    analyse = CanaryAnalysisOperator(
        task_id="analyse",
        model_name=MODEL_NAME,
        target=TARGET,
        target_config=TARGET_CONFIGS[TARGET],
        outcomes=OUTCOMES,
        label_column=LABEL,
        mlflow_conn_id=MLFLOW_CONN_ID,
        trigger_rule=TriggerRule.NONE_FAILED,
        doc_md="""
        Compares the canary arm with the control arm on their labelled outcomes (and the endpoint's
        alarms) and returns the verdict with its reasons; stored on the candidate version too.
        """,
    )
    # [END howto_operator_canary_analysis]

    @task.branch(
        trigger_rule=TriggerRule.NONE_FAILED,
        doc_md="""
        Turns the analysis into the run's move (`airflow_mlops.core.canary.run_decision`): step up,
        promote (through the approval when the plan asks for one), abort, sync the target with
        `@champion`, or nothing.
        """,
    )
    def decide_rollout() -> str | None:
        from airflow.sdk import get_current_context

        from airflow_mlops.core.canary import run_decision

        context = get_current_context()
        params = context["params"]
        analysis = context["ti"].xcom_pull(task_ids="analyse") or {}
        decision = run_decision(analysis, abort_requested=bool(params["abort"]), reason=params.get("reason"))
        log.info("Rollout: %s; %s", decision.action or "nothing to do", " ".join(decision.reasons))
        if decision.action is None:
            return None
        if decision.action == "promote":
            return (
                "request_approval"
                if decision.approval or params["require_approval"]
                else "no_approval_needed"
            )
        return "abort" if decision.action == "sync" else decision.action

    # [START howto_operator_canary_moves]
    step = CanaryStepOperator(
        task_id="step",
        **_MOVE_ARGS,
        rollout=f"{{{{ {_ANALYSIS}['rollout'] }}}}",
        reason=f"{{{{ {_ANALYSIS}['reasons'] | join(' ') }}}}",
        retries=3,
        retry_delay=30,
        doc_md="Moves the canary to the plan's next share; the registry records the step.",
    )
    request_approval = ApprovalOperator(
        task_id="request_approval",
        subject=f"Give {MODEL_NAME} v{{{{ {_ANALYSIS}['candidate'] }}}} all traffic?",
        body="""
{%- set a = ti.xcom_pull(task_ids='analyse') -%}
**Canary** v{{ a.candidate }} at {{ a.share }} %: {{ a.metric }} {{ a.canary.value }} on {{ a.canary.n }} outcomes

**Control** v{{ a.control.version }}: {{ a.control.value }} on {{ a.control.n }} outcomes

{% for reason in a.reasons %}- {{ reason }}
{% endfor %}
""",
        defaults="Reject",
        doc_md="Human in the loop before full traffic; Reject, or no answer, leaves the canary where it is.",
    )
    no_approval_needed = EmptyOperator(task_id="no_approval_needed", doc_md="Taken without an approval.")
    promote = PromoteCanaryOperator(
        task_id="promote",
        **_MOVE_ARGS,
        rollout=f"{{{{ {_ANALYSIS}['rollout'] }}}}",
        reason=f"{{{{ {_ANALYSIS}['reasons'] | join(' ') }}}}",
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        retries=3,
        retry_delay=30,
        doc_md="""
        The candidate takes all traffic and becomes `@champion` (compare-and-set against the control
        the rollout started with); emits `x-mlflow://<model>@champion`.
        """,
    )
    abort = AbortCanaryOperator(
        task_id="abort",
        **_MOVE_ARGS,
        reason=f"{{{{ params.reason or ({_ANALYSIS}['reasons'] | join(' ')) }}}}",
        retries=3,
        retry_delay=30,
        doc_md="""
        All traffic back on `@champion` at once: aborts the running canary (recorded with its reason;
        `@champion` untouched), or syncs the target with `@champion` when no canary runs.
        """,
    )
    recover = AbortCanaryOperator(
        task_id="recover",
        **_MOVE_ARGS,
        rollout=f"{{{{ ({_ANALYSIS} or {{}}).get('rollout') }}}}",
        reason="a move of the rollout failed for good: the canary is aborted",
        trigger_rule=TriggerRule.ONE_FAILED,
        pre_execute=_only_after_an_analysis,
        retries=3,
        retry_delay=30,
        doc_md="Runs only when a step or the promotion failed: aborts the canary they were moving.",
    )
    # [END howto_operator_canary_moves]

    decision = decide_rollout()
    check_form() >> start_canary >> analyse >> decision >> [step, request_approval, no_approval_needed, abort]
    [request_approval, no_approval_needed] >> promote
    [step, promote] >> recover
    moves = [step, promote, abort, recover]  # each is skipped or done once decide_rollout ran

    if TARGET == "batch":
        # [START howto_operator_batch_score]
        score = BatchScoreOperator(
            task_id="score",
            model_name=MODEL_NAME,
            target_config=TARGET_CONFIGS["batch"],
            data=SCORING_DATA,
            batch="{{ ds }}",
            mlflow_conn_id=MLFLOW_CONN_ID,
            trigger_rule=TriggerRule.ALL_DONE,
            doc_md="""
            Scores the day's data with the versions serving after this run's move; each prediction
            carries its version and arm.
            """,
        )
        # [END howto_operator_batch_score]
        moves >> score


mlops_deploy()
