"""Names of the MLflow tags and XCom keys airflow-mlops reads and writes: the contract between
its parts, in one place.

Training writes lineage on the model version; evaluation writes its decision record; promotion
and rollback write history; the drift sensor reads the training data back from lineage.
Values are strings (MLflow tags); structured values are JSON.
"""

from __future__ import annotations

PREFIX = "mlops."

# Lineage, on the model version registered by TrainModelOperator.
TRAIN_DATA_URI = "mlops.data.train.uri"
TRAIN_DATA_HASH = "mlops.data.train.sha256"
VALIDATION_DATA_URI = "mlops.data.validation.uri"
VALIDATION_DATA_HASH = "mlops.data.validation.sha256"
TARGET = "mlops.target"
PARAMS = "mlops.params"  # JSON
METRICS = "mlops.train.metrics"  # JSON, from the entrypoint's metrics.json
CODE_VERSION = "mlops.code.version"  # git SHA if the entrypoint is in a git checkout, else package version
CODE_HASH = "mlops.code.sha256"  # hash of the entrypoint file
ENTRYPOINT = "mlops.code.entrypoint"
BACKEND = "mlops.backend"
JOB_ID = "mlops.job.id"
JOB_CONSOLE_URL = "mlops.job.console_url"
AIRFLOW_DAG_ID = "mlops.airflow.dag_id"
AIRFLOW_RUN_ID = "mlops.airflow.run_id"
AIRFLOW_TASK_ID = "mlops.airflow.task_id"

# Evaluation, on the candidate version (EvaluateModelOperator).
EVAL_DECISION = "mlops.eval.decision"  # "promote" | "reject"
EVAL_RECORD = "mlops.eval.record"  # JSON decision record (docs/operators/evaluation.md)
EVAL_METRIC = "mlops.eval.metric"  # name of the deciding metric
EVAL_METRICS = "mlops.eval.metrics"  # JSON {metric: value} of the candidate on eval_data
EVAL_DATA_URI = "mlops.eval.data.uri"

# Promotion history. On the registered model, one tag per event, in order:
#   mlops.history.<alias>.<seq:06d> = JSON {action, version, previous_version, at, reason, forced,
#                                           dag_id, run_id, task_id, user, status[, map_index, note]}
# status: "pending" (written before the alias moves), then "done" or "aborted"; absent = done.
HISTORY_PREFIX = "mlops.history."
# On the promoted version, the latest event that made it the holder of an alias:
PROMOTED_PREVIOUS = "mlops.promotion.{alias}.previous_version"
PROMOTED_AT = "mlops.promotion.{alias}.at"
PROMOTED_REASON = "mlops.promotion.{alias}.reason"
PROMOTED_BY = "mlops.promotion.{alias}.by"  # dag_id/run_id/task_id
PROMOTED_FORCED = "mlops.promotion.{alias}.forced"
# On the version an alias was rolled back to:
ROLLBACK_AT = "mlops.rollback.{alias}.at"
ROLLBACK_FROM = "mlops.rollback.{alias}.from_version"
ROLLBACK_REASON = "mlops.rollback.{alias}.reason"
ROLLBACK_BY = "mlops.rollback.{alias}.by"  # dag_id/run_id/task_id

# Canary rollouts (core/registry/rollout.py). The rollout's events are history events of the
# canary alias (mlops.history.<canary alias>.<seq>) with actions canary_start, canary_step,
# canary_complete, canary_abort and the fields share (the canary's percent of traffic after the
# event), control (the champion serving the rest) and, on the start event, plan (JSON).
CANARY_ALIAS = "canary"
CANDIDATE_ALIAS = "challenger"
"""The alias the training DAG moves instead of @champion when the champion is gated on a canary."""
# On the candidate version, the latest rollout event about it:
CANARY_ACTION = "mlops.rollout.{alias}.action"  # canary_start | canary_step | canary_complete | canary_abort
CANARY_SHARE = "mlops.rollout.{alias}.share"  # percent of traffic after that event
CANARY_AT = "mlops.rollout.{alias}.at"
CANARY_CONTROL = "mlops.rollout.{alias}.control"
CANARY_REASON = "mlops.rollout.{alias}.reason"
CANARY_BY = "mlops.rollout.{alias}.by"
CANARY_ANALYSIS = "mlops.canary.analysis"  # JSON: the latest canary analysis record of the version

# The registry lock: a transient registered model <name>.mlops-lock.<alias> with these tags.
LOCK_OWNER = "mlops.lock.owner"  # token of one acquisition; its presence marks a lock
LOCK_EXPIRES = "mlops.lock.expires"  # epoch seconds, renewed while held
LOCK_TASK = "mlops.lock.task"  # dag_id/run_id/task_id[/map_index] of the holder

# Quality gate, on the MLflow run that holds its report (DataQualityGateOperator).
QUALITY_DATA_URI = "mlops.quality.data.uri"
QUALITY_SUITE = "mlops.quality.suite"
QUALITY_FAIL_ON = "mlops.quality.fail_on"
QUALITY_SUCCESS = "mlops.quality.success"  # "true" | "false": the gate's verdict

# Drift check, on the MLflow run that holds its report (DataDriftSensor).
DRIFT_ASSET = "mlops.drift.asset"
DRIFT_DETECTED = "mlops.drift.detected"  # "true" | "false"

# XCom keys besides return_value, shared by the sensors and the reference DAGs.
XCOM_DRIFT_SUMMARY = "drift_summary"
XCOM_PERFORMANCE_SUMMARY = "performance_summary"
XCOM_CANARY_ANALYSIS = "canary_analysis"
XCOM_REPORT_URI = "mlops_report_uri"  # where a gate or the drift sensor wrote its report (the Report link)


def history_key(alias: str, seq: int) -> str:
    return f"{HISTORY_PREFIX}{alias}.{seq:06d}"
