"""DuckDB embedded in the worker: parquet/CSV files and folders, out of core.

The connection gets a memory limit, a spill folder and a thread count (``[mlops]
duckdb_memory_limit``, default ``1GB``; ``duckdb_threads``, default 2), so a 100-million-row
table is scanned, grouped and sorted on disk rather than in the worker's memory. Object storage
(``s3://``, ``gs://``, ``abfs://``) is read through the fsspec filesystem of the input's
connection (the same one pandas uses), registered with DuckDB.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.data import DataReadError, is_local, list_parts
from airflow_mlops.core.engines.sql import Source, function_source
from airflow_mlops.engines.base import EngineRunner
from airflow_mlops.exceptions import DataInputError, require_extra

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.quality.gx import GxSource

DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2


def settings() -> dict[str, Any]:
    from airflow.providers.common.compat.sdk import conf

    return {
        "memory_limit": conf.get("mlops", "duckdb_memory_limit", fallback=DEFAULT_MEMORY_LIMIT),
        "threads": conf.getint("mlops", "duckdb_threads", fallback=DEFAULT_THREADS),
    }


class DuckDBRunner(EngineRunner):
    dialect = "duckdb"
    name = "duckdb"

    def __init__(self, con: Any, spill_dir: str, config: dict[str, Any], filesystems: list[Any]) -> None:
        self.con = con
        self.spill_dir = spill_dir
        self.config = config
        self.filesystems = filesystems
        self.storage_conn_id: str | None = None

    @classmethod
    def open(cls, storage_conn_id: str | None = None) -> DuckDBRunner:
        require_extra("duckdb", "the DuckDB engine", "engines")
        import duckdb

        spill = tempfile.mkdtemp(prefix="mlops-duckdb-")
        config = {
            **settings(),
            "temp_directory": spill,
            "preserve_insertion_order": False,
            "enable_external_access": True,
        }
        runner = cls(duckdb.connect(":memory:", config=config), spill, config, [])
        runner.storage_conn_id = storage_conn_id
        return runner

    def register(self, uri: str) -> dict | None:
        """Register the filesystem of an object-storage URI (credentials from the connection)."""
        from airflow_mlops.io import storage_options

        if is_local(uri):
            return None
        import fsspec

        options = storage_options(uri, self.storage_conn_id)
        fs, _ = fsspec.core.url_to_fs(uri, **(options or {}))
        if fs not in self.filesystems:
            self.con.register_filesystem(fs)
            self.filesystems.append(fs)
        return options

    def _query(self, sql: str) -> tuple[list[str], list[tuple]]:
        cursor = self.con.execute(sql)
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchall()

    def batches(self, source: Source, size: int) -> Iterator[pd.DataFrame]:
        # a relation streams Arrow record batches (DuckDB 1.x and 2.x)
        reader = self.con.sql(f"SELECT * FROM {source.sql}").to_arrow_reader(size)
        for batch in reader:
            yield batch.to_pandas()

    def gx_source(self, source: Source) -> GxSource:
        from airflow_mlops.core.quality.gx import GxSource

        connect = {"config": {k: v for k, v in self.config.items() if k != "enable_external_access"}}
        if self.filesystems:
            connect["register_filesystems"] = list(self.filesystems)
        return GxSource(
            kind="sql", connection_string="duckdb:///:memory:", query=f"SELECT * FROM {source.sql}",
            engine_kwargs={"connect_args": connect},
        )  # fmt: skip

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.spill_dir, ignore_errors=True)


def file_source(uri: str, runner: DuckDBRunner, what: str) -> Source:
    """``read_parquet([...])`` (or ``read_csv``) over the file or the folder's parts."""
    from airflow_mlops.core.data import _format_of

    try:
        options = runner.register(uri)
        parts = list_parts(uri, options)
    except DataReadError as err:
        raise DataInputError(f"{what}: {err}") from None
    if not is_local(uri):
        protocol = uri.split("://", 1)[0]
        parts = [p if "://" in p else f"{protocol}://{p}" for p in parts]
    formats = {_format_of(p) or "parquet" for p in parts}
    if len(formats) > 1:
        raise DataInputError(f"{what} {uri}: mixes parquet and CSV parts; DuckDB reads one format")
    if formats == {"csv"}:
        return function_source("read_csv", [parts], "duckdb", uri)
    return function_source("read_parquet", [parts], "duckdb", uri)


def spill_dir_size(runner: DuckDBRunner) -> int:
    """Bytes in the runner's spill folder (for the bench)."""
    total = 0
    for root, _, files in os.walk(runner.spill_dir):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
