"""The built wheel registers as a provider in an Airflow that has nothing else of ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _uv(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "uv", *args], check=True, capture_output=True, timeout=600)


def test_wheel_in_fresh_airflow_venv_is_a_provider(tmp_path):
    import airflow

    _uv("build", "--wheel", "-q", "-o", str(tmp_path / "dist"), str(REPO))
    wheel = next((tmp_path / "dist").glob("airflow_mlops-*.whl"))
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    _uv("venv", "-q", "--python", sys.executable, str(venv))
    _uv("pip", "install", "-q", "--python", str(python), f"apache-airflow=={airflow.__version__}")
    # --no-deps: the venv holds apache-airflow and our wheel only; provider discovery must not
    # need mlflow, pandas or any other runtime dependency
    _uv("pip", "install", "-q", "--no-deps", "--python", str(python), str(wheel))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    airflow_cli = str(venv / "bin" / "airflow")

    def cli(*args: str) -> list[dict]:
        out = subprocess.run(
            [airflow_cli, *args, "-o", "json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return json.loads(out.stdout)

    providers = {p["package_name"]: p for p in cli("providers", "list")}
    assert "airflow-mlops" in providers
    assert providers["airflow-mlops"]["version"] == wheel.name.split("-")[1]
    hooks = {h["connection_type"]: h for h in cli("providers", "hooks")}
    assert hooks["mlflow"]["class"] == "airflow_mlops.hooks.mlflow.MlflowHook"
    assert hooks["mlflow"]["package_name"] == "airflow-mlops"
    assert hooks["azure_ml"]["class"] == "airflow_mlops.hooks.azure_ml.AzureMLHook"
