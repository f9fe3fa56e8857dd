"""Where the plugin's pages live, and the settings it reads: standard library only, so extra links
on the worker can build a plugin URL without importing the web app.

Settings (``[mlops]`` section of the API server's configuration, or ``AIRFLOW__MLOPS__<KEY>``):

* ``report_roots``: comma-separated folders (local paths or object-storage URLs such as
  ``s3://bucket/reports``) the report page may serve files from, besides the default
  ``$AIRFLOW_HOME/reports``. List here the ``report_dir`` of every task that sets one.
* ``report_conn_id``: the Airflow connection used to read reports on object storage (default: the
  filesystem's own credentials).
* ``rollback_dag_id``: the DAG the model page's *Roll back* button triggers (default
  ``mlops_rollback``); who may see the model pages is who may read this DAG.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode, urlsplit

URL_PREFIX = "/mlops"
"""Mount point of the plugin app on the API server."""
REPORTS = "reports"
MODELS = "models"
SECTION = "mlops"
DEFAULT_ROLLBACK_DAG = "mlops_rollback"
REPORT_SUFFIXES = {".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
                   ".json": "application/json"}  # fmt: skip
"""The report files the page serves, with the content type each is served with."""


def default_report_root() -> str:
    """``$AIRFLOW_HOME/reports``: where the gates and the drift sensor write without a ``report_dir``."""
    home = os.path.abspath(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")))
    return os.path.join(home, "reports")


def report_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """The plugin path (under the API server's root) that serves the report of one task instance."""
    query = {"run_id": run_id, "task_id": task_id}
    if map_index is not None and int(map_index) >= 0:
        query["map_index"] = str(map_index)
    return f"{URL_PREFIX}/{REPORTS}/{quote(dag_id, safe='')}?{urlencode(query)}"


def model_path(name: str) -> str:
    return f"{URL_PREFIX}/{MODELS}/{quote(name, safe='')}"


def absolute(path: str, base_url: str | None) -> str:
    """``path`` under the API server's ``[api] base_url`` when one is configured (it may carry a
    root path, e.g. ``https://host/airflow``), else the root-relative path itself."""
    if not base_url:
        return path
    parts = urlsplit(base_url)
    root = parts.path.rstrip("/")
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}{root}{path}"
    return f"{root}{path}"
