"""What parse-time purity saves for the cloud backends, and what a submission costs locally.

Prints, side by side, the import time of each backend module (what a DAG parse or a worker that
never trains there pays) against the import of the SDK the backend loads only when it is used,
and the time to package a training folder for SageMaker and Vertex AI.

    .venv/bin/python bench/cloud_backends.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAIRS = [
    (
        "sagemaker",
        "airflow_mlops.backends.sagemaker",
        "airflow.providers.amazon.aws.hooks.sagemaker, airflow.providers.amazon.aws.triggers.sagemaker",
    ),
    (
        "vertex_ai",
        "airflow_mlops.backends.vertex_ai",
        "airflow.providers.google.cloud.hooks.vertex_ai.custom_job, google.cloud.aiplatform_v1",
    ),
    ("azure_ml", "airflow_mlops.backends.azure_ml", "azure.ai.ml, azure.identity"),
]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def import_seconds(modules: str) -> float:
    """Median wall time of importing ``modules`` after Airflow's SDK (both pay that base)."""
    code = (
        "import time, importlib; import airflow.sdk; t = time.perf_counter(); "
        f"[importlib.import_module(m.strip()) for m in {modules!r}.split(',')]; "
        "print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def packaging_seconds() -> tuple[float, float, int]:
    sys.path.insert(0, str(REPO))
    from airflow_mlops.backends.sagemaker import pack_source_dir
    from airflow_mlops.backends.vertex_ai import build_python_package

    folder = REPO / "include" / "training"
    with tempfile.TemporaryDirectory():
        t = time.perf_counter()
        for _ in range(20):
            data = pack_source_dir(str(folder))
        tar = (time.perf_counter() - t) / 20
        t = time.perf_counter()
        for _ in range(20):
            build_python_package(str(folder), ["mlflow"])
        sdist = (time.perf_counter() - t) / 20
    return tar, sdist, len(data)


def main() -> None:
    print(f"import cost after airflow.sdk (median of {RUNS} fresh interpreters)")
    print(f"{'backend':<10} {'module (parse)':>15} {'SDK (when used)':>16} {'ratio':>8}")
    for name, module, sdk in PAIRS:
        light = import_seconds(module)
        heavy = import_seconds(sdk)
        print(f"{name:<10} {light:>14.3f}s {heavy:>15.3f}s {heavy / max(light, 1e-4):>7.0f}x")
    tar, sdist, size = packaging_seconds()
    print(
        f"packaging include/training: sourcedir.tar.gz {tar * 1000:.1f} ms ({size} bytes), "
        f"Vertex sdist {sdist * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
