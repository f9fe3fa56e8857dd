"""The demo's Airflow: a local home (SQLite, migrated once), the reference DAGs run one after the
other with ``dag.test()`` in this process, and what each run did, read back from the database.

``include/demo/run.py`` tells the story on top of it (:class:`LocalAirflow` is the base of its
``Demo``); ``tests/integration/dags/test_demo.py`` runs more DAGs in the demo's home with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
POOL = ("mlops_registry", "1", "airflow-mlops: serialises registry alias moves")


class LocalAirflow:
    """A local Airflow home for ``dags_folder``; subclasses add their settings in :meth:`env`."""

    def __init__(self, home: Path, dags_folder: Path, logs: Path) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.logs = logs
        self.steps: list[dict[str, Any]] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of the DAG runs (and of the ``airflow`` CLI): this home and the DAGs,
        none of the caller's Airflow, MLflow or mlops settings."""
        drop = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "MLFLOW_", "MLOPS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
        )
        env.update(extra or {})
        return env

    def airflow(
        self, *args: str, log_name: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        cmd = [str(BIN / "airflow"), *args]
        log_path = self.logs / f"{log_name}.log" if log_name else None
        with open(log_path or os.devnull, "w") as log:
            proc = subprocess.run(cmd, env=self.env(env), stdout=log, stderr=subprocess.STDOUT, cwd=self.home)
        if check and proc.returncode != 0:
            where = f"; see {log_path}" if log_path else ""
            raise SystemExit(
                f"demo: `airflow {' '.join(args)}` failed with exit code {proc.returncode}{where}"
            )
        return proc

    def migrate_once(self, say: Any = print) -> None:
        """``airflow db migrate`` and the registry pool the DAGs use, the first time only."""
        marker = self.home / ".demo-migrated"
        if marker.exists() and (self.home / "airflow.db").exists():
            return
        began = time.monotonic()
        say(f"Setting up the Airflow home {self.home} (SQLite, migrated once) ...")
        self.airflow("db", "migrate", log_name="db-migrate")
        self.airflow("pools", "set", *POOL, log_name="pools")
        marker.write_text(dt.datetime.now(dt.timezone.utc).isoformat())
        say(f"  done in {time.monotonic() - began:.0f} s")

    def activate(self) -> None:
        """Point this process at the home, the DAGs and :meth:`env` (before anything imports
        Airflow): the DAG runs happen in this process."""
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.env()
        for key in [k for k in os.environ if k not in env]:
            del os.environ[key]
        os.environ.update(env)

    # ------------------------------------------------------------------ running DAGs

    def run_dag(
        self, step: str, dag_id: str, logical_date: str, conf: dict | None = None, env: dict | None = None
    ) -> dict[str, Any]:
        """Run one DAG with ``dag.test()`` (what ``airflow dags test`` calls), then read what it did
        from the Airflow database. The runs share this process, so Airflow, MLflow, GX and Evidently
        are imported once, not once per run; each run's output goes to its own log file."""
        events_before = self.asset_event_ids()
        log_path = self.logs / f"{step}.log"
        began, cpu_before = time.monotonic(), _cpu()
        with _environ(env), _output_to(log_path):
            self.test_dag(dag_id, logical_date, conf)
        seconds, cpu = time.monotonic() - began, _cpu() - cpu_before
        run = self.read_run(dag_id, logical_date)
        run.update(
            step=step,
            seconds=round(seconds, 1),
            cpu_seconds=round(cpu, 1),
            log=str(log_path),
            asset_events=sorted(
                uri for uri, ids in self.asset_event_ids().items() if ids - events_before.get(uri, set())
            ),
        )
        self.steps.append(run)
        if run["state"] != "success":
            failed = [t for t, s in run["tasks"].items() if s in ("failed", "upstream_failed")]
            raise SystemExit(
                f"demo: {dag_id} ended {run['state']} (failed tasks: {', '.join(failed) or '-'}); "
                f"see {run['log']}"
            )
        return run

    def test_dag(self, dag_id: str, logical_date: str, conf: dict | None) -> None:
        """Parse the DAGs folder (under this run's environment: a DAG file may read it at parse
        time) and ``dag.test()`` one of them. A failure is printed to the run's log; the caller
        reads the run's state from the database."""
        import traceback

        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(str(self.dags_folder))
        if bag.import_errors:
            raise SystemExit(f"demo: DAG files did not import: {bag.import_errors}")
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise SystemExit(f"demo: no DAG {dag_id} in {self.dags_folder}")
        try:
            dag.test(logical_date=_utc(logical_date), run_conf=conf)
        except Exception:
            traceback.print_exc()

    def read_run(self, dag_id: str, logical_date: str) -> dict[str, Any]:
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        when = _utc(logical_date)
        with create_session() as session:
            dr = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == when))
            if dr is None:
                raise SystemExit(f"demo: no run of {dag_id} at {logical_date} was recorded")
            tasks = {ti.task_id: _state(ti.state) for ti in dr.get_task_instances(session=session)}
            xcoms: dict[str, Any] = {}
            for row in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag_id)).all():
                if not row.key.startswith("_link_"):
                    xcoms[f"{row.task_id}.{row.key}"] = XComModel.deserialize_value(row)
            return {
                "dag_id": dag_id,
                "run_id": dr.run_id,
                "state": _state(dr.state),
                "tasks": tasks,
                "xcom": xcoms,
            }

    def asset_event_ids(self) -> dict[str, set[int]]:
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        found: dict[str, set[int]] = {}
        with create_session() as session:
            rows = session.execute(
                select(AssetModel.uri, AssetEvent.id).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            ).all()
        for uri, event_id in rows:
            found.setdefault(uri, set()).add(event_id)
        return found


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the training jobs)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _utc(logical_date: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(logical_date)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


@contextlib.contextmanager
def _environ(extra: dict[str, str] | None) -> Iterator[None]:
    """This run's extra environment (e.g. the canary gate a DAG file reads), restored after."""
    saved = {k: os.environ.get(k) for k in extra or {}}
    os.environ.update(extra or {})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send everything this process writes (Airflow's task logs included) to ``path`` meanwhile:
    the story stays readable and each run keeps its log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _state(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))
