"""Spark: a table or Spark SQL query in the session of an Airflow connection.

* a ``spark`` connection (the apache-spark provider's type for ``spark-submit``): its host is the
  master URL (``local[2]``, ``yarn``, ``spark://host:7077``, ``k8s://...``), and a classic
  session is built on the worker;
* a ``spark_connect`` connection: :class:`SparkConnectHook` gives the ``sc://`` URL and the
  session is a thin Spark Connect client; the cluster does the work.

The session is reused across inputs and tasks in the process (``getOrCreate``) and not stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.engines.sql import Source
from airflow_mlops.engines.base import EngineRunner, _first_line
from airflow_mlops.exceptions import DataInputError, MlopsError, require_extra

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.quality.gx import GxSource


class SparkRunner(EngineRunner):
    dialect = "spark"
    name = "spark"

    def __init__(self, spark: Any, conn_id: str) -> None:
        self.spark = spark
        self.conn_id = conn_id

    @classmethod
    def open(cls, conn: Any, what: str, uri: str) -> SparkRunner:
        require_extra("pyspark", "the Spark engine", "engines")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName("airflow-mlops")
        if conn.conn_type == "spark_connect":
            from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

            builder = builder.remote(SparkConnectHook(conn_id=conn.conn_id).get_connection_url())
        elif conn.conn_type == "spark":
            master = str(conn.host or "").strip()
            if not master:
                raise DataInputError(
                    f"{what} {uri}: spark connection {conn.conn_id!r} has no host (master URL)"
                )
            if conn.port and "://" in master:
                master = f"{master}:{conn.port}"
            builder = builder.master(master)
            for key, value in (conn.extra_dejson.get("spark_conf") or {}).items():
                builder = builder.config(str(key), str(value))
        else:
            raise DataInputError(
                f"{what} {uri}: connection {conn.conn_id!r} is of type {conn.conn_type}; spark:// needs a "
                "'spark' (master URL) or 'spark_connect' connection"
            )
        try:
            return cls(builder.getOrCreate(), conn.conn_id)
        except Exception as err:  # a cluster that is down may be back: retryable
            raise MlopsError(
                f"cannot start a Spark session for connection {conn.conn_id!r}: {type(err).__name__}: "
                f"{_first_line(err)}"
            ) from err

    def _query(self, sql: str) -> tuple[list[str], list[tuple]]:
        frame = self.spark.sql(sql)
        return list(frame.columns), [tuple(r) for r in frame.collect()]

    def frame(self, source: Source) -> Any:
        return self.spark.sql(f"SELECT * FROM {source.sql}")

    def batches(self, source: Source, size: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        frame = self.frame(source)
        names = list(frame.columns)
        rows: list[tuple] = []
        for row in frame.toLocalIterator():
            rows.append(tuple(row))
            if len(rows) >= size:
                yield pd.DataFrame.from_records(rows, columns=names)
                rows = []
        if rows:
            yield pd.DataFrame.from_records(rows, columns=names)

    def gx_source(self, source: Source) -> GxSource:
        from airflow_mlops.core.quality.gx import GxSource

        return GxSource(kind="spark", dataframe=self.frame(source))
