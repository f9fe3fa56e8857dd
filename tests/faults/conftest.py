"""Fixtures of the fault-injection suite: one killable MLflow server for the session, a hook
whose client can crash it, and the crash points recorded from a clean promotion and rollback.

A failed case keeps the server log of its own span under ``tests/artifacts/faults/``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.faults.proxy import CrashPoint, FaultyClient, crash_points, distinct_states
from tests.faults.server import FAST_FAIL_ENV, RAM_DISK, FaultServer
from tests.helpers.fixtures import REPO

ARTIFACTS = REPO / "tests" / "artifacts" / "faults"
_RECORDED: dict[str, list[str]] = {}
_RUN: Any = None  # the run the versions of every case point at


def recorded_calls() -> dict[str, list[str]]:
    """The calls of a clean promotion and rollback, recorded once per session on an embedded
    store (the protocol makes the same calls on any store; a test checks it on the server)."""
    if not _RECORDED:
        from mlflow import MlflowClient

        from tests.faults.scenario import record_calls

        with tempfile.TemporaryDirectory(prefix="mlops-faults-record-") as tmp:
            store = f"sqlite:///{tmp}/mlflow.db"
            _RECORDED.update(record_calls(MlflowClient(tracking_uri=store, registry_uri=store)))
    return _RECORDED


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for op in ("promote", "rollback"):
        for argname, select in ((f"{op}_point", crash_points), (f"{op}_state_point", distinct_states)):
            if argname in metafunc.fixturenames:
                points = select(recorded_calls()[op])
                metafunc.parametrize(argname, points, ids=[p.id for p in points])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> FaultServer:
    root = Path(tempfile.mkdtemp(prefix="mlops-faults-", dir=RAM_DISK if RAM_DISK.is_dir() else None))
    server = FaultServer(root)
    server.start()
    yield server
    server.close()
    shutil.copy(server.log, tmp_path_factory.mktemp("fault-server") / "server.log")
    shutil.rmtree(root, ignore_errors=True)


class Faults:
    """What a case works with: the server, a direct client, and hooks (faulty or not)."""

    def __init__(self, server: FaultServer) -> None:
        from mlflow import MlflowClient

        self.server = server
        self.client = MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)

    def model(self) -> str:
        from tests.faults.scenario import new_model

        global _RUN
        if _RUN is None:
            _RUN = self.client.create_run(self.client.get_experiment_by_name("Default").experiment_id)
        return new_model(self.client, _RUN)

    def faulty(self, point: CrashPoint | None = None, *, restart: bool = False) -> FaultyClient:
        return FaultyClient(self.client, self.server, point, restart=restart)

    def hook(self, client: Any = None) -> Any:
        """An ``MlflowHook`` on the server whose sessions hand out ``client`` (default: a plain one)."""
        from airflow_mlops.hooks.mlflow import MlflowHook

        class _Hook(MlflowHook):
            def get_conn(inner):  # noqa: N805 -- the hook instance; ``self`` is the fixture
                return MlflowHook.get_conn(inner) if client is None else client

        return _Hook(mlflow_conn_id=None)


@pytest.fixture
def faults(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Faults:
    for key, value in FAST_FAIL_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fault_server.uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    if not fault_server.healthy():
        fault_server.restart()
    offset = fault_server.log.stat().st_size if fault_server.log.exists() else 0
    yield Faults(fault_server)
    if fault_server.pid is None:  # a case that left the server dead
        fault_server.restart()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid) + ".server.log")
        with open(fault_server.log, "rb") as fh:
            fh.seek(offset)
            target.write_bytes(fh.read())
