"""The reference DAGs parse fast and light, and are what DESIGN.md says they are.

Everything is checked in one fresh interpreter (so nothing the test session imported can hide a
heavy import): each DAG file on its own, then a DagBag over ``dags/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "dags"
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))
HEAVY = (
    "pandas",
    "numpy",
    "mlflow",
    "great_expectations",
    "evidently",
    "sklearn",
    "boto3",
    "google.cloud",
    "azure.ai.ml",
    "scipy",
    "pyarrow",
)

PROBE = r"""
import json, runpy, sys, time
dags, heavy, files, prime = sys.argv[1], tuple(json.loads(sys.argv[2])), json.loads(sys.argv[3]), sys.argv[4] == "prime"

def loaded():
    found = []
    for name, module in list(sys.modules.items()):
        for h in heavy:
            if name == h or name.startswith(h + "."):
                # google.cloud is a namespace package that an installed *-nspkg.pth file creates at
                # interpreter start; only a real google.cloud.<x> module costs anything
                if name == "google.cloud" and getattr(module, "__file__", None) is None:
                    continue
                found.append(name)
    return sorted(found)

out = {"before": loaded(), "files": {}}
import airflow.sdk  # noqa: F401  (Airflow itself is not what is measured)
if prime:
    # What Airflow does on the first Asset with a scheme other than file:// or x-...: it imports
    # every installed provider's asset-URI module (amazon: boto3, google: google.cloud.storage).
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    ProvidersManagerTaskRuntime().asset_uri_handlers
out["primed"] = loaded()
for name in files:
    began = time.perf_counter()
    runpy.run_path(f"{dags}/{name}", run_name=f"probe_{name[:-3]}")
    out["files"][name] = {"seconds": time.perf_counter() - began, "heavy": sorted(set(loaded()) - set(out["primed"]))}
if not prime:
    print("PROBE-RESULT " + json.dumps(out, default=str))
    raise SystemExit(0)

from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dags)
out["import_errors"] = {k: str(v) for k, v in bag.import_errors.items()}
out["heavy_after_dagbag"] = sorted(set(loaded()) - set(out["primed"]))
dags_out = {}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        tasks[t.task_id] = {
            "type": type(t).__name__,
            "doc": bool(t.doc_md),
            "downstream": sorted(t.downstream_task_ids),
            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            "mode": getattr(t, "mode", None),
            "soft_fail": getattr(t, "soft_fail", None),
            "timeout": getattr(t, "timeout", None),
            "defaults": getattr(t, "defaults", None),
        }
    timetable = dag.timetable
    dags_out[dag_id] = {
        "catchup": dag.catchup,
        "tags": sorted(dag.tags),
        "doc": bool(dag.doc_md),
        "schedule": type(timetable).__name__,
        "cron": getattr(getattr(timetable, "timetable", timetable), "expression", None),
        "asset_uris": sorted(
            a.uri for a in getattr(getattr(timetable, "asset_condition", None), "objects", []) or []
        ),
        "params": {k: dag.params.get_param(k).schema for k in dag.params},
        "param_defaults": {k: dag.params[k] for k in dag.params},
        "tasks": tasks,
    }
out["dags"] = dags_out
print("PROBE-RESULT " + json.dumps(out, default=str))
"""


def _probe(tmp_path_factory, files: list[str], prime: bool) -> dict:
    home = tmp_path_factory.mktemp("parse-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "AIRFLOW_CONN_"))}
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(DAGS), AIRFLOW__CORE__LOAD_EXAMPLES="False"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(DAGS),
            json.dumps(HEAVY),
            json.dumps(files),
            "prime" if prime else "raw",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE-RESULT "))
    return json.loads(line[len("PROBE-RESULT ") :])


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    """All DAG files and a DagBag in one interpreter, Airflow's asset-URI discovery done first."""
    return _probe(tmp_path_factory, DAG_FILES, prime=True)


@pytest.fixture(scope="module")
def raw_probes(tmp_path_factory) -> dict[str, dict]:
    """Each DAG file alone in a fresh interpreter, exactly as a DAG processor would parse it."""
    return {name: _probe(tmp_path_factory, [name], prime=False)["files"][name] for name in DAG_FILES}


def test_the_reference_dags_exist():
    assert DAG_FILES == [
        "mlops_continuous_training.py",
        "mlops_deploy.py",
        "mlops_drift_monitor.py",
        "mlops_rollback.py",
    ]


