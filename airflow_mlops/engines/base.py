"""An opened input (:class:`EngineInput`) and the session that opens them (:class:`EngineSession`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.engines.sql import QueryError, Source, query_source, table_source
from airflow_mlops.exceptions import DataInputError, MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.core.engines.runner import Runner
    from airflow_mlops.core.engines.uri import DataRef
    from airflow_mlops.core.quality.gx import GxSource


class EngineRunner(ABC):
    """A :class:`~airflow_mlops.core.engines.runner.Runner` that names its input in errors.

    Subclasses implement :meth:`_query`, :meth:`gx_source`, :meth:`batches` and, when they hold a
    connection, :meth:`close`.
    """

    dialect = "duckdb"
    name = "engine"

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        return self._query(sql)

    @abstractmethod
    def _query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run ``sql`` on the engine: ``(column names, rows)``."""

    @abstractmethod
    def gx_source(self, source: Source) -> GxSource:
        """The Great Expectations datasource and asset that read ``source`` on the engine."""

    @abstractmethod
    def batches(self, source: Source, size: int) -> Iterator[pd.DataFrame]:
        """``source`` in DataFrames of at most ``size`` rows (never the whole table at once)."""

    def close(self) -> None:  # noqa: B027 (optional: only runners that hold a connection close it)
        """Release what the runner holds; nothing by default."""


@dataclass
class EngineInput:
    """One data input opened on an engine: run statements on it, hand it to GX, stream it."""

    ref: DataRef
    runner: Runner
    source: Source
    engine: str
    what: str

    @property
    def dialect(self) -> str:
        return self.source.dialect

    @property
    def engine_key(self) -> int:
        """Equal for inputs on one engine (one statement may read both)."""
        return id(self.runner)

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        """The :class:`~airflow_mlops.core.engines.runner.Runner` protocol: :meth:`run`."""
        return self.run(sql)

    def run(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run a statement on this input; an engine error is a :class:`DataInputError` naming it."""
        with self._named_errors():
            return self.runner.query(sql)

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        try:
            yield
        except MlopsError:
            raise
        except Exception as err:
            raise DataInputError(
                f"{self.what} {self.ref.uri}: {self.engine} failed: {type(err).__name__}: {_first_line(err)}"
            ) from err

    def columns(self) -> list[str]:
        from airflow_mlops.core.engines.sql import sample_sql

        return self.run(sample_sql(self.source, 0))[0]

    def row_count(self) -> int:
        from sqlglot import exp

        select = exp.select(exp.func("COUNT", exp.Star())).from_(self.source.node())
        return int(self.run(select.sql(dialect=self.source.dialect))[1][0][0])

    def sample(self, size: int) -> pd.DataFrame:
        """Up to ``size`` rows drawn at random by the engine (for a report), as a DataFrame."""
        import pandas as pd
        from sqlglot import exp

        select = exp.select(exp.Star()).from_(self.source.node()).order_by(exp.Rand()).limit(size)
        names, rows = self.run(select.sql(dialect=self.source.dialect))
        return pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)

    def batches(self, size: int = 100_000) -> Iterator[pd.DataFrame]:
        """The rows in DataFrames of at most ``size`` rows, never all at once."""
        with self._named_errors():
            yield from self.runner.batches(self.source, size)

    def gx_source(self) -> GxSource:
        return self.runner.gx_source(self.source)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass
class EngineSession:
    """Opens inputs; one runner per engine and connection, closed together."""

    object_storage_conn_id: str | None = None
    runners: dict[tuple[str, str | None], Runner] = field(default_factory=dict)

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for runner in self.runners.values():
            try:
                runner.close()
            except Exception:  # closing must not hide the result or the first error
                pass
        self.runners.clear()

    def open(self, ref: DataRef, engine: str, what: str) -> EngineInput:
        """Open ``ref`` on ``engine`` (``duckdb`` for files, ``sql``/``spark`` for tables) and check
        that it can be read: a missing table, a failing query or an unreachable connection is an
        error naming it, raised here, before any statistic is computed."""
        if ref.kind == "file":
            from airflow_mlops.engines.duckdb import DuckDBRunner, file_source

            runner = self._runner(("duckdb", None), lambda: DuckDBRunner.open(self.object_storage_conn_id))
            source = file_source(ref.uri, runner, what)
            opened = EngineInput(ref, runner, source, "duckdb", what)
        else:
            runner = self._runner((ref.kind, ref.conn_id), lambda: _open_table_runner(ref, what))
            try:
                if ref.query is not None:
                    source = query_source(ref.query, runner.dialect, label=ref.uri)
                else:
                    source = table_source(ref.table, runner.dialect, label=ref.uri)
            except QueryError as err:
                raise DataInputError(f"{what} {ref.uri}: {err}") from None
            opened = EngineInput(ref, runner, source, runner.name, what)
        opened.columns()  # a missing table or a failing query fails here, naming the input
        return opened

    def _runner(self, key: tuple[str, str | None], factory: Any) -> Runner:
        if key not in self.runners:
            self.runners[key] = factory()
        return self.runners[key]


def _open_table_runner(ref: DataRef, what: str) -> Runner:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(ref.conn_id)
    except Exception as err:
        raise DataInputError(f"{what} {ref.uri}: no Airflow connection {ref.conn_id!r}: {err}") from None
    if ref.kind == "spark":
        from airflow_mlops.engines.spark import SparkRunner

        return SparkRunner.open(conn, what, ref.uri)
    from airflow_mlops.engines.sql import SqlRunner

    return SqlRunner.open(conn, what, ref.uri)
