"""A real MLflow tracking server that the fault suite SIGKILLs and restarts on the same store.

``FaultServer`` serves ``mlflow.server.fastapi_app`` with uvicorn, configured as ``mlflow server
--backend-store-uri sqlite:///... --artifacts-destination ...`` configures it, on a fixed port of
127.0.0.1. Each (re)start forks a fresh serving process from a zygote that imported the app once
(see ``_zygote.py``): a restart costs ~0.3 s instead of ~10 s, which is what lets the suite kill
the server at every registry call of a promotion and of a rollback. ``CliServer`` is the same
thing with the ``mlflow server`` command itself, for the cases that check the zygote hides
nothing.

Client side, ``fast_fail_env`` makes a dead server fail a call at once (no retries, a short
timeout): with MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) each call to a dead
server would hang for minutes, and a restart inside that window would hide the fault.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers.fixtures import VENV_BIN, free_port

ZYGOTE = Path(__file__).with_name("_zygote.py")
RAM_DISK = Path("/dev/shm")
"""Where the store lives when the machine has one: SQLite's fsync per write is then free, and a
SIGKILL of the server loses nothing either way (the machine does not crash, the process does)."""
FAST_FAIL_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


class _Server:
    root: Path
    port: int
    pid: int | None = None
    kills = 0
    restarts = 0

    def arguments(self) -> list[str]:
        """The ``mlflow server`` arguments (both kinds of server use the same)."""
        return [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.store,
            "--artifacts-destination",
            str(self.root / "artifacts"),
        ]

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> str:
        return f"sqlite:///{self.root}/mlflow.db"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the serving process group by PID and wait until it is gone and the port is free."""
        assert self.pid is not None, "the server is not running"
        pid, self.pid = self.pid, None
        os.killpg(pid, signal.SIGKILL)
        self._reap()
        _wait(lambda: not _alive(pid), 10, f"server {pid} survived SIGKILL")
        _wait(lambda: not self._listening(), 10, f"port {self.port} still answers after SIGKILL")
        self.kills += 1
        with open(self.log, "a") as fh:
            fh.write(f"\n==== SIGKILL of server pid {pid} (kill #{self.kills}) ====\n")

    def _reap(self) -> None:
        """Collect the killed process when it is our child (a zombie still answers ``kill 0``)."""

    def _listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def restart(self) -> None:
        self.start()
        self.restarts += 1


class FaultServer(_Server):
    """Serving processes forked from a zygote; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        (root / "artifacts").mkdir(parents=True, exist_ok=True)
        self._init_store()
        self.log.touch()
        self.zygote = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(self.log), *self.arguments()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        if self.zygote.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the server zygote did not start: {self.log.read_text()[-3000:]}")

    def _init_store(self) -> None:
        # what `mlflow server` does before its workers start: create/upgrade the schema
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(self.store)

    def start(self) -> None:
        assert self.pid is None, "already running"
        self.zygote.stdin.write("start\n")
        self.zygote.stdin.flush()
        self.pid = int(self.zygote.stdout.readline())
        _wait(self.healthy, 60, f"server on {self.uri} did not come up: see {self.log}")

    def close(self) -> None:
        if self.pid is not None:
            self.kill()
        self.zygote.stdin.close()
        self.zygote.wait(timeout=20)


class CliServer(_Server):
    """``mlflow server`` itself, started as its own process group (slow: ~10 s a start)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()

    def start(self) -> None:
        assert self.pid is None, "already running"
        log = open(self.log, "a")  # noqa: SIM115 -- the server writes to it until killed
        proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", *self.arguments()],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        log.close()
        self.pid = proc.pid
        self._proc = proc
        _wait(self.healthy, 400, f"mlflow server on {self.uri} did not come up: see {self.log}")

    def _reap(self) -> None:
        self._proc.wait(timeout=10)

    def close(self) -> None:
        if self.pid is not None:
            self.kill()
