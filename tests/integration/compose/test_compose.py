"""The compose stack, checked without a Docker engine.

What can be checked here is checked for real: the YAML parses as compose reads it (merge keys,
variable substitution), the services, ports, volumes and health checks are there, every connection
and Variable the DAGs read is set and resolves through the real hook, each COPY source is in the
build context after .dockerignore, and the image's ``pip install`` target builds into this package.
The services themselves are started natively by test_native_stack.py.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.helpers.fixtures import REPO
from tests.integration.compose.compose_file import (
    AIRFLOW_COMPONENTS,
    build_context_files,
    conn_env_name,
    dag_requirements,
    dockerfile_copies,
    dockerfile_instructions,
    dockerignore_rules,
    is_ignored,
    load_compose,
    service_env,
    var_env_name,
)

pytestmark = pytest.mark.integration

# Connections the package's operators use by default: the reference DAGs may rely on defaults
# without naming them, and the Params form can pick any training backend.
DEFAULT_CONNECTIONS = {
    "mlflow_default": "mlflow",
    "aws_default": "aws",
    "google_cloud_default": "google_cloud_platform",
    "azure_ml_default": "azure_ml",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose({})


def _long_running(compose: dict) -> list[str]:
    return [name for name in compose["services"] if name != "airflow-init"]


def test_services_ports_volumes_and_health_checks(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "mlflow", "airflow-init", *AIRFLOW_COMPONENTS}

    for name in _long_running(compose):
        check = services[name].get("healthcheck", {}).get("test")
        assert check and check[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"

    commands = {name: services[name]["command"] for name in AIRFLOW_COMPONENTS}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name in (*AIRFLOW_COMPONENTS, "airflow-init", "mlflow"):
        svc = services[name]
        assert svc["build"] == ".", f"{name} must run the image built from this checkout"
        assert svc["image"] == "airflow-mlops:local"
    for name in AIRFLOW_COMPONENTS:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["mlflow"]["condition"] == "service_healthy", name

    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert "5000:5000" in services["mlflow"]["ports"]
    assert "curl --fail http://localhost:8080/api/v2/monitor/health" == " ".join(
        services["airflow-apiserver"]["healthcheck"]["test"][1:]
    )

    # every named volume is declared; every bind mount's source is in the checkout
    declared = set(compose["volumes"])
    for name, svc in services.items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                if source == "./dags" and not (REPO / "dags").exists():
                    continue  # the reference DAGs (another issue) are checked below once they exist
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the checkout"
            else:
                assert source in declared, f"{name} uses volume {source}, not declared under volumes:"
    mounts = services["airflow-scheduler"]["volumes"]
    assert "./dags:/opt/airflow/dags" in mounts and "./include:/opt/airflow/include" in mounts


def test_airflow_components_share_one_configuration(compose: dict) -> None:
    services = compose["services"]
    envs = {name: service_env(services[name]) for name in (*AIRFLOW_COMPONENTS, "airflow-init")}
    base = envs["airflow-scheduler"]
    assert base["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/airflow" in base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert base["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert base["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    for name, env in envs.items():
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__FERNET_KEY",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"):  # fmt: skip
            assert env.get(key) == base[key], f"{name}: {key} differs from the scheduler's"

    # airflow-init: migrates, creates the pool the registry operators use, writes the login
    script = services["airflow-init"]["command"][-1]
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set mlops_registry 1 ", script)
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    user = envs["airflow-init"]["AIRFLOW_ADMIN_USER"]
    assert base["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{user}:admin"

    from airflow_mlops.operators.registry import DEFAULT_POOL

    assert DEFAULT_POOL == "mlops_registry"


def _options(args: list[str]) -> dict[str, str | None]:
    """``--name value`` pairs of a command line; a flag followed by another flag has None."""
    opts: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            opts[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return opts


def test_mlflow_server_has_its_own_postgres_database_and_an_artefact_volume(compose: dict) -> None:
    mlflow = compose["services"]["mlflow"]
    assert mlflow["entrypoint"] == ["mlflow"]
    args = mlflow["command"]
    assert args[0] == "server"
    opts = _options(args[1:])
    store = opts["--backend-store-uri"]
    m = re.fullmatch(r"postgresql\+psycopg2://(\w+):(\w+)@postgres:5432/(\w+)", store)
    assert m, store
    user, password, db = m.groups()
    airflow_db = service_env(compose["services"]["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert not airflow_db.endswith(f"/{db}"), "MLflow must not share Airflow's metadata database"
    assert "--serve-artifacts" in args
    assert f"mlflow-artifacts:{opts['--artifacts-destination']}" in mlflow["volumes"]
    assert "mlflow:5000" in opts["--allowed-hosts"].split(","), "Airflow containers call it mlflow:5000"

    # the init script mounted into Postgres creates exactly that role and database
    init = next(v for v in compose["services"]["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    sql = (REPO / init.split(":")[0]).read_text()
    assert f"CREATE ROLE {user} WITH LOGIN PASSWORD '{password}'" in sql
    assert f"CREATE DATABASE {db} OWNER {user}" in sql


def _connections(env: dict[str, str]) -> dict[str, object]:
    from airflow.models.connection import Connection

    conns = {}
    for key, value in env.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn_id = key[len("AIRFLOW_CONN_") :].lower()
            conns[conn_id] = (
                Connection.from_json(value, conn_id=conn_id) if value.lstrip().startswith("{")
                else Connection(conn_id=conn_id, uri=value)
            )  # fmt: skip
    return conns


def test_default_connections_are_preset_and_resolve(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AIRFLOW_COMPONENTS:
        conns = _connections(service_env(compose["services"][name]))
        for conn_id, conn_type in DEFAULT_CONNECTIONS.items():
            assert conn_id in conns, f"{name} lacks {conn_env_name(conn_id)}"
            assert conns[conn_id].conn_type == conn_type, (name, conn_id)

    # the real hook, reading the real environment variable, finds the MLflow service
    env = service_env(compose["services"]["airflow-scheduler"])
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", env["AIRFLOW_CONN_MLFLOW_DEFAULT"])
    from airflow_mlops.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    assert hook.tracking_uri == "http://mlflow:5000"
    assert hook.ui_base_url == "http://localhost:5000", "links must open in the user's browser"
    assert hook.model_version_url("m", 3) == "http://localhost:5000/#/models/m/versions/3"
    port = compose["services"]["mlflow"]["command"]
    assert port[port.index("--port") + 1] == "5000"

    # an override from .env replaces the default link base
    overrides = load_compose({"MLFLOW_UI_URL": "https://mlflow.example.org"})
    overridden = service_env(overrides["services"]["airflow-scheduler"])
    assert (
        json.loads(overridden["AIRFLOW_CONN_MLFLOW_DEFAULT"])["extra"]["ui_url"]
        == "https://mlflow.example.org"
    )


def test_every_connection_and_variable_the_dags_read_is_set(compose: dict) -> None:
    dags = REPO / "dags"
    if not any(dags.glob("*.py")):
        pytest.skip("dags/ holds no DAG file yet (the reference DAGs are another issue)")
    conns, variables = dag_requirements(dags)
    for name in AIRFLOW_COMPONENTS:
        env = service_env(compose["services"][name])
        missing = sorted(conn_env_name(c) for c in conns if conn_env_name(c) not in env)
        missing += sorted(var_env_name(v) for v in variables if var_env_name(v) not in env)
        assert not missing, f"{name} does not set {missing}, which the DAGs in dags/ read"


def test_dockerfile_copies_only_what_the_build_context_holds() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    image = instructions[0][1]
    m = re.fullmatch(r"apache/airflow:([\d.]+)-python3\.11", image)
    assert m, image
    assert m.group(1) == importlib.metadata.version("apache-airflow"), "tests run a different Airflow"

    rules = dockerignore_rules()
    for never in (".venv/bin/python", ".git/HEAD", ".airflow/airflow.db", "tests/conftest.py",
                  "airflow_mlops/__pycache__/x.pyc", "tests/artifacts/ui.png"):  # fmt: skip
        assert is_ignored(never, rules), f".dockerignore lets {never} into the build context"

    copies = dockerfile_copies()
    assert copies, "the Dockerfile copies nothing"
    for copy in copies:
        for source in copy.sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the build context"
            assert not is_ignored(source, rules), f"COPY {source}: excluded by .dockerignore"
            assert build_context_files([source]), f"COPY {source}: every file under it is ignored"

    tracked = subprocess.run(["git", "ls-files", "airflow_mlops", "include"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    sent = set(build_context_files([s for c in copies for s in c.sources]))
    lost = [f for f in tracked if f not in sent]
    assert not lost, f"tracked files the image would lack: {lost}"


def _pip_install_targets() -> list[str]:
    for word, rest in dockerfile_instructions():
        if word == "RUN" and "pip install" in rest:
            args = shlex.split(rest)
            return [a for a in args if a.startswith(("/", "."))]
    raise AssertionError("the Dockerfile has no RUN pip install")


@pytest.mark.slow
def test_image_pip_install_target_builds_this_package(tmp_path: Path) -> None:
    """Lay the COPY'd files out as the image has them, then build the install target for real."""
    uv = shutil.which("uv") or os.path.expanduser("~/.local/bin/uv")
    targets = _pip_install_targets()
    assert len(targets) == 1, targets
    target, _, extras = targets[0].partition("[")
    assert extras.rstrip("]") == "all"

    image_root = tmp_path / "image"
    for copy in dockerfile_copies():
        for source in copy.sources:
            src = REPO / source
            for rel in build_context_files([source]):
                # COPY dir dest copies the directory's contents into dest; COPY file dest/ the file
                inside = Path(rel).relative_to(source) if src.is_dir() else Path(src.name)
                dest = image_root / copy.dest.lstrip("/") / inside
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest)
    project = image_root / target.lstrip("/")
    assert (project / "pyproject.toml").exists(), f"{target} has no pyproject.toml in the image"

    out = tmp_path / "dist"
    proc = subprocess.run([uv, "build", "--quiet", "--wheel", "--out-dir", str(out), str(project)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "Name: airflow-mlops" in meta
    for extra in ("all", "amazon", "google", "azure"):
        assert f"Provides-Extra: {extra}" in meta
    assert "airflow_mlops/provider_info.py" in names and "airflow_mlops/operators/registry.py" in names
    assert (
        "apache_airflow_provider" in entry_points
        and "airflow_mlops.provider_info:get_provider_info" in entry_points
    )
