"""Fixtures of the trust-boundary regression tests (docs/security.md).

Each test runs the real path a trigger user or a registry user reaches: a DAG run with a conf in
real Airflow (``dag.test()``), a real ``mlflow server``, real files. Payloads are harmless: they
write a marker file, and the tests assert that the marker is *not* there.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from tests.helpers.fixtures import REPO

REFERENCE_DAG = REPO / "dags" / "mlops_continuous_training.py"
SUITE = REPO / "include" / "expectations" / "churn.json"
ENTRYPOINT = REPO / "include" / "training" / "train.py"
SECRET = "DB_PASSWORD=hunter2-RT42"


def _demo_data_module():
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "include" / "demo" / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def churn_data(tmp_path_factory) -> SimpleNamespace:
    """The demo's churn stream, small: ``train``/``eval`` (parquet) under ``root``, plus
    ``eval_flipped`` (the evaluation data with every label flipped: any candidate is rejected on
    it), and a ``.env`` file beside the data root holding a secret."""
    root = tmp_path_factory.mktemp("churn") / "data"
    manifest = _demo_data_module().generate(root, days=1, rows_per_day=200, train_rows=1200, eval_rows=500)
    import pandas as pd

    flipped = pd.read_parquet(manifest["eval"])
    flipped["label"] = 1 - flipped["label"]
    flipped.to_parquet(root / "eval_flipped.parquet", index=False)
    env = root.parent / ".env"
    env.write_text(f"{SECRET}\nAPI_KEY=abc\n")
    return SimpleNamespace(
        root=root,
        train=manifest["train"],
        eval=manifest["eval"],
        eval_flipped=str(root / "eval_flipped.parquet"),
        env_file=env,
    )


@pytest.fixture
def reference_dag(dag_runner, mlflow_server, model_name, churn_data, monkeypatch):
    """Run ``dags/mlops_continuous_training.py`` itself, with its settings pointed at the test's
    model, data and the repository's suite and entrypoint: ``reference_dag(conf)``."""
    settings = {
        "MLOPS_MODEL_NAME": model_name,
        "MLOPS_DATA_ROOT": str(churn_data.root),
        "MLOPS_QUALITY_SUITE": str(SUITE),
        "MLOPS_TRAINING_ENTRYPOINT": str(ENTRYPOINT),
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    source = REFERENCE_DAG.read_text()

    def run(conf: dict | None = None):
        return dag_runner.run(source, dag_id="mlops_continuous_training", conf=conf)

    run.model_name = model_name
    return run