def test_dag_files_import_nothing_heavy_themselves(probe):
    assert probe["before"] == []
    for name, result in probe["files"].items():
        assert result["heavy"] == [], f"{name} imported {result['heavy']} at parse time"
    assert probe["heavy_after_dagbag"] == []


def test_each_dag_file_parses_without_heavy_modules_in_a_fresh_interpreter(raw_probes):
    for name, result in raw_probes.items():
        assert result["heavy"] == [], f"{name} imported {sorted({m.split('.')[0] for m in result['heavy']})}"


def test_dagbag_has_no_import_errors(probe):
    assert probe["import_errors"] == {}
    assert sorted(probe["dags"]) == [
        "mlops_continuous_training",
        "mlops_deploy",
        "mlops_drift_monitor",
        "mlops_rollback",
    ]


def test_every_dag_is_documented_tagged_and_not_catching_up(probe):
    for dag_id, dag in probe["dags"].items():
        assert dag["catchup"] is False, dag_id
        assert "mlops" in dag["tags"], dag_id
        assert dag["doc"], dag_id
        undocumented = [t for t, info in dag["tasks"].items() if not info["doc"]]
        assert undocumented == [], f"{dag_id}: tasks without doc_md: {undocumented}"


def test_continuous_training_is_scheduled_on_drift_or_performance_events_or_weekly(probe):
    dag = probe["dags"]["mlops_continuous_training"]
    assert dag["schedule"] == "AssetOrTimeSchedule"
    assert dag["asset_uris"] == ["x-mlops://drift/churn", "x-mlops://performance/churn"]
    assert dag["cron"] == "0 4 * * 1"


def test_continuous_training_form_and_flow(probe):
    dag = probe["dags"]["mlops_continuous_training"]
    params = dag["params"]
    assert set(params) == {
        "train_data",
        "eval_data",
        "backend",
        "backend_config",
        "require_approval",
        "force_promote",
        "reason",
    }
    assert params["backend"]["enum"] == ["local", "sagemaker", "vertex_ai", "azure_ml"]
    assert set(params["backend"]["values_display"]) == set(params["backend"]["enum"])
    # switches: nullable, so the form shows no red "required" marker on them
    assert params["require_approval"]["type"] == ["boolean", "null"]
    assert params["force_promote"]["type"] == ["boolean", "null"]
    assert dag["param_defaults"]["force_promote"] is False
    # the form's backend settings: sizing keys only, anything else refused when the run is created
    sizing = params["backend_config"]
    assert sizing["additionalProperties"] is False and sizing["section"] == "Advanced"
    assert sizing["propertyNames"]["enum"] == sorted(sizing["properties"])
    assert {"instance_type", "instance_count", "timeout"} <= set(sizing["properties"])
    assert not {"python", "env", "role_arn", "image_uri", "aws_conn_id", "service_account"} & set(
        sizing["properties"]
    )
    assert params["force_promote"]["section"] == "Advanced"
    # defaults point at the shipped demo stream
    assert dag["param_defaults"]["train_data"].endswith("demo-data/train.parquet")
    assert dag["param_defaults"]["eval_data"].endswith("demo-data/eval.parquet")

    tasks = dag["tasks"]
    assert tasks["validate_train_data"]["type"] == "DataQualityGateOperator"
    assert tasks["validate_eval_data"]["type"] == "DataQualityGateOperator"
    assert tasks["validate_train_data"]["downstream"] == ["train"]
    assert tasks["validate_eval_data"]["downstream"] == ["train"]
    assert tasks["train"]["type"] == "TrainModelOperator"
    assert tasks["train"]["downstream"] == ["evaluate"]
    assert tasks["evaluate"]["type"] == "EvaluateModelOperator"
    assert tasks["evaluate"]["downstream"] == ["decide_promotion"]
    # a rejected (skipped) evaluation still reaches the decision, so force_promote can override it
    assert tasks["decide_promotion"]["trigger_rule"] == "none_failed"
    assert tasks["decide_promotion"]["downstream"] == ["no_approval_needed", "request_approval"]
    assert tasks["request_approval"]["type"] == "ApprovalOperator"
    assert tasks["request_approval"]["defaults"] == ["Reject"]  # no answer never promotes
    assert tasks["request_approval"]["downstream"] == ["promote"]
    assert tasks["no_approval_needed"]["downstream"] == ["promote"]
    assert tasks["promote"]["type"] == "PromoteModelOperator"
    assert tasks["promote"]["trigger_rule"] == "none_failed_min_one_success"


