"""
### mlops_drift_monitor: notice when the world moves, and start a retraining

Daily. Checks the day's window of new data against what the current champion was trained on:

* **data_drift** -- per-column statistical tests (Evidently's defaults: Wasserstein /
  Jensen-Shannon on large samples, K-S / chi-square / Z on small ones) between the window and the
  champion's training data (read from its MLflow lineage). When at least `DRIFT_SHARE` of the
  columns drifted, it succeeds and emits the `x-mlops://drift/<model>` Asset event.
* **model_performance** -- scores the champion on the window's labels. When the metric fell by
  more than `MAX_DROP` from the value recorded at its evaluation (or below `MIN_VALUE`), it
  succeeds and emits the `x-mlops://performance/<model>` Asset event.

Either event starts `mlops_continuous_training`. A sensor that finds nothing ends *skipped* (one
check per window by default); unreadable or missing data fails the run instead -- a broken feed
must never read as "no drift". **verdict** logs what was found and returns it in one small record
(drift share, drifted columns, metric, report paths).

Trigger it from the UI with `current_data` to check any file or folder. Adapt the settings at the
top of the file (or set the environment variables they read).
"""

from __future__ import annotations

import logging
import os

from airflow.sdk import Param, TriggerRule, dag, task

from airflow_mlops.core import tags
from airflow_mlops.policy import RetrainingPolicy
from airflow_mlops.sensors.drift import DataDriftSensor
from airflow_mlops.sensors.performance import ModelPerformanceSensor
from airflow_mlops.version_compat import CronTriggerTimetable  # not in airflow.sdk on Airflow 3.1

# --- Settings a user adapts ----------------------------------------------------------------------
_AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))

MODEL_NAME = os.environ.get("MLOPS_MODEL_NAME", "churn")
"""Registered model name in MLflow (the same as in mlops_continuous_training)."""
DATA_ROOT = os.environ.get("MLOPS_DATA_ROOT", os.path.join(_AIRFLOW_HOME, "demo-data"))
CURRENT_DATA = os.environ.get("MLOPS_CURRENT_DATA", f"{DATA_ROOT}/windows/{{{{ ds }}}}.parquet")
"""The day's labelled window (a Jinja template: ``{{ ds }}`` is the run's date)."""
REFERENCE = os.environ.get("MLOPS_DRIFT_REFERENCE", f"models:/{MODEL_NAME}@champion")
"""What "normal" is: the champion's training data (from its lineage), or any data URI."""
POLICY = RetrainingPolicy.from_env().for_dags()
"""The retraining policy, shared with mlops_continuous_training, the demo and
`python -m airflow_mlops.backtest` (which replays it on your own history before you switch it on).
Its defaults were chosen by measurement (docs/policy.md); change a field here, e.g.
``RetrainingPolicy.from_env(max_drop=0.05)``, or with its MLOPS_* environment variable."""
TARGET = POLICY.target
"""The label column: never part of the feature-drift share (target drift is its own signal)."""
FEATURES = [
    "tenure_months", "monthly_charges", "data_usage_gb", "support_calls", "late_payments",
    "satisfaction", "age", "contract", "internet_service", "payment_method", "region",
]  # fmt: skip
"""The model's input columns (the demo churn model's; list yours)."""
DRIFT_COLUMNS = list(POLICY.drift_columns or FEATURES)
"""Columns tested for feature drift: the model's inputs, not the label (MLOPS_DRIFT_COLUMNS)."""
DRIFT_SHARE = POLICY.drift_share
"""Share of drifted feature columns at which the window counts as drifted: 0.7 (MLOPS_DRIFT_SHARE)."""
METRIC = POLICY.metric
MAX_DROP = POLICY.max_drop
"""Relative drop of the champion's metric (vs its evaluation) that counts as decay: 0.1 (MLOPS_MAX_DROP)."""
MIN_VALUE = POLICY.min_value
"""Absolute floor of the champion's metric; None: only MAX_DROP applies (MLOPS_MIN_VALUE)."""
SENSOR_TIMEOUT = float(os.environ.get("MLOPS_MONITOR_TIMEOUT_SECONDS", "0"))
"""How long the sensors keep re-checking a window that shows nothing: 0 checks once. Raise it
(with POKE_INTERVAL) if your window keeps filling during the day."""
POKE_INTERVAL = float(os.environ.get("MLOPS_MONITOR_POKE_SECONDS", "3600"))
MLFLOW_CONN_ID = os.environ.get("MLOPS_MLFLOW_CONN_ID", "mlflow_default")
SCHEDULE_CRON = os.environ.get("MLOPS_MONITOR_CRON", "0 6 * * *")
# -------------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)
_CURRENT = "{% if params.current_data %}{{ params.current_data }}{% else %}" + CURRENT_DATA + "{% endif %}"


