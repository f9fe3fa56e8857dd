"""Start the Airflow UI on this machine: ``airflow standalone`` with the reference DAGs and MLflow.

``make airflow`` runs this. It needs no server: Airflow keeps its metadata in SQLite under
AIRFLOW_HOME and MLflow its registry in the embedded store the package uses by default
(``sqlite:///$AIRFLOW_HOME/mlflow.db``, artefacts in ``$AIRFLOW_HOME/mlartifacts``), so the models
``make demo`` trained are the ones the UI shows. Beside it, ``mlflow ui`` serves that store, and
the ``mlflow_default`` connection's ``ui_url`` extra makes the tasks' MLflow links open there.

What it sets up, every start (idempotent):

* the metadata database (``airflow db migrate``) and the ``mlops_registry`` pool (1 slot) that
  serialises alias moves;
* the demo data stream in ``$AIRFLOW_HOME/demo-data`` (the reference DAGs' default data) if absent;
* one admin login for the simple auth manager (``--user``/``--password``, default admin/admin),
  and more logins with other roles with ``--extra-user name:role:password`` (viewer, user, op, admin);
* the airflow-mlops plugin (the *Report* links, *Browse -> Models*): registered by the package's
  entry point; an editable install made before the plugin existed lacks that entry point, and then
  the provider's own registration is used (``[core] lazy_discover_providers = False``);
* any other Airflow setting with ``--config section__key=value``;
* everything on 127.0.0.1 only.

Usage::

    python include/demo/standalone.py [--port 8080] [--mlflow-port 5000] [--home .airflow]

Stop with Ctrl-C. Standard library only: it runs with the project's venv and starts the
``airflow`` and ``mlflow`` commands installed beside the interpreter.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "mlops_registry"


def build_env(home: Path, dags: Path, host: str, port: int, mlflow_ui_url: str | None,
              users: dict[str, str], config: dict[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """The environment of ``airflow standalone`` and of every component it starts.

    :param users: login -> role of the simple auth manager.
    :param config: more Airflow settings, ``{"section__key": value}``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    tracking = "sqlite:///" + str(home / "mlflow.db")
    conn = {"conn_type": "mlflow", "host": tracking}
    if mlflow_ui_url:
        conn["extra"] = {"ui_url": mlflow_ui_url}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone runs `airflow ...`
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",  # one web worker is plenty for one user, and spares a core
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                home / "simple_auth_manager_passwords.json"
            ),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(conn),
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    if not _plugin_entry_point():
        env["AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS"] = "False"
    for key, value in (config or {}).items():
        env[f"AIRFLOW__{key.upper()}"] = value
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _plugin_entry_point() -> bool:
    """True when the installed airflow-mlops declares its UI plugin as an ``airflow.plugins`` entry point."""
    return any(
        ep.value.startswith("airflow_mlops.")
        for ep in importlib.metadata.entry_points(group="airflow.plugins")
    )


def prepare(home: Path, env: dict[str, str], passwords: dict[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "simple_auth_manager_passwords.json").write_text(json.dumps(passwords) + "\n")
    _run([str(BIN / "airflow"), "db", "migrate"], env, "migrating the metadata database")
    _run([str(BIN / "airflow"), "pools", "set", POOL, "1", "airflow-mlops: serialises registry alias moves"],
         env, f"creating pool {POOL}")  # fmt: skip
    data = home / "demo-data"
    if not (data / "train.parquet").exists():
        _run([sys.executable, str(PROJECT / "include" / "demo" / "data.py"), "--out", str(data)], env,
             f"generating the demo data stream in {data}")  # fmt: skip


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    print(f"standalone: {what}", flush=True)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(
            f"standalone: {what} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )


def _wait(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except Exception:
            time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="airflow standalone with the airflow-mlops reference DAGs")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", 8080)))
    parser.add_argument("--mlflow-port", type=int, default=int(os.environ.get("MLFLOW_PORT", 5000)))
    parser.add_argument("--no-mlflow-ui", action="store_true", help="do not start `mlflow ui` beside Airflow")
    parser.add_argument("--home", default=os.environ.get("AIRFLOW_HOME", str(PROJECT / ".airflow")))
    parser.add_argument(
        "--dags", default=str(PROJECT / "dags"), help="DAGs folder (default: the reference DAGs)"
    )
    parser.add_argument("--user", default=os.environ.get("AIRFLOW_ADMIN_USER", "admin"))
    parser.add_argument("--password", default=os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"))
    parser.add_argument("--extra-user", action="append", default=[], metavar="NAME:ROLE:PASSWORD",
                        help="another login (role: viewer, user, op or admin); repeatable")  # fmt: skip
    parser.add_argument("--config", action="append", default=[], metavar="SECTION__KEY=VALUE",
                        help="an Airflow setting, e.g. mlops__report_roots=s3://bucket/reports; repeatable")  # fmt: skip
    args = parser.parse_args(argv)

    users, passwords = {args.user: "admin"}, {args.user: args.password}
    for spec in args.extra_user:
        name, role, password = spec.split(":", 2)
        users[name], passwords[name] = role, password
    config = dict(item.split("=", 1) for item in args.config)
    home = Path(args.home).resolve()
    mlflow_url = None if args.no_mlflow_ui else f"http://{args.host}:{args.mlflow_port}"
    env = build_env(home, Path(args.dags).resolve(), args.host, args.port, mlflow_url, users, config)
    prepare(home, env, passwords)

    # Own process group: Ctrl-C or a test's stop reaches every component standalone starts.
    children: list[subprocess.Popen] = []
    if mlflow_url:
        (home / "mlartifacts").mkdir(exist_ok=True)
        children.append(
            subprocess.Popen(
                [
                    str(BIN / "mlflow"),
                    "ui",
                    "--host",
                    args.host,
                    "--port",
                    str(args.mlflow_port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    "sqlite:///" + str(home / "mlflow.db"),
                    "--default-artifact-root",
                    (home / "mlartifacts").as_uri(),
                ],
                env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )  # fmt: skip
        )
    airflow = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env)
    children.append(airflow)

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    try:
        url = f"http://{args.host}:{args.port}"
        if _wait(f"{url}/api/v2/monitor/health", airflow, timeout=300):
            lines = [
                f"Airflow UI   {url}   login: {args.user} / {args.password}",
                f"Models       {url}/mlops/models   (Browse -> Models; the tasks' Report links open here too)",
                f"MLflow UI    {mlflow_url}" if mlflow_url else "MLflow UI    not started (--no-mlflow-ui)",
                f"DAGs         {args.dags}",
                f"AIRFLOW_HOME {home}   (MLflow store: {home / 'mlflow.db'})",
                "Trigger mlops_continuous_training from its page (Trigger -> form); approvals appear under",
                "Browse -> Required Actions. Ctrl-C stops everything.",
            ]
            width = max(map(len, lines))
            print("\n".join(["", "=" * width, *lines, "=" * width, ""]), flush=True)
        return airflow.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
