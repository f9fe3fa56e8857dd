"""EvaluateModelOperator in real Airflow against a real MLflow server.

One DAG run walks the whole decision matrix in order (each step ``all_done`` after the last, so
one step's failure does not hide the next): no champion with bootstrap="fail" and "promote";
the first promotion; a worse candidate with on_reject="skip" (its promotion is skipped) and
"fail"; a better candidate below an absolute floor; eval data without the target column; and a
better candidate whose promotion takes expected_current from the decision record.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from airflow_mlops.core import tags

pytestmark = pytest.mark.integration

FEATURES = ["x1", "x2", "plan"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    label = (2.0 * x1 - 0.7 * x2 + (plan == "pro") + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "label": label})


def register(client, name: str, pipeline: Pipeline, train: pd.DataFrame) -> str:
    """Fit and register a version the way a user's own training might (mlflow.sklearn.log_model)."""
    import mlflow
    import mlflow.sklearn
    import skops.io

    pipeline.fit(train[FEATURES], train["label"])
    with mlflow.start_run(experiment_id=client.get_experiment_by_name("Default").experiment_id):
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format="skops",  # MLflow's default; pickles are not loaded (docs/security.md)
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
            pip_requirements=["scikit-learn", "skops"],
            registered_model_name=name,
        )
    return str(info.registered_model_version)


def _pipeline(columns, estimator) -> Pipeline:
    prepare = ColumnTransformer(
        [(c, OneHotEncoder(handle_unknown="ignore") if c == "plan" else "passthrough", [c]) for c in columns]
    )
    return Pipeline([("prepare", prepare), ("model", estimator)])


@pytest.fixture(scope="module")
def versions(mlflow_server, tmp_path_factory):
    import uuid

    from airflow_mlops.hooks.mlflow import MlflowHook

    name = f"test-eval-{uuid.uuid4().hex[:8]}"
    train = make_frame(400, 1)
    with MlflowHook().session() as client:  # URIs set for the block only
        out = {
            "name": name,
            "weak": register(client, name, _pipeline(["x2"], LogisticRegression()), train),
            "worse": register(
                client, name, _pipeline(["x2"], DummyClassifier(strategy="most_frequent")), train
            ),
            "strong": register(client, name, _pipeline(FEATURES, LogisticRegression()), train),
        }
    root = tmp_path_factory.mktemp("eval-data")
    make_frame(300, 3).to_parquet(root / "eval.parquet")
    make_frame(50, 4).drop(columns=["label"]).to_csv(root / "unlabelled.csv", index=False)
    out["eval"] = str(root / "eval.parquet")
    out["unlabelled"] = str(root / "unlabelled.csv")
    return out


