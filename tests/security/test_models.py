"""S4: loading a registered model never runs code the deployment did not vet.

Anyone who can register a model version (or move ``@champion``) could make the Airflow worker
unpickle it: evaluation loads the candidate and the champion, the performance sensor loads the
watched version. Here three versions carry a harmless payload that creates a marker file when
loaded (a cloudpickled scikit-learn model, a pyfunc ``PythonModel``) or trust a dangerous type in
their own MLmodel file (skops, ``builtins.eval``); the real sensor and operator load them in a DAG
run against a real MLflow server. None may load, none may write its marker, and the message must
say how to re-register the model safely.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.integration


class Payload:
    """Unpickling this creates ``path`` (``open(path, "w")``): the harmless stand-in for any code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _register(client, name: str, model_dir: Path) -> str:
    import mlflow

    with mlflow.start_run(experiment_id=client.get_experiment_by_name("Default").experiment_id) as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    return str(version.version)


@pytest.fixture(scope="module")
def poisoned(mlflow_server, tmp_path_factory) -> SimpleNamespace:
    import builtins

    import cloudpickle
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from airflow_mlops.hooks.mlflow import MlflowHook

    root = tmp_path_factory.mktemp("poisoned")
    markers = root / "markers"
    markers.mkdir()
    tag = uuid.uuid4().hex[:6]
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]
    names = SimpleNamespace(
        cloudpickle=f"victim-cloudpickle-{tag}", pyfunc=f"victim-pyfunc-{tag}", skops=f"victim-skops-{tag}",
        safe=f"safe-skops-{tag}", markers=markers,
    )  # fmt: skip

    # a scikit-learn model saved with cloudpickle, its pickle swapped for the payload
    mlflow.sklearn.save_model(LogisticRegression().fit(X, y), root / "cp", serialization_format="cloudpickle",
                              pip_requirements=["scikit-learn"])  # fmt: skip
    (root / "cp" / "model.pkl").write_bytes(cloudpickle.dumps(Payload(str(markers / "cloudpickle"))))

    class Harmless(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    mlflow.pyfunc.save_model(root / "pf", python_model=Harmless(), pip_requirements=["mlflow"])
    (root / "pf" / "python_model.pkl").write_bytes(cloudpickle.dumps(Payload(str(markers / "pyfunc"))))

    # skops, with a dangerous type trusted by the model's own MLmodel file
    evil = Pipeline([("f", FunctionTransformer(func=builtins.eval)), ("m", LogisticRegression().fit(X, y))])
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(evil))
    mlflow.sklearn.save_model(evil, root / "sk", serialization_format="skops", skops_trusted_types=trusted,
                              pip_requirements=["scikit-learn", "skops"])  # fmt: skip
    mlflow.sklearn.save_model(LogisticRegression().fit(X, y), root / "safe", serialization_format="skops",
                              pip_requirements=["scikit-learn", "skops"])  # fmt: skip

    with MlflowHook().session() as client:
        for name, folder in ((names.cloudpickle, "cp"), (names.pyfunc, "pf"), (names.skops, "sk"), (names.safe, "safe")):  # fmt: skip
            version = _register(client, name, root / folder)
            client.set_registered_model_alias(name, "champion", version)
    assert not list(markers.iterdir())  # registering ran nothing
    return names


def test_the_sensor_and_evaluation_refuse_models_that_run_code_on_load(
    dag_runner, poisoned, churn_data, capfd
):
    p = poisoned
    run = dag_runner.run(
        f"""
        import pendulum
        from airflow.sdk import dag
        from airflow_mlops.operators.evaluation import EvaluateModelOperator
        from airflow_mlops.sensors.performance import ModelPerformanceSensor

        @dag(dag_id="t_unsafe_models", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        def unsafe():
            ModelPerformanceSensor(
                task_id="watch_cloudpickle_champion", model_uri="models:/{p.cloudpickle}@champion",
                data={churn_data.eval!r}, target="label", metric="accuracy", min_value=0.5,
                mode="poke", poke_interval=1, timeout=30,
            )
            for task_id, name in (("evaluate_pyfunc", {p.pyfunc!r}), ("evaluate_skops", {p.skops!r})):
                EvaluateModelOperator(
                    task_id=task_id, model_name=name, candidate_version="1",
                    eval_data={churn_data.eval!r}, target="label", metric="accuracy",
                )

        unsafe()
        """
    )
    logs = "".join(capfd.readouterr())
    assert run.task_states == {
        "watch_cloudpickle_champion": "failed",
        "evaluate_pyfunc": "failed",
        "evaluate_skops": "failed",
    }, logs[-3000:]
    assert list(p.markers.iterdir()) == []  # no payload ran
    assert f"UnsafeModelError: {p.cloudpickle} v1 is a scikit-learn model stored as cloudpickle" in logs
    assert f"{p.pyfunc} v1 is a pyfunc PythonModel" in logs
    assert f"{p.skops} v1 (skops) holds types this deployment does not trust: ['builtins.eval']" in logs
    assert "serialization_format='skops'" in logs and "[mlops] trusted_pickle_models" in logs


def test_pickles_load_only_for_a_model_the_deployment_trusts_by_name(poisoned, monkeypatch):
    from airflow_mlops.exceptions import UnsafeModelError
    from airflow_mlops.hooks.mlflow import MlflowHook

    p, hook = poisoned, MlflowHook()
    assert hasattr(hook.load_model(p.safe, "1"), "predict_proba")  # skops: loads, as before

    monkeypatch.setenv("AIRFLOW__MLOPS__TRUSTED_PICKLE_MODELS", p.cloudpickle)
    with pytest.raises(UnsafeModelError, match="pyfunc PythonModel"):
        hook.load_model(p.pyfunc, "1")  # another model stays refused
    assert list(p.markers.iterdir()) == []
    hook.load_model(p.cloudpickle, "1")  # the opted-in one runs MLflow's loader: the payload runs
    assert [m.name for m in p.markers.iterdir()] == ["cloudpickle"]
    (p.markers / "cloudpickle").unlink()

    monkeypatch.setenv("AIRFLOW__MLOPS__TRUSTED_SKOPS_TYPES", "numpy.dtype,builtins.eval")
    monkeypatch.delenv("AIRFLOW__MLOPS__TRUSTED_PICKLE_MODELS")
    assert hook.load_model(p.skops, "1") is not None  # vetted by the deployment, not by the model
