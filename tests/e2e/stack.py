"""The ``airflow standalone`` every end-to-end test shares, its logins, and what a failure keeps.

Started once per session by the launcher ``make airflow`` uses (include/demo/standalone.py) on free
loopback ports, with the reference DAGs, the embedded MLflow store and ``mlflow ui`` beside it, and
its metadata in a throw-away PostgreSQL (tests/e2e/system.py), as a deployment has it: SQLite makes
the scheduler, the API server and parallel tasks queue for one database lock. Two
logins: ``admin`` and ``viewer`` (reads everything, triggers nothing). ``airflow standalone`` always
runs the simple auth manager, whose roles cannot hide one DAG from a user: that side of the plugin's
authorisation is tested in-process (tests/integration/plugins/test_app.py).

When a test fails, its screenshots and page, the standalone log (scheduler, API server, triggerer,
dag-processor, ``mlflow ui``) and every Airflow log file (task attempts included) are kept under
``tests/artifacts/e2e-failure/``, so a failure on CI explains itself.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.system import AirflowApi, Postgres, Service, start_postgres, stop_all, venv_env, wait_url
from tests.helpers.fixtures import REPO, free_port

TRAINING_DAG = "mlops_continuous_training"
ROLLBACK_DAG = "mlops_rollback"
MODEL = "churn"  # MODEL_NAME in the reference DAGs
ARTIFACTS = REPO / "tests" / "artifacts"
FAILURE = ARTIFACTS / "e2e-failure"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RUN_TIMEOUT = 600  # seconds; a training run takes ~1 min alone, several when other suites share the cores
ROLES = {"admin": "admin", "viewer": "viewer"}
BACKEND_TITLES = [
    "The Airflow worker (local)",
    "Amazon SageMaker",
    "Google Vertex AI",
    "Azure Machine Learning",
]
"""What the trigger form's backend choice shows (the Param's ``values_display``); the value sent is the key."""


@dataclass
class Standalone:
    url: str
    mlflow_url: str
    root: Path
    service: Service
    passwords: dict[str, str]
    pg: Postgres | None = None
    _log_offset: int = 0
    _log_seen: str = field(default="", repr=False)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def data(self) -> Path:
        return self.home / "demo-data"

    @property
    def api(self) -> AirflowApi:
        return self.api_as("admin")

    def api_as(self, user: str) -> AirflowApi:
        return AirflowApi(self.url, user, self.passwords[user])

    def mlflow_client(self):
        from mlflow import MlflowClient

        store = f"sqlite:///{self.home / 'mlflow.db'}"
        return MlflowClient(tracking_uri=store, registry_uri=store)

    def champion(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.mlflow_client().get_model_version_by_alias(MODEL, "champion").version)
        except MlflowException:
            return None

    def log_since_start(self) -> str:
        """The standalone log so far (read incrementally: it grows to megabytes)."""
        with open(self.service.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            chunk = fh.read()
        self._log_offset += len(chunk)
        self._log_seen += chunk.decode(errors="replace")
        return self._log_seen

    def wait_parked(self, dag_id: str, run_id: str, task_id: str, timeout: float = RUN_TIMEOUT) -> None:
        """Wait until the task waits for a human *and* the scheduler has processed the exit of the
        attempt that parked it.

        Answering before that loses the answer on Airflow 3.3: the resumed attempt shares the parked
        one's try number, and when the scheduler drains the parked attempt's late "success" after the
        resumed one was sent to the executor, it marks the task instance failed as "killed
        externally". The resumed attempt's log then ends after "Pre Execute".
        There is no API for the scheduler's side of this, so its log line is the state waited for.
        """
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        deadline = time.monotonic() + timeout
        pattern = None
        while time.monotonic() < deadline:
            ti = self.api.get(path)
            if ti["state"] not in ("awaiting_input", "deferred"):
                if ti["state"] in ("success", "failed", "skipped", "upstream_failed"):
                    raise AssertionError(f"{task_id} ended {ti['state']} before it waited for input")
                pattern = None
            elif pattern is None:
                key = (f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', "
                       f"try_number={ti['try_number']}, ")  # fmt: skip
                pattern = re.compile(r"Received executor event with state (success|failed) for task instance "
                                     + re.escape(key))  # fmt: skip
            if pattern is not None and pattern.search(self.log_since_start()):
                return
            if not self.service.alive():
                raise RuntimeError(f"standalone exited:\n{self.service.tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"{task_id} of {run_id} not parked and drained by the scheduler within {timeout}s")

    def approve(self, dag_id: str, run_id: str, task_id: str, user: str = "admin") -> None:
        """Answer the task's Human-in-the-loop request with *Approve* through the REST API, as the
        Required Actions page does, once Airflow can take the answer (:meth:`wait_parked`)."""
        self.wait_parked(dag_id, run_id, task_id)
        api = self.api if user == "admin" else self.api_as(user)
        api.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
            {"chosen_options": ["Approve"], "params_input": {}},
        )


def start_standalone() -> Standalone:
    root = Path(tempfile.mkdtemp(prefix="mlops-e2e-"))
    pg = start_postgres()
    port, mlflow_port = free_port(), free_port()
    passwords = {user: secrets.token_urlsafe(12) for user in ROLES}
    try:
        pg.psql("CREATE ROLE airflow WITH LOGIN PASSWORD 'airflow'")
        pg.psql("CREATE DATABASE airflow OWNER airflow")
    except BaseException:
        pg.stop()
        raise
    argv = [sys.executable, str(REPO / "include" / "demo" / "standalone.py"), "--port", str(port),
            "--mlflow-port", str(mlflow_port), "--home", str(root / "home"), "--dags", str(REPO / "dags"),
            # "--option=value": a generated password may start with "-", which argparse would
            # take for an option (1 start in 64 failed that way)
            "--user=admin", f"--password={passwords['admin']}",
            "--config", f"database__sql_alchemy_conn={pg.url('airflow', 'airflow', 'airflow')}",
            # the scheduler's and triggerer's log servers default to fixed ports: two stacks on one
            # machine (other suites, other checkouts) would fight over them
            "--config", f"logging__worker_log_server_port={free_port()}",
            "--config", f"logging__trigger_log_server_port={free_port()}"]  # fmt: skip
    for user, role in ROLES.items():
        if user != "admin":
            argv.append(f"--extra-user={user}:{role}:{passwords[user]}")
    service = Service("standalone", argv, venv_env(), root)
    sa = Standalone(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}", root, service, passwords, pg
    )
    try:
        wait_url(f"{sa.url}/api/v2/monitor/health", 420, service)
        # The execution API builds its versioned routes on its first request (Cadwyn), in the event
        # loop of the API server's only worker: on a loaded machine that held every request for
        # more than 30 s, right when the first tasks started. Done here, before any test waits.
        wait_url(f"{sa.url}/execution/health", 600, service)
        wait_url(f"{sa.mlflow_url}/health", 120, service)
        for dag_id in (TRAINING_DAG, ROLLBACK_DAG):
            sa.api.wait_dag(dag_id, timeout=180, services=[service])
    except BaseException:
        stop_standalone(sa, keep_logs=True)
        raise
    return sa


def stop_standalone(sa: Standalone, keep_logs: bool) -> None:
    stop_all([sa.service], timeout=15)
    if keep_logs:
        FAILURE.mkdir(parents=True, exist_ok=True)
        shutil.copy(sa.service.log_path, FAILURE / "standalone.log")
        if (sa.home / "logs").is_dir():
            shutil.copytree(sa.home / "logs", FAILURE / "airflow-logs", dirs_exist_ok=True)
    if sa.pg is not None:
        sa.pg.stop()
    shutil.rmtree(sa.root, ignore_errors=True)


def login(browser, sa: Standalone, user: str = "admin"):
    """A new browser context logged in to the Airflow UI as ``user``; returns its first page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(sa.url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", sa.passwords[user])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/auth/login" not in u)
    return page


def shot(page, folder: str, name: str) -> None:
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=False)


def set_json(page, form, text: str) -> None:
    """Replace the content of the trigger form's JSON editor (Monaco) as a paste would."""
    form.locator(".monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text(text)
