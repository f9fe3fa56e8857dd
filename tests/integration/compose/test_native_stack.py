"""The compose stack's services started natively on loopback, with the compose file's own settings.

Postgres (Debian's packages, installed by tests/e2e/setup.sh when missing) with the databases the
compose stack creates; ``mlflow server`` with the compose command line; airflow-init's script; the
api-server, scheduler, dag-processor and triggerer with the compose environment. Service host
names (``postgres:5432``, ``mlflow:5000``, ``airflow-apiserver:8080``) and container paths are
rewritten to loopback ports and temp folders; nothing else is changed, except fewer web workers
on this 2-core machine. Then the compose health checks are run as written, and one DAG runs end to
end through the REST API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.system import AirflowApi, Postgres, Service, start_postgres, stop_all, venv_env, wait_url
from tests.helpers.fixtures import REPO, VENV_BIN, free_port
from tests.integration.compose.compose_file import AIRFLOW_COMPONENTS, load_compose, service_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "mlops_continuous_training"


@dataclass
class NativeStack:
    api: AirflowApi
    mlflow_uri: str
    pg: Postgres
    services: dict[str, Service]
    root: Path
    rewrite: dict[str, str]
    compose: dict

    def healthcheck(self, name: str) -> subprocess.CompletedProcess:
        test = [_sub(part, self.rewrite) for part in self.compose["services"][name]["healthcheck"]["test"]]
        argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        if argv[0] in ("airflow", "python", "mlflow"):
            argv[0] = str(VENV_BIN / argv[0])
        from airflow.utils.net import get_hostname

        # in a container $HOSTNAME is the name the components record for their jobs
        env = {**self.env_of(name), "HOSTNAME": get_hostname()}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    def env_of(self, name: str) -> dict[str, str]:
        return _native_env(self.compose["services"][name], self.rewrite, self.root)


def _sub(value: str, rewrite: dict[str, str]) -> str:
    for old, new in rewrite.items():
        value = value.replace(old, new)
    return value


def _native_env(service: dict, rewrite: dict[str, str], root: Path) -> dict[str, str]:
    env = venv_env(**{k: _sub(v, rewrite) for k, v in service_env(service).items()})
    env.update(
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=rewrite["localhost:8080"].split(":")[1],
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=rewrite["localhost:8974"].split(":")[1],
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW_UID=str(os.getuid()),
    )
    return env


@pytest.fixture(scope="module")
def stack() -> NativeStack:
    root = Path(tempfile.mkdtemp(prefix="mlops-native-stack-"))
    t0 = time.monotonic()
    pg = start_postgres()
    services: dict[str, Service] = {}
    try:
        compose = load_compose({})
        ports = {name: free_port() for name in ("api", "mlflow", "health")}
        rewrite = {
            "postgres:5432": f"127.0.0.1:{pg.port}",
            "mlflow:5000": f"127.0.0.1:{ports['mlflow']}",
            "localhost:5000": f"127.0.0.1:{ports['mlflow']}",
            "airflow-apiserver:8080": f"127.0.0.1:{ports['api']}",
            "localhost:8080": f"127.0.0.1:{ports['api']}",
            "localhost:8974": f"127.0.0.1:{ports['health']}",
            # the image's AIRFLOW_HOME, holding the mounted dags/ and include/ and the volumes
            "/opt/airflow": str(root / "airflow"),
            "/mlartifacts": str(root / "mlartifacts"),
        }
        # what the postgres image does on first start: POSTGRES_USER/DB, then the init scripts
        pg_env = service_env(compose["services"]["postgres"])
        pg.psql(
            f"CREATE ROLE {pg_env['POSTGRES_USER']} WITH LOGIN SUPERUSER PASSWORD '{pg_env['POSTGRES_PASSWORD']}'"
        )
        pg.psql(f"CREATE DATABASE {pg_env['POSTGRES_DB']} OWNER {pg_env['POSTGRES_USER']}")
        for mount in compose["services"]["postgres"]["volumes"]:
            if "docker-entrypoint-initdb.d" in mount:
                pg.run_file(REPO / mount.split(":")[0])

        # the compose bind mounts ./dags and ./include
        (root / "airflow").mkdir()
        (root / "airflow" / "dags").symlink_to(REPO / "dags", target_is_directory=True)
        (root / "airflow" / "include").symlink_to(REPO / "include", target_is_directory=True)
        logs = root / "service-logs"
        logs.mkdir()

        # MLflow: the compose command line, on loopback
        mlflow_svc = compose["services"]["mlflow"]
        args = [_sub(a, rewrite) for a in mlflow_svc["command"]]
        args[args.index("--host") + 1] = "127.0.0.1"
        args[args.index("--port") + 1] = str(ports["mlflow"])
        args[args.index("--workers") + 1] = "1"
        mlflow_env = venv_env(**service_env(mlflow_svc))
        services["mlflow"] = Service("mlflow", [str(VENV_BIN / mlflow_svc["entrypoint"][0]), *args], mlflow_env,
                                     logs, cwd=root)  # fmt: skip
        mlflow_uri = f"http://127.0.0.1:{ports['mlflow']}"

        # airflow-init: the compose script as written
        init = compose["services"]["airflow-init"]
        init_env = _native_env(init, rewrite, root)
        script = _sub(init["command"][-1], rewrite)
        proc = subprocess.run(
            ["bash", "-c", script], env=init_env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"airflow-init failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        print(f"native stack: postgres + airflow-init in {time.monotonic() - t0:.0f}s")

        for name in AIRFLOW_COMPONENTS:
            svc = compose["services"][name]
            services[name] = Service(name, [str(VENV_BIN / "airflow"), svc["command"]],
                                     _native_env(svc, rewrite, root), logs)  # fmt: skip
        wait_url(f"{mlflow_uri}/health", 120, services["mlflow"])
        wait_url(f"http://127.0.0.1:{ports['api']}/api/v2/monitor/health", 180, services["airflow-apiserver"])
        print(f"native stack: all services up in {time.monotonic() - t0:.0f}s")
        api = AirflowApi(f"http://127.0.0.1:{ports['api']}", init_env["AIRFLOW_ADMIN_USER"],
                         init_env["AIRFLOW_ADMIN_PASSWORD"])  # fmt: skip
        yield NativeStack(api, mlflow_uri, pg, services, root, rewrite, compose)
    finally:
        stop_all(list(services.values()))
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_compose_services_run_natively_and_complete_a_dag(stack: NativeStack) -> None:
    procs = list(stack.services.values())
    # airflow-init's work: the pool the registry operators rely on, on Postgres
    pool = stack.api.get("/pools/mlops_registry")
    assert pool["slots"] == 1

    # the compose health checks, run as written, pass for every long-running service
    deadline = time.monotonic() + 120
    pending = {"mlflow", *AIRFLOW_COMPONENTS}
    failures: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        with ThreadPoolExecutor(len(pending)) as pool:  # each `airflow jobs check` imports Airflow
            results = dict(zip(sorted(pending), pool.map(stack.healthcheck, sorted(pending)), strict=True))
        for name, result in results.items():
            if result.returncode == 0:
                pending.discard(name)
            else:
                failures[name] = (result.stdout + result.stderr)[-500:]
        if pending:
            time.sleep(3)
    assert not pending, f"health checks still failing: { {n: failures.get(n) for n in pending} }"
    print(f"native stack: compose health checks pass after {time.monotonic() - deadline + 120:.0f}s")
    t0 = time.monotonic()

    api = stack.api
    api.wait_dag(DAG_ID, timeout=120, services=procs)
    run_id = api.trigger(DAG_ID, {"reason": "native compose run"})
    try:
        state = api.wait_run(DAG_ID, run_id, timeout=300, services=procs)
    except TimeoutError as err:
        raise AssertionError(f"{err}\n{api.logs_of_unfinished(DAG_ID, run_id)}") from None
    tasks = api.task_states(DAG_ID, run_id)
    print(f"native stack: {DAG_ID} {state} in {time.monotonic() - t0:.0f}s: {tasks}")
    assert state == "success", f"run {state}: {tasks}\n{api.logs_of_unfinished(DAG_ID, run_id)}"
    assert tasks == {
        "validate_train_data": "success",
        "validate_eval_data": "success",
        "train": "success",
        "evaluate": "success",
        "decide_promotion": "success",
        "no_approval_needed": "success",
        "request_approval": "skipped",
        "promote": "success",
    }

    promoted = api.xcom(DAG_ID, run_id, "promote")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    champion = client.get_model_version_by_alias(promoted["model_name"], "champion")
    assert str(champion.version) == str(promoted["version"])
    # the model's files went through the server's artefact proxy into the artefact volume
    stored = list((stack.root / "mlartifacts").rglob("MLmodel"))
    assert stored, f"no model under the artefact destination {stack.root / 'mlartifacts'}"
    # both stores are Postgres databases of their own
    assert stack.pg.psql("SELECT count(*) FROM registered_models", db="mlflow").strip() != "0"
    assert (
        stack.pg.psql(f"SELECT state FROM dag_run WHERE run_id = '{run_id}'", db="airflow").strip()
        == "success"
    )