@dag(
    dag_id="mlops_drift_monitor",
    description="Daily data-drift and model-performance checks that start a retraining",
    schedule=CronTriggerTimetable(SCHEDULE_CRON, timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["mlops", "monitoring", "drift"],
    doc_md=__doc__,
    params={
        "current_data": Param(
            "",
            type="string",
            title="Data to check",
            description="Path or URI of the labelled window; empty: the window of the run's date.",
        ),
    },
)
def mlops_drift_monitor():
    # [START howto_sensor_data_drift]
    data_drift = DataDriftSensor(
        task_id="data_drift",
        reference=REFERENCE,
        current=_CURRENT,
        columns=DRIFT_COLUMNS,
        drift_share=DRIFT_SHARE,
        model_name=MODEL_NAME,
        mlflow_conn_id=MLFLOW_CONN_ID,
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=SENSOR_TIMEOUT,
        soft_fail=True,
        doc_md="""
        Compares the window with the champion's training data column by column. Succeeds on
        drift (and emits the drift Asset event that starts the retraining); ends skipped when
        nothing drifted. The summary (share, per-column scores) is in XCom `drift_summary`; the
        Evidently HTML report is linked.
        """,
    )
    # [END howto_sensor_data_drift]

    # [START howto_sensor_model_performance]
    model_performance = ModelPerformanceSensor(
        task_id="model_performance",
        model_uri=f"models:/{MODEL_NAME}@champion",
        data=_CURRENT,
        target=TARGET,
        metric=METRIC,
        max_drop=MAX_DROP,
        min_value=MIN_VALUE,
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=SENSOR_TIMEOUT,
        soft_fail=True,
        doc_md="""
        Scores the champion on the window's labels. Succeeds when the metric fell by more than
        MAX_DROP from its recorded evaluation (and emits the performance Asset event that starts
        the retraining); ends skipped while the model holds up.
        """,
    )
    # [END howto_sensor_model_performance]

    @task(
        trigger_rule=TriggerRule.NONE_FAILED,
        doc_md="""
        One record of what this run found: drift share and drifted columns, the champion's metric
        against its baseline, the report paths, and whether a retraining was triggered.
        """,
    )
    def verdict() -> dict:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        drift = ti.xcom_pull(task_ids="data_drift", key=tags.XCOM_DRIFT_SUMMARY) or {}
        perf = ti.xcom_pull(task_ids="model_performance", key=tags.XCOM_PERFORMANCE_SUMMARY)
        perf = perf or ti.xcom_pull(task_ids="model_performance") or {}
        drifted = bool(drift.get("drift_detected"))
        degraded = bool(perf.get("degraded"))
        record = {
            "current": drift.get("current"),
            "reference": drift.get("reference"),
            "reference_model": drift.get("reference_model"),
            "drift_detected": drifted,
            "drift_share": drift.get("drift_share"),
            "drifted_columns": drift.get("drifted_columns", []),
            "drift_report": drift.get("report_uri"),
            "metric": perf.get("metric"),
            "metric_value": perf.get("value"),
            "metric_baseline": perf.get("baseline"),
            "degraded": degraded,
            "retraining_triggered": drifted or degraded,
        }
        log.info(
            "Window %s: drift %s (share %s, drifted: %s); %s %s vs baseline %s: %s -> %s",
            record["current"],
            "DETECTED" if drifted else "not detected",
            record["drift_share"],
            ", ".join(record["drifted_columns"]) or "none",
            record["metric"],
            record["metric_value"],
            record["metric_baseline"],
            "DEGRADED" if degraded else "holding up",
            "retraining triggered" if record["retraining_triggered"] else "no retraining",
        )
        return record

    [data_drift, model_performance] >> verdict()


mlops_drift_monitor()
