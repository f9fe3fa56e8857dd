"""Data and report files for operators: URIs in, DataFrames out, reports written; errors as task
failures that name the input."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.data import DataReadError, content_hash, is_local, read_table
from airflow_mlops.core.engines.uri import DataRef, check_engine, parse_data_uri
from airflow_mlops.exceptions import DataInputError
from airflow_mlops.trust import check_data_location

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.engines.base import EngineInput, EngineSession

AUTO_DUCKDB_ROWS = 2_000_000
"""``engine="auto"``: parquet inputs with more rows than this (``[mlops] duckdb_auto_rows``) go
to DuckDB when it is installed."""


def storage_options(uri: str, conn_id: str | None) -> dict[str, Any] | None:
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
        return read_table(str(uri), storage_options=storage_options(str(uri), conn_id), **kwargs)
    except DataReadError as err:
        raise DataInputError(f"{what}: {err}") from err


def parse_data(uri: str, *, what: str = "data") -> DataRef:
    """Parse a data URI (file, ``sql://<conn_id>/...``, ``spark://<conn_id>/...``); a malformed one
    fails the task naming ``what``. The single entry point every data input goes through, so the
    deployment's data policy is checked here, before anything (a parquet footer, a connection) is
    read: ``sql://`` and ``spark://`` name an Airflow connection, so they are read only when
    ``[mlops] allowed_data_schemes`` lists them (and ``allowed_data_roots`` can name the
    connections, e.g. ``sql://warehouse``)."""
    check_data_location(uri, what)
    try:
        return parse_data_uri(str(uri), what)
    except ValueError as err:
        raise DataInputError(str(err)) from None


def choose_engine(ref: DataRef, engine: str, *, conn_id: str | None = None, what: str = "data") -> str:
    """Where ``ref`` is read: ``pandas`` or ``duckdb`` for files, ``sql`` or ``spark`` for tables.

    ``engine="auto"`` picks DuckDB for parquet data of more than ``[mlops] duckdb_auto_rows``
    rows (read from the parquet footers) when DuckDB is installed, else pandas.
    """
    try:
        engine = check_engine(engine)
    except ValueError as err:
        raise DataInputError(str(err)) from None
    if ref.is_table:
        return ref.kind
    if engine != "auto":
        return engine
    import importlib.util

    if importlib.util.find_spec("duckdb") is None:
        return "pandas"
    from airflow.providers.common.compat.sdk import conf

    limit = conf.getint("mlops", "duckdb_auto_rows", fallback=AUTO_DUCKDB_ROWS)
    rows = parquet_rows(ref.uri, conn_id=conn_id)
    return "duckdb" if rows is not None and rows > limit else "pandas"


def parquet_rows(uri: str, *, conn_id: str | None = None) -> int | None:
    """Rows of parquet data from the footers alone; None for CSV or unreadable data (pandas then
    reads it and reports what is wrong)."""
    from airflow_mlops.core.data import _format_of, list_parts

    options = storage_options(str(uri), conn_id)
    try:
        parts = list_parts(str(uri), options)
        if any(_format_of(p) != "parquet" for p in parts):
            return None
        import fsspec
        import pyarrow.parquet as pq

        if is_local(str(uri)):
            return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        fs, _ = fsspec.core.url_to_fs(str(uri), **(options or {}))
        total = 0
        for part in parts:
            with fs.open(part, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total
    except Exception:
        return None


@contextmanager
def engine_session(conn_id: str | None = None) -> Iterator[EngineSession]:
    """A session that opens engine inputs (:func:`open_data`) and closes them all at the end."""
    from airflow_mlops.engines.base import EngineSession

    with EngineSession(object_storage_conn_id=conn_id) as session:
        yield session


def open_data(session: EngineSession, ref: DataRef, engine: str, *, what: str = "data") -> EngineInput:
    """Open a parsed input on its engine (``duckdb``, ``sql`` or ``spark``) in ``session``."""
    return session.open(ref, engine, what)


def hash_table(uri: str, *, conn_id: str | None = None) -> str:
    check_data_location(uri)
    try:
        return content_hash(str(uri), storage_options=storage_options(str(uri), conn_id))
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
