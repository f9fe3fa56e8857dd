"""System parts for the end-to-end and native-stack tests: installs, Postgres, processes, REST API.

Everything here is real: Debian's PostgreSQL started on a loopback port in a throw-away data
directory, Airflow and MLflow processes started from the project's venv, and the Airflow REST API
spoken over HTTP with a JWT token, as a user's script would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fixtures import REPO, VENV_BIN, free_port, wait_http

SETUP = REPO / "tests" / "e2e" / "setup.sh"
_READY: set[str] = set()


def ensure_system(*components: str) -> None:
    """Install what ``tests/e2e/setup.sh`` installs (postgres, chromium, java) when it is missing.

    Skips (with the reason) only when it is missing and this user cannot install packages.
    """
    todo = [c for c in components if c not in _READY]
    if not todo:
        return
    proc = subprocess.run(["bash", str(SETUP), *todo], capture_output=True, text=True, timeout=900)
    if proc.returncode == 3:
        pytest.skip(f"cannot install {todo} without root: {proc.stderr.strip()}")
    if proc.returncode != 0:
        raise RuntimeError(f"{SETUP} {' '.join(todo)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    _READY.update(todo)


def pg_bin(name: str) -> str:
    for found in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(found)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL program {name} not found (tests/e2e/setup.sh postgres)")
    return found


class Service:
    """A process we started, in its own process group, logging to a file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path | None = None
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 8.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # children the leader left behind (airflow standalone's components, gunicorn workers)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=10)
        self._log.close()


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust auth, loopback only)."""

    port: int
    data_dir: Path
    as_user: list[str]
    services: list[Service] = field(default_factory=list)

    def url(self, user: str, password: str, db: str) -> str:
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        # the script on stdin, as the postgres image runs its init scripts: statement by statement
        proc = subprocess.run(
            [*self.as_user, pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-f", "-"],
            input=sql, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def run_file(self, path: Path, db: str = "postgres") -> None:
        self.psql(path.read_text(), db=db)

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb + pg_ctl start on a free loopback port; as the ``postgres`` user when we are root."""
    ensure_system("postgres")
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(
        [*as_user, pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-sync"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=32MB"
    proc = subprocess.run(
        [*as_user, pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "server.log"), "-w",
         "-t", "60", "start"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    if proc.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise RuntimeError(f"postgres did not start: {proc.stderr}\n{log[-2000:]}")
    return Postgres(port=port, data_dir=data, as_user=as_user)


class AirflowApi:
    """The Airflow 3 REST API (``/api/v2``) with a JWT from the simple auth manager (``/auth/token``)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = self._request("POST", "/auth/token", {"username": self.username, "password": self.password},
                                 auth=False)  # fmt: skip
            self._token = body["access_token"]
        return self._token

    def _request(self, method: str, path: str, payload: Any = None, auth: bool = True) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path} -> {err.code}: {err.read()[:2000]!r}") from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self._request("GET", "/api/v2" + path)

    def post(self, path: str, payload: Any) -> Any:
        return self._request("POST", "/api/v2" + path, payload)

    def patch(self, path: str, payload: Any) -> Any:
        return self._request("PATCH", "/api/v2" + path, payload)

    def wait_dag(self, dag_id: str, timeout: float, services: list[Service] = ()) -> dict:
        """Wait until the dag-processor has parsed ``dag_id`` and it has no import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _check_alive(services)
            try:
                return self.get(f"/dags/{dag_id}")
            except AssertionError as err:
                if "-> 404" not in str(err):
                    raise
            errors = self.get("/importErrors").get("import_errors", [])
            if errors:
                raise AssertionError(f"DAG import errors: {errors}")
            time.sleep(1)
        raise TimeoutError(f"{dag_id} was not parsed within {timeout}s")

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.patch(f"/dags/{dag_id}", {"is_paused": False})
        run = self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float, services: list[Service] = (),
                 until: tuple[str, ...] = ("success", "failed")) -> str:  # fmt: skip
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            _check_alive(services)
            state = self.run_state(dag_id, run_id)
            if state in until:
                return state
            time.sleep(1)
        raise TimeoutError(
            f"{dag_id}/{run_id} still {state} after {timeout}s: {self.task_states(dag_id, run_id)}"
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}?deserialize=true"
        )
        return entry["value"]

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")["extra_links"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        body = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        )
        content = body.get("content")
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def logs_of_unfinished(self, dag_id: str, run_id: str, chars: int = 3000) -> str:
        """The task logs of every task that did not succeed, for a failure message."""
        out = []
        for task_id, state in self.task_states(dag_id, run_id).items():
            if state not in ("success", "skipped", None):
                try:
                    out.append(
                        f"--- {task_id} ({state}) ---\n{self.task_log(dag_id, run_id, task_id)[-chars:]}"
                    )
                except AssertionError as err:
                    out.append(f"--- {task_id} ({state}): no log: {err}")
        return "\n".join(out)


def stop_all(services: list[Service], timeout: float = 10.0) -> None:
    """SIGTERM every group at once, then wait for all within one shared timeout."""
    for svc in services:
        if svc.alive():
            try:
                os.killpg(svc.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(svc.alive() for svc in services):
        time.sleep(0.2)
    for svc in services:
        svc.stop(timeout=0.1)


def _check_alive(services: list[Service]) -> None:
    for svc in services:
        if not svc.alive():
            raise RuntimeError(f"{svc.name} exited with {svc.proc.returncode}:\n{svc.tail()}")


def wait_url(url: str, timeout: float, service: Service) -> None:
    try:
        wait_http(url, timeout=timeout, proc=service.proc)
    except Exception as err:
        raise RuntimeError(f"{service.name} not serving {url}: {err}\n{service.tail()}") from None


def venv_env(**extra: str) -> dict[str, str]:
    """The test process environment with the venv first on PATH (standalone runs ``airflow``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    for var in ("AIRFLOW_HOME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(var, None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    # no weekly fallback run: unpaused on a Monday after 04:00 UTC, the scheduler starts the week's
    # run, which holds mlops_continuous_training's one active run while a test waits for its own
    env["MLOPS_RETRAIN_CRON"] = "none"
    env.update(extra)
    return env
