"""Tables and queries through a ``common.sql`` connection: Postgres, and any warehouse whose
provider hook is a ``DbApiHook`` (Snowflake, BigQuery, Databricks SQL, Trino, MySQL ...).

The hook comes from the connection (``Connection.get_hook()``: the provider's own class) and
opens one DB-API connection for the whole check; the statements are compiled for the dialect of
the connection type; GX reads the same table through the hook's SQLAlchemy URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.engines.sql import Source
from airflow_mlops.engines.base import EngineRunner, _first_line
from airflow_mlops.exceptions import DataInputError, MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.quality.gx import GxSource

# Airflow connection type -> sqlglot dialect
DIALECTS = {
    "postgres": "postgres",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "gcpbigquery": "bigquery",
    "google_cloud_platform": "bigquery",
    "databricks": "databricks",
    "mysql": "mysql",
    "mssql": "tsql",
    "trino": "trino",
    "presto": "presto",
    "sqlite": "sqlite",
    "oracle": "oracle",
    "vertica": "postgres",
    "duckdb": "duckdb",
}


class SqlRunner(EngineRunner):
    name = "sql"

    def __init__(self, hook: Any, dialect: str, conn_id: str) -> None:
        self.hook = hook
        self.dialect = dialect
        self.conn_id = conn_id
        self._conn: Any = None

    @classmethod
    def open(cls, conn: Any, what: str, uri: str) -> SqlRunner:
        dialect = DIALECTS.get(str(conn.conn_type))
        try:
            from airflow.providers.common.sql.hooks.sql import DbApiHook
        except ImportError as err:  # pragma: no cover - common.sql comes with Airflow
            raise DataInputError(f"{what} {uri}: the common.sql provider is not installed") from err
        try:
            hook = conn.get_hook()
        except Exception as err:
            raise DataInputError(
                f"{what} {uri}: connection {conn.conn_id!r} (type {conn.conn_type}) has no usable hook: "
                f"{_first_line(err)} (is its provider installed? pip install 'airflow-mlops[engines]')"
            ) from None
        if not isinstance(hook, DbApiHook):
            raise DataInputError(
                f"{what} {uri}: connection {conn.conn_id!r} is of type {conn.conn_type}, not a SQL "
                "(common.sql) connection; use spark://<conn_id>/... for Spark"
            )
        if dialect is None:
            raise DataInputError(
                f"{what} {uri}: connection type {conn.conn_type!r} has no known SQL dialect; known: "
                f"{', '.join(sorted(DIALECTS))}"
            )
        return cls(hook, dialect, conn.conn_id)

    def connection(self) -> Any:
        if self._conn is None:
            try:
                self._conn = self.hook.get_conn()
            except Exception as err:  # a server that is down may be back: retryable
                raise MlopsError(
                    f"cannot connect through Airflow connection {self.conn_id!r}: "
                    f"{type(err).__name__}: {_first_line(err)}"
                ) from err
            if hasattr(self._conn, "autocommit"):
                try:
                    self._conn.autocommit = True  # read-only statements; a failed one must not
                except Exception:  # poison the transaction for the next
                    pass
        return self._conn

    def _query(self, sql: str) -> tuple[list[str], list[tuple]]:
        cursor = self.connection().cursor()
        try:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return names, [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def batches(self, source: Source, size: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        cursor = self.connection().cursor()
        try:
            cursor.execute(f"SELECT * FROM {source.node().sql(dialect=self.dialect)}")
            names = [d[0] for d in cursor.description or []]
            while rows := cursor.fetchmany(size):
                yield pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
        finally:
            cursor.close()

    def gx_source(self, source: Source) -> GxSource:
        from airflow_mlops.core.quality.gx import GxSource

        url = self.hook.sqlalchemy_url
        text = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)
        return GxSource(kind="sql", connection_string=text, query=f"SELECT * FROM {source.sql}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