def test_drift_monitor_is_daily_and_skips_quiet_windows(probe):
    dag = probe["dags"]["mlops_drift_monitor"]
    assert dag["schedule"] == "CronTriggerTimetable"
    assert dag["cron"] == "0 6 * * *"
    tasks = dag["tasks"]
    assert tasks["data_drift"]["type"] == "DataDriftSensor"
    assert tasks["model_performance"]["type"] == "ModelPerformanceSensor"
    for sensor in ("data_drift", "model_performance"):
        assert tasks[sensor]["mode"] == "reschedule"
        assert tasks[sensor]["soft_fail"] is True
        assert tasks[sensor]["downstream"] == ["verdict"]
    assert tasks["verdict"]["trigger_rule"] == "none_failed"


def test_rollback_is_manual_with_model_and_optional_version(probe):
    dag = probe["dags"]["mlops_rollback"]
    assert dag["schedule"] == "NullTimetable"
    assert set(dag["params"]) == {"model_name", "version", "reason"}
    assert dag["param_defaults"]["model_name"] == "churn"
    assert dag["params"]["model_name"]["enum"] == ["churn"]  # the form offers the DAG's models only
    assert dag["param_defaults"]["version"] is None
    assert dag["params"]["version"]["pattern"] == "^([1-9][0-9]{0,8})?$"
    assert dag["tasks"]["rollback"]["type"] == "RollbackModelOperator"


def test_deploy_starts_on_the_promotion_or_daily_and_its_form_holds_no_target(probe):
    dag = probe["dags"]["mlops_deploy"]
    assert dag["schedule"] == "AssetOrTimeSchedule"
    assert dag["asset_uris"] == ["x-mlflow://churn@challenger", "x-mlflow://churn@champion"]
    assert dag["cron"] == "0 7 * * *"
    params = dag["params"]
    # choices among what the DAG file allows; the target, its endpoint and identities are not here
    assert set(params) == {"steps", "bake_minutes", "require_approval", "abort", "reason"}
    assert params["steps"]["enum"][0] == "10,50,100"
    assert params["bake_minutes"]["minimum"] >= 0 and params["bake_minutes"]["maximum"] == 7 * 24 * 60
    assert dag["param_defaults"]["abort"] is False

    tasks = dag["tasks"]
    # the conf may hold the form's params only: checked before anything moves
    assert tasks["check_form"]["downstream"] == ["start_canary"]
    assert tasks["start_canary"]["type"] == "StartCanaryOperator"
    assert tasks["start_canary"]["downstream"] == ["analyse"]
    assert tasks["analyse"]["type"] == "CanaryAnalysisOperator"
    assert tasks["analyse"]["trigger_rule"] == "none_failed"  # a skipped start still analyses
    assert tasks["analyse"]["downstream"] == ["decide_rollout"]
    assert tasks["decide_rollout"]["downstream"] == [
        "abort",
        "no_approval_needed",
        "request_approval",
        "step",
    ]
    assert tasks["request_approval"]["type"] == "ApprovalOperator"
    assert tasks["request_approval"]["defaults"] == ["Reject"]  # no answer never gives full traffic
    assert tasks["promote"]["type"] == "PromoteCanaryOperator"
    assert tasks["step"]["type"] == "CanaryStepOperator"
    assert tasks["abort"]["type"] == "AbortCanaryOperator"
    # a step or promotion that fails for good aborts the canary
    assert tasks["recover"]["type"] == "AbortCanaryOperator"
    assert tasks["recover"]["trigger_rule"] == "one_failed"
    assert tasks["score"]["type"] == "BatchScoreOperator"
    assert tasks["score"]["trigger_rule"] == "all_done"


def test_continuous_training_without_the_weekly_fallback_runs_on_events_only():
    code = (
        "import os, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(sys.argv[1]).dags['mlops_continuous_training']\n"
        "print('TIMETABLE', type(dag.timetable).__name__, dag.timetable.asset_condition)\n"
    )
    env = {**os.environ, "MLOPS_RETRAIN_CRON": "none"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags")], env=env, capture_output=True, text=True, timeout=300
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("TIMETABLE")), out.stderr[-2000:])
    assert line.startswith("TIMETABLE AssetTriggeredTimetable"), line
    assert "x-mlops://drift/churn" in line and "x-mlops://performance/churn" in line
