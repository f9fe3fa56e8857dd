"""Training: what registering a job's output costs, and what running the entrypoint as a job costs.

Prints side-by-side timings and ratios (no pass/fail):

* register: the operator's path (log the job's model files + register ``runs:/<id>/model``)
  vs re-logging the loaded model with ``mlflow.sklearn.log_model`` with explicit
  ``pip_requirements`` vs without (MLflow then infers requirements: the ~5 s to avoid);
* job: ``include/training/train.py`` in a subprocess (what the local backend runs) vs the same
  ``main()`` in-process (the difference is interpreter start and imports).

Run: ``.venv/bin/python bench/training.py`` (starts its own ``mlflow server`` on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.fixtures import free_port, wait_http  # noqa: E402

ENTRYPOINT = REPO / "include" / "training" / "train.py"
REPEAT = 3


def make_data(root: Path) -> tuple[str, str]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "plan": rng.choice(["a", "b", "c"], size=n)}
    )
    df["label"] = (df.x1 - df.x2 + (df.plan == "a") + rng.normal(scale=0.5, size=n) > 0).astype(int)
    df.iloc[:1500].to_parquet(root / "train.parquet")
    df.iloc[1500:].to_parquet(root / "validation.parquet")
    return str(root / "train.parquet"), str(root / "validation.parquet")


def timed(fn, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-training-"))
    train, validation = make_data(root)
    params = json.dumps({"model": "random_forest", "n_estimators": 50, "seed": 1})
    argv = ["--train", train, "--validation", validation, "--params", params]

    # job: subprocess vs in-process
    def job_subprocess():
        subprocess.run(
            [sys.executable, str(ENTRYPOINT), *argv, "--output-dir", str(root / "out-sub")],
            check=True,
            capture_output=True,
        )

    import runpy

    entry = runpy.run_path(str(ENTRYPOINT))  # imports pandas/sklearn/mlflow once, like a warm worker
    entry["main"]([*argv, "--output-dir", str(root / "out-warm")])

    def job_inprocess():
        entry["main"]([*argv, "--output-dir", str(root / "out-in")])

    t_sub = timed(job_subprocess, 2)
    t_in = timed(job_inprocess, 2)

    # register: against a real tracking server
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root}/mlflow.db",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_http(f"{uri}/health", timeout=120, proc=server)
        import mlflow
        import mlflow.sklearn

        mlflow.set_tracking_uri(uri)
        output = root / "out-in"
        model = mlflow.sklearn.load_model(str(output / "model"))
        reqs = (output / "model" / "requirements.txt").read_text().split()

        def operator_path():
            with mlflow.start_run() as run:
                mlflow.log_params({"n_estimators": 50})
                mlflow.log_metrics(json.loads((output / "metrics.json").read_text()))
                mlflow.log_artifacts(str(output / "model"), artifact_path="model")
                mlflow.log_artifact(str(output / "metrics.json"))
            mlflow.register_model(f"runs:/{run.info.run_id}/model", "bench-files")

        def relog(pip_requirements):
            def fn():
                with mlflow.start_run():
                    mlflow.sklearn.log_model(
                        model,
                        name="model",
                        pip_requirements=pip_requirements,
                        skops_trusted_types=["numpy.dtype", "sklearn.tree._tree.Tree"],
                        registered_model_name="bench-relog",
                    )

            return fn

        operator_path()  # warm the client
        t_files = timed(operator_path)
        t_relog = timed(relog(reqs))
        t_infer = timed(relog(None), 1)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"{'case':64s} {'seconds':>8s} {'ratio':>7s}")
    rows = [
        ("register: job files + register_model (operator)", t_files, t_files),
        ("register: mlflow.sklearn.log_model, explicit pip_requirements", t_relog, t_files),
        ("register: mlflow.sklearn.log_model, inferred requirements", t_infer, t_files),
        ("job: train.py in a subprocess (local backend)", t_sub, t_in),
        ("job: train.py main() in-process, imports warm", t_in, t_in),
    ]
    for label, value, base in rows:
        print(f"{label:64s} {value:8.2f} {value / base:6.1f}x")


if __name__ == "__main__":
    main()
