"""Data and report files for operators: URIs in, DataFrames out, reports written; errors as task
failures that name the input."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.data import DataReadError, content_hash, is_local, read_table
from airflow_mlops.exceptions import DataInputError
from airflow_mlops.trust import check_data_location

if TYPE_CHECKING:
    import pandas as pd


def _storage_options(uri: str, conn_id: str | None) -> dict[str, Any] | None:
    """fsspec options from an Airflow connection, through ObjectStoragePath's filesystem."""
    if not conn_id or "://" not in uri or uri.startswith("file://"):
        return None
    from airflow.sdk import ObjectStoragePath

    fs = ObjectStoragePath(uri, conn_id=conn_id).fs
    return dict(getattr(fs, "storage_options", {}) or {})


def load_table(uri: str, *, conn_id: str | None = None, what: str = "data", **kwargs: Any) -> pd.DataFrame:
    """Read a table for an operator; any read problem fails the task with the URI in the message."""
    check_data_location(uri, what)
    try:
        return read_table(str(uri), storage_options=_storage_options(str(uri), conn_id), **kwargs)
    except DataReadError as err:
        raise DataInputError(f"{what}: {err}") from err


def hash_table(uri: str, *, conn_id: str | None = None) -> str:
    check_data_location(uri)
    try:
        return content_hash(str(uri), storage_options=_storage_options(str(uri), conn_id))
    except DataReadError as err:
        raise DataInputError(str(err)) from err


def _safe_segment(part: Any) -> str:
    """A portable folder name: a run id like ``manual__2025-01-01T00:00:00+00:00`` has ``:`` and
    ``+``; an all-dots id (``.``, ``..``) would step out of its folder."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(part))
    return "_" * len(text) if set(text) <= {"."} else text


def default_report_dir(kind: str, context: Any) -> str:
    """``$AIRFLOW_HOME/reports/<kind>/<dag_id>/<run_id>/<task_id>[.<map_index>]`` with portable
    folder names."""
    ti = context["ti"]
    task = ti.task_id
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        task = f"{task}.{map_index}"
    home = os.path.abspath(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")))
    return os.path.join(
        home, "reports", _safe_segment(kind), *(_safe_segment(p) for p in (ti.dag_id, ti.run_id, task))
    )


def write_report(folder: str, name: str, text: str) -> str:
    """Write ``text`` as ``folder/name`` (a local folder, ``file://`` or an fsspec URL) and return
    its URI: ``file:///abs/path`` for a local file, the URL itself otherwise."""
    folder = str(folder).rstrip("/")
    if not is_local(folder):
        import fsspec

        uri = f"{folder}/{name}"
        with fsspec.open(uri, "w", encoding="utf-8") as fh:
            fh.write(text)
        return uri
    local = folder[len("file://") :] if folder.startswith("file://") else folder
    path = os.path.abspath(os.path.join(local, name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return "file://" + path
