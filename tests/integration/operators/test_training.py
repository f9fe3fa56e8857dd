"""TrainModelOperator on the local backend, in real Airflow against a real MLflow server.

One DAG run covers: train -> register with lineage; train -> evaluate -> promote with
expected_current taken from the decision record; an entrypoint that crashes fails its task with
the script's error and registers nothing. Each training subprocess costs tens of seconds on a
busy 2-core machine, so reproducibility is shown by running the entrypoint itself twice in-process.
The operator's branches (deferral, resume, on_kill, bad arguments) are unit-tested in
tests/unit/operators/test_training.py, the local backend in tests/unit/backends/test_local.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core import tags
from airflow_mlops.core.lineage import file_hash, job_name
from tests.helpers.fixtures import REPO

pytestmark = pytest.mark.integration

ENTRYPOINT = REPO / "include" / "training" / "train.py"


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    logit = 1.5 * x1 - x2 + (plan == "pro") * 1.2
    label = (logit + rng.normal(scale=0.6, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "label": label})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    train_dir = root / "train"
    train_dir.mkdir()
    frame = make_frame(300, 1)
    frame.iloc[:150].to_parquet(train_dir / "part-0.parquet")  # a folder of parts
    frame.iloc[150:].to_parquet(train_dir / "part-1.parquet")
    make_frame(150, 2).to_csv(root / "validation.csv", index=False)
    crash = root / "crash.py"
    crash.write_text(
        "import sys\nprint('crash.py starting', flush=True)\n"
        "raise ValueError('column plan holds garbage: rotten-input-7')\n"
    )
    return {"train": train_dir, "validation": root / "validation.csv", "crash": crash}


def test_train_register_evaluate_promote_and_crash(dag_runner, mlflow_server, model_name, data, capfd):
    crash_model = model_name + "-crash"
    params = {"target": "label", "model": "random_forest", "n_estimators": 15, "max_depth": 4, "seed": 7}
    result = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import dag
        from airflow_mlops.operators.training import TrainModelOperator
        from airflow_mlops.operators.evaluation import EvaluateModelOperator
        from airflow_mlops.operators.registry import PromoteModelOperator

        COMMON = dict(
            entrypoint={str(ENTRYPOINT)!r},
            train_data="{{{{ params.train }}}}",
            validation_data={str(data["validation"])!r},
            registered_model_name={model_name!r},
            hyperparameters={params!r},
        )

        @dag(dag_id="t_train_chain", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
             params={{"train": {str(data["train"])!r}}})
        def chain():
            train = TrainModelOperator(task_id="train", **COMMON)
            evaluate = EvaluateModelOperator(
                task_id="evaluate",
                model_name={model_name!r},
                candidate_version="{{{{ ti.xcom_pull(task_ids='train')['model_version'] }}}}",
                eval_data={str(data["validation"])!r},
                target="label",
                metric="f1",
            )
            promote = PromoteModelOperator(
                task_id="promote",
                model_name={model_name!r},
                version="{{{{ ti.xcom_pull(task_ids='evaluate')['candidate']['version'] }}}}",
                expected_current="{{{{ (ti.xcom_pull(task_ids='evaluate')['champion'] or {{}}).get('version', 'none') }}}}",
                reason="won the evaluation",
            )
            train >> evaluate >> promote
            TrainModelOperator(
                task_id="crash",
                entrypoint={str(data["crash"])!r},
                train_data={str(data["train"])!r},
                registered_model_name={crash_model!r},
            )

        chain()
        """
    )
    out = capfd.readouterr()
    logs = out.out + out.err
    assert result.task_states == {
        "train": "success",
        "evaluate": "success",
        "promote": "success",
        "crash": "failed",
    }, logs[-3000:]

    trained = result.xcom("train")
    assert set(trained) == {
        "backend",
        "job_id",
        "console_url",
        "run_id",
        "model_uri",
        "model_name",
        "model_version",
        "metrics",
    }
    assert trained["backend"] == "local"
    assert trained["console_url"] is None
    assert trained["model_name"] == model_name
    assert trained["model_uri"] == f"models:/{model_name}/{trained['model_version']}"
    assert trained["job_id"] == job_name(result.dag_id, result.run_id, "train")
    assert set(trained["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert trained["metrics"]["accuracy"] > 0.7

    # lineage on the registered version (and the run)
    client = mlflow_server.client()
    version = client.get_model_version(model_name, trained["model_version"])
    assert version.run_id == trained["run_id"]
    vt = version.tags
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert vt[tags.CODE_VERSION].startswith(head)
    assert vt[tags.CODE_HASH] == file_hash(str(ENTRYPOINT))
    assert vt[tags.ENTRYPOINT] == "train.py"
    assert vt[tags.TRAIN_DATA_URI] == str(data["train"])
    from airflow_mlops.io import hash_table

    assert vt[tags.TRAIN_DATA_HASH] == hash_table(str(data["train"]))
    assert vt[tags.VALIDATION_DATA_URI] == str(data["validation"])
    assert vt[tags.VALIDATION_DATA_HASH] == hash_table(str(data["validation"]))
    assert json.loads(vt[tags.PARAMS]) == params
    assert vt[tags.TARGET] == "label"
    assert json.loads(vt[tags.METRICS]) == trained["metrics"]
    assert vt[tags.BACKEND] == "local"
    assert vt[tags.JOB_ID] == trained["job_id"]
    assert (vt[tags.AIRFLOW_DAG_ID], vt[tags.AIRFLOW_RUN_ID], vt[tags.AIRFLOW_TASK_ID]) == (
        "t_train_chain",
        result.run_id,
        "train",
    )
    run = client.get_run(trained["run_id"])
    assert run.data.params["n_estimators"] == "15"
    assert run.data.metrics["f1"] == pytest.approx(trained["metrics"]["f1"])
    assert run.data.tags[tags.TRAIN_DATA_HASH] == vt[tags.TRAIN_DATA_HASH]
    artifacts = {a.path for a in client.list_artifacts(trained["run_id"])}
    assert {"model", "metrics.json"} <= artifacts

    # the chain: the first candidate bootstraps the champion, expected_current="none"
    record = result.xcom("evaluate")
    assert record["decision"] == "promote"
    assert record["champion"] is None
    assert result.xcom("promote") == {
        "model_name": model_name,
        "alias": "champion",
        "version": trained["model_version"],
        "previous_version": None,
    }
    assert client.get_model_version_by_alias(model_name, "champion").version == trained["model_version"]

    # the crashing entrypoint: its error in the task log, nothing registered
    assert "rotten-input-7" in logs
    assert "crash.py starting" in logs
    assert not client.search_registered_models(filter_string=f"name = '{crash_model}'")


def test_same_data_params_and_seed_give_the_same_model(data, tmp_path, monkeypatch):
    """The entrypoint, run twice as the backends run it (CLI arguments), is deterministic."""
    import runpy

    monkeypatch.chdir(tmp_path)
    params = json.dumps({"model": "gradient_boosting", "n_estimators": 20, "seed": 3})
    outputs = []
    for run in ("a", "b"):
        argv = ["train.py", "--train", str(data["train"]), "--validation", str(data["validation"])]
        argv += ["--params", params, "--output-dir", str(tmp_path / run), "--sagemaker_program", "train.py"]
        monkeypatch.setattr("sys.argv", argv)
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(ENTRYPOINT), run_name="__main__")
        assert done.value.code == 0
        outputs.append(tmp_path / run)
    first, second = (json.loads((o / "metrics.json").read_text()) for o in outputs)
    assert first == second
    assert set(first) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    import mlflow.sklearn

    frame = pd.read_csv(data["validation"]).drop(columns=["label"])
    proba = [mlflow.sklearn.load_model(str(o / "model")).predict_proba(frame) for o in outputs]
    assert np.array_equal(proba[0], proba[1])


def test_entrypoint_regression_and_clear_errors(data, tmp_path, monkeypatch):
    """The entrypoint in-process: a regression target, env-var defaults, and bad input named."""
    import runpy

    entry = runpy.run_path(str(ENTRYPOINT))
    frame = make_frame(120, 5).rename(columns={"label": "spend"})
    frame["spend"] = frame["x1"] * 3.0 + 0.5
    frame.to_csv(tmp_path / "spend.csv", index=False)
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "spend.csv"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "out"))
    assert entry["main"](["--params", json.dumps({"target": "spend", "model": "linear"})]) == 0
    monkeypatch.delenv("SM_CHANNEL_TRAIN")
    monkeypatch.delenv("SM_MODEL_DIR")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"] > 0.99

    error = entry["TrainingInputError"]
    base = ["--train", str(data["train"]), "--output-dir", str(tmp_path / "bad")]
    cases = [
        ({"target": "churned"}, "has no target column 'churned'"),
        ({"model": "xgboost"}, "params.model 'xgboost' is not available for classification"),
        ({"n_estimatorz": 5}, "bad hyper-parameter for random_forest"),
        ({"features": "x1"}, "params.features must be a list"),
    ]
    for params, match in cases:
        with pytest.raises(error, match=match):
            entry["main"]([*base, "--params", json.dumps(params)])
    with pytest.raises(error, match="data not found: /nope"):
        entry["main"](["--train", "/nope", "--output-dir", str(tmp_path / "bad")])
    with pytest.raises(error, match="not valid JSON"):
        entry["main"]([*base, "--params", "{oops"])
