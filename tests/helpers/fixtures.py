"""Fixtures: migrated Airflow home, real MLflow server, and a runner for test DAGs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except Exception as err:  # not up yet
            last = err
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's migrated Airflow home (SQLite), with the promotion pool created."""
    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if not marker.exists():
        airflow = str(VENV_BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)
        subprocess.run(
            [
                airflow,
                "pools",
                "set",
                "mlops_registry",
                "1",
                "airflow-mlops: serialises registry alias moves",
            ],
            check=True,
            capture_output=True,
        )
        marker.touch()
    return home


@dataclass
class MlflowServer:
    uri: str
    proc: subprocess.Popen
    root: Path

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite store, served artefacts), for the session.

    Sets ``AIRFLOW_CONN_MLFLOW_DEFAULT`` so operators with the default connection use it.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
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
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        # The server's background job runner starts seven huey consumers: on two cores they
        # starve everything else, and nothing here uses server-side jobs.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", timeout=400, proc=proc)
    except Exception:
        proc.kill()
        raise RuntimeError((root / "server.log").read_text()[-4000:]) from None
    os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = json.dumps({"conn_type": "mlflow", "host": uri})
    yield MlflowServer(uri=uri, proc=proc, root=root)
    os.environ.pop("AIRFLOW_CONN_MLFLOW_DEFAULT", None)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def model_name() -> str:
    """A registered-model name no other test uses."""
    return f"test-model-{uuid.uuid4().hex[:8]}"


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str | None] = field(default_factory=dict)

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(run_id=self.run_id, key=key, task_ids=task_id, dag_ids=self.dag_id)
            ).first()
            return None if row is None else XComModel.deserialize_value(row)


class DagRunner:
    """Writes a DAG file into the session's dags folder, loads it with a DagBag, runs ``dag.test()``."""

    def __init__(self, dags_folder: Path) -> None:
        self.dags_folder = dags_folder

    def run(self, source: str, dag_id: str | None = None, conf: dict | None = None) -> DagRunResult:
        from airflow.dag_processing.dagbag import DagBag

        source = textwrap.dedent(source)
        dag_id = dag_id or _dag_id_of(source)
        path = self.dags_folder / f"{dag_id}.py"
        path.write_text(source)
        bag = DagBag(str(path))
        if bag.import_errors:
            raise AssertionError(f"DAG file did not import: {bag.import_errors}")
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} not in {list(bag.dags)}"
        dr = dag.test(run_conf=conf)
        states = {
            ti.task_id: (str(getattr(ti.state, "value", ti.state)) if ti.state else None)
            for ti in dr.get_task_instances()
        }
        return DagRunResult(
            dag_id=dag_id,
            run_id=dr.run_id,
            state=str(getattr(dr.state, "value", dr.state)),
            task_states=states,
        )


def _dag_id_of(source: str) -> str:
    import re

    match = re.search(r"dag_id\s*=\s*[\"']([^\"']+)[\"']", source)
    if not match:
        raise ValueError("pass dag_id=... or write dag_id='...' in the DAG source")
    return match.group(1)


@pytest.fixture
def dag_runner(airflow_home: Path) -> DagRunner:
    """Run a DAG given as source text in real Airflow (``dag.test()``, SQLite)."""
    return DagRunner(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]))