def test_decision_matrix_and_promotion_guard(dag_runner, mlflow_server, versions, capfd):
    v = versions
    name = v["name"]
    result = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import dag
        from airflow_mlops.operators.evaluation import EvaluateModelOperator
        from airflow_mlops.operators.registry import PromoteModelOperator

        NAME = {name!r}

        def evaluate(task_id, version, **kw):
            kw.setdefault("eval_data", {v["eval"]!r})
            kw.setdefault("trigger_rule", "all_done")
            return EvaluateModelOperator(
                task_id=task_id, model_name=NAME, candidate_version=version, target="label",
                metric="accuracy", **kw)

        def promote(task_id, evaluated):
            return PromoteModelOperator(
                task_id=task_id,
                model_name=NAME,
                version="{{{{ ti.xcom_pull(task_ids='%s')['candidate']['version'] }}}}" % evaluated,
                expected_current="{{{{ (ti.xcom_pull(task_ids='%s')['champion'] or {{}}).get('version', 'none') }}}}" % evaluated,
                reason="evaluation " + evaluated,
            )

        @dag(dag_id="t_eval_matrix", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        def matrix():
            steps = [
                evaluate("boot_fail", {v["weak"]!r}, bootstrap="fail", trigger_rule="all_success"),
                evaluate("boot_promote", {v["weak"]!r}),
                promote("promote_first", "boot_promote"),
                evaluate("worse_skip", {v["worse"]!r}),
                promote("promote_worse", "worse_skip"),
                evaluate("worse_fail", {v["worse"]!r}, on_reject="fail"),
                evaluate("below_floor", "{{{{ '{v["strong"]}' }}}}", thresholds={{"accuracy": 0.99}}),
                evaluate("no_target", {v["strong"]!r}, eval_data={v["unlabelled"]!r}),
                evaluate("better", {v["strong"]!r}, thresholds={{"accuracy": 0.7, "roc_auc": 0.7}}),
                promote("promote_better", "better"),
            ]
            for a, b in zip(steps, steps[1:]):
                a >> b

        matrix()
        """
    )
    out = capfd.readouterr()
    logs = out.out + out.err
    assert result.task_states == {
        "boot_fail": "failed",
        "boot_promote": "success",
        "promote_first": "success",
        "worse_skip": "skipped",
        "promote_worse": "skipped",
        "worse_fail": "failed",
        "below_floor": "skipped",
        "no_target": "failed",
        "better": "success",
        "promote_better": "success",
    }, logs[-4000:]

    # no champion: bootstrap decides; the record was pushed before the failure
    boot_fail = result.xcom("boot_fail")
    assert boot_fail["decision"] == "reject"
    assert boot_fail["champion"] is None
    assert "bootstrap='fail'" in boot_fail["reasons"][-1]
    boot = result.xcom("boot_promote")
    assert set(boot) == {"decision", "reasons", "candidate", "champion"}
    assert boot["decision"] == "promote"
    assert boot["champion"] is None
    assert result.xcom("promote_first")["previous_version"] is None

    # a worse candidate: skipped (with its promotion) or failed, the record in XCom either way
    for task in ("worse_skip", "worse_fail"):
        record = result.xcom(task)
        assert record["decision"] == "reject", task
        assert record["candidate"]["version"] == v["worse"]
        assert record["champion"]["version"] == v["weak"]
        assert record["candidate"]["metrics"]["accuracy"] < record["champion"]["metrics"]["accuracy"]
        assert "does not beat champion" in record["reasons"][-1]
    assert result.xcom("promote_worse") is None
    assert "ModelRejected" in logs

    floor = result.xcom("below_floor")
    assert floor["decision"] == "reject"
    assert any("below the floor 0.9900" in r for r in floor["reasons"])
    assert any("beats champion" in r for r in floor["reasons"])  # better, yet below the floor

    assert "has no target column 'label'" in logs
    assert v["unlabelled"] in logs

    # the better candidate is compared with the weak champion, which never moved meanwhile
    better = result.xcom("better")
    assert better["decision"] == "promote"
    assert better["champion"]["version"] == v["weak"]
    assert set(better["candidate"]["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert result.xcom("promote_better") == {
        "model_name": name,
        "alias": "champion",
        "version": v["strong"],
        "previous_version": v["weak"],
    }
    client = mlflow_server.client()
    assert client.get_model_version_by_alias(name, "champion").version == v["strong"]

    # the record and the baseline metrics live on the candidate version
    vtags = client.get_model_version(name, v["strong"]).tags
    assert vtags[tags.EVAL_DECISION] == "promote"
    assert json.loads(vtags[tags.EVAL_RECORD]) == better
    assert json.loads(vtags[tags.EVAL_METRICS]) == better["candidate"]["metrics"]
    assert vtags[tags.EVAL_METRIC] == "accuracy"
    assert vtags[tags.EVAL_DATA_URI] == v["eval"]
    assert client.get_model_version(name, v["worse"]).tags[tags.EVAL_DECISION] == "reject"


def test_hook_alias_lookup_and_model_loading(mlflow_server, versions):
    from airflow_mlops.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    assert hook.get_model_version(versions["name"], alias="no-such-alias", missing_ok=True) is None
    assert hook.get_model_version("no-such-model-xyz", alias="champion", missing_ok=True) is None
    model = hook.load_model(versions["name"], versions["strong"])
    assert hasattr(model, "predict_proba")  # the sklearn flavour, not the pyfunc wrapper
    assert model.predict(make_frame(5, 9)[FEATURES]).shape == (5,)
