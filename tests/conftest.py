"""Shared test set-up.

One migrated Airflow home (SQLite) per test session, created before anything imports Airflow,
and a real MLflow tracking server on 127.0.0.1 for the tests that need one.
"""

from __future__ import annotations

import os
import shutil
import tempfile

# Airflow reads its configuration once, at first import: the session home must be in the
# environment before any test module imports airflow.
_HOME = tempfile.mkdtemp(prefix="mlops-test-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_HOME, "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP"] = ".*"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "AIRFLOW_CONN_MLFLOW_DEFAULT"):
    os.environ.pop(_var, None)
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)

pytest_plugins = ["tests.helpers.fixtures"]


def pytest_sessionfinish(session, exitstatus) -> None:
    """The session's Airflow home goes with a passing run (every run used to leave 10 MB in the
    temporary folder: hundreds of runs filled the disk CI runs on); a failing run keeps it, with
    its task logs, and says where."""
    if exitstatus == 0:
        shutil.rmtree(_HOME, ignore_errors=True)
    else:
        print(f"\nThe Airflow home of this session, with its task logs, is kept: {_HOME}")


def pytest_collection_modifyitems(config, items) -> None:
    """The compat tier runs last: its installs start in the background once the tests are
    collected (:func:`pytest_collection_finish`) and overlap every other tier."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/compat/"))


def pytest_collection_finish(session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.nodeid.startswith("tests/compat/test_compat.py::test_smoke") for item in session.items):
        from tests.compat.test_compat import start_smoke

        start_smoke()
